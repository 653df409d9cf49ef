"""Orchestration: the `aurora` command line and (later) Prefect flows that call `ml/`."""
