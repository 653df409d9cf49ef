"""The warehouse's one transactional writer: a stage replaces its `ml.*` tables all at once or not at all,
so a failure (an interrupt too) leaves the last good tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import duckdb
import pandas as pd

from ml.data.predictions import SCHEMA
from ml.paths import DataPaths


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """`with transaction(con): ...` runs the block inside `begin transaction` ... `commit`, or `rollback`
    and re-raise when the block raises."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def replace_table(con: duckdb.DuckDBPyConnection, name: str, incoming: str,
                  columns: Mapping[str, str] | None = None) -> None:
    """Replace `ml.<name>` by the registered relation `incoming`: with its own column types, or with the
    declared `columns` ({name: DuckDB type}, in that order, each cast)."""
    if columns is None:
        con.execute(f"create or replace table {SCHEMA}.{name} as select * from {incoming}")
        return
    ddl = ", ".join(f'"{c}" {t}' for c, t in columns.items())
    names = ", ".join(f'"{c}"' for c in columns)
    casts = ", ".join(f'cast("{c}" as {t})' for c, t in columns.items())
    con.execute(f"create or replace table {SCHEMA}.{name} ({ddl})")
    con.execute(f"insert into {SCHEMA}.{name} ({names}) select {casts} from {incoming}")


def write_tables(paths: DataPaths, tables: Mapping[str, pd.DataFrame],
                 schemas: Mapping[str, Mapping[str, str]] | None = None,
                 also: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> None:
    """Replace `ml.<name>` by each frame (typed by `schemas[name]` where declared) in one transaction;
    `also(con)` runs inside the same transaction after them (e.g. the monitor's rows of `ml.model_events`).
    A failure leaves every previous table."""
    schemas = schemas or {}
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute(f"create schema if not exists {SCHEMA}")
        for name, frame in tables.items():
            con.register(f"_incoming_{name}", frame)
        with transaction(con):
            for name in tables:
                replace_table(con, name, f"_incoming_{name}", schemas.get(name))
            if also is not None:
                also(con)
