"""One way to write the warehouse atomically: a DuckDB transaction that commits when its block ends and
rolls back on any exception (an interrupt too), so a failed stage leaves the last good tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


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
