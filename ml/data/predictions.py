"""`ml.predictions` read as a wide score panel without the long table ever sitting in pandas, and whether
a table of the `ml` schema exists (what the stages that read it check first)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

SCHEMA = "ml"


def table_exists(con: duckdb.DuckDBPyConnection, name: str, schema: str = SCHEMA) -> bool:
    """Whether `schema`.`name` is a table of the open warehouse."""
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? and "
                            "table_name = ?", [schema, name]).fetchone()[0])


def read_score_panel(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Index (date, symbol) sorted, one float column per model (NaN where it has no score). DuckDB
    codes the models and the (date, symbol) keys; the scores are scattered into one dense array."""
    con.execute(f"create or replace temp table _models as select model_id, (row_number() over (order by model_id) - 1)"
                f"::integer as mi from (select distinct model_id from {SCHEMA}.predictions)")
    con.execute(f"create or replace temp table _keys as select date, symbol, (row_number() over (order by date, "
                f"symbol) - 1)::integer as ki from (select distinct date, symbol from {SCHEMA}.predictions)")
    cells = con.execute(f"select _keys.ki, _models.mi, p.score from {SCHEMA}.predictions p "
                        "join _models using (model_id) join _keys using (date, symbol)").fetchnumpy()
    keys = con.execute("select date, symbol from _keys order by ki").df()
    models = [r[0] for r in con.execute("select model_id from _models order by mi").fetchall()]
    values = np.full((len(keys), len(models)), np.nan)
    values[np.asarray(cells["ki"]), np.asarray(cells["mi"])] = np.ma.filled(
        np.ma.asarray(cells["score"], dtype="float64"), np.nan)
    index = pd.MultiIndex.from_arrays([pd.to_datetime(keys["date"]), keys["symbol"].astype(str)],
                                      names=["date", "symbol"])
    return pd.DataFrame(values, index=index, columns=[str(m) for m in models])
