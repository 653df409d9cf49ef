"""Aurora's Python library: generator, ingest, data access, models, policy, metrics.

Nothing in here imports Prefect or Streamlit, so it can be tested and reused on its own.
"""
