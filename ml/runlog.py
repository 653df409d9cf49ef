"""`ml.run_log`: one row per pipeline stage run (what ran, when, how long, and how it ended)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import duckdb

from ml.paths import DataPaths

DDL = """
create schema if not exists ml;
create table if not exists ml.run_log (
    run_id varchar, stage varchar, started_at timestamp, finished_at timestamp,
    seconds double, status varchar, message varchar
)
"""


def log_stage(paths: DataPaths, run_id: str, stage: str, started_at: datetime, seconds: float,
              status: str, message: str = "", attempts: int = 20) -> None:
    """Append one row; retries briefly while a reader (the app) holds the file."""
    finished = datetime.now(UTC).replace(tzinfo=None)
    for attempt in range(attempts):
        try:
            with duckdb.connect(str(paths.warehouse)) as con:
                con.execute(DDL)
                con.execute("insert into ml.run_log values (?, ?, ?, ?, ?, ?, ?)",
                            [run_id, stage, started_at, finished, float(seconds), status, message[:2000]])
            return
        except duckdb.IOException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.25)
