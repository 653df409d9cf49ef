"""Streamlit monitoring app (reads tables only)."""
