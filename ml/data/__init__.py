"""Data layer: ingest steps, synthetic markets and their scenarios, the dbt runner and warehouse views, quality.

Entry points stay beside it: ml/ingest.py, ml/market.py and ml/warehouse.py run the steps kept here.
"""
