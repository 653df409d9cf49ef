"""The published marts and the warehouse's views over them: re-pointed after a build, stale ones dropped."""

from __future__ import annotations

import json
from pathlib import Path

from ml.data.raw_inputs import RawInputs
from ml.data.views import feature_views
from ml.paths import DataPaths

LABELS = "labels"
WAREHOUSE_SCHEMA = "main"


def marts() -> tuple[str, ...]:
    """The published marts: every feature view of the dbt project (ml/data/views.py), then labels."""
    return (*feature_views(), LABELS)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sync_warehouse(paths: DataPaths, drop: list[str]) -> None:
    """Point each mart's warehouse view at its published parquet (or drop it when there is none) and
    drop relations of models excluded for missing inputs, so no stale table or dangling view remains."""
    import duckdb

    if not paths.warehouse.exists():
        return
    con = duckdb.connect(str(paths.warehouse))
    try:
        kinds = dict(con.execute(
            "select table_name, table_type from information_schema.tables where table_schema = ?",
            [WAREHOUSE_SCHEMA],
        ).fetchall())
        for mart in marts():
            published = paths.features / f"{mart}.parquet"
            if published.exists():
                if kinds.get(mart, "VIEW") == "VIEW":
                    con.execute(
                        f'create or replace view {WAREHOUSE_SCHEMA}."{mart}" as '
                        f"select * from read_parquet({_sql_string(str(published))})"
                    )
            elif mart in kinds:
                drop.append(mart)
        for name in dict.fromkeys(drop):
            kind = kinds.get(name)
            if kind is not None:
                what = "view" if kind == "VIEW" else "table"
                con.execute(f'drop {what} if exists {WAREHOUSE_SCHEMA}."{name}"')
    finally:
        con.close()


def _excluded_models(manifest_path: Path, raw: RawInputs) -> list[str]:
    """Names of the models that need a missing input (from their `needs:` tags)."""
    if not manifest_path.exists():
        return []
    missing = {f"needs:{m}" for m in raw.missing}
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return sorted(
        n["name"] for n in nodes
        if n["resource_type"] == "model" and (missing & set(n.get("tags") or [])
                                              or n["name"] in raw.skipped_views)
    )
