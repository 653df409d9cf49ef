"""The warehouse's one transaction helper (`ml.tables`): all of a block's writes, or none."""

from __future__ import annotations

import duckdb
import pytest

from ml.tables import transaction


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as c:
        c.execute("create table t as select 1 as x")
        yield c


def test_a_block_that_ends_commits_every_write(con):
    with transaction(con):
        con.execute("insert into t values (2)")
        con.execute("create table u as select 3 as y")
    assert con.execute("select sum(x) from t").fetchone()[0] == 3
    assert con.execute("select y from u").fetchone()[0] == 3


@pytest.mark.parametrize("error", [RuntimeError("a failed stage"), KeyboardInterrupt()])
def test_a_block_that_raises_leaves_the_last_good_tables_and_reraises(con, error):
    with pytest.raises(type(error)):
        with transaction(con):
            con.execute("insert into t values (2)")
            con.execute("create or replace table t as select 99 as x")
            raise error
    assert con.execute("select x from t").fetchall() == [(1,)]
    con.execute("insert into t values (5)")  # the connection is usable again: no transaction left open
    assert con.execute("select count(*) from t").fetchone()[0] == 2
