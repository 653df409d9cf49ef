"""Quarantined feature columns: recorded by the quality gate, left out of training and serving.

A feature column that fails a non-structural rule of the gate (a distribution shift against the
reference profile, a null-rate rise) is quarantined instead of stopping the pipeline. The latest
build's quarantine is the table `quality.quarantine` (run_id, run_at, view, column_name, rule,
reason, observed): one row per (column, failed rule), replaced by every accepted build.

Consumers:
- training (`ml.pipeline.load_training_frames` -> `drop_from_frames`): the column is left out of the
  view frames, hence of the `all` pseudo-view and of every model trained on them;
- serving (`ml.publish.serving_weights` -> `exclude_models`): a registered model whose features
  include a quarantined column is left out of today's ensemble (logged); its artifact expects the
  column, so dropping the column from its inputs is not an option;
- `aurora report` (`quarantined_features`: "view.column: reason") and the app's Data quality page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import pandas as pd

from ml.paths import DataPaths

TABLE = "quality.quarantine"
COLUMNS = ("run_id", "run_at", "view", "column_name", "rule", "reason", "observed")
SEP = "__"  # Feast's full feature names: <view>__<feature>

Log = Callable[[str], None]


def from_results(results: pd.DataFrame) -> pd.DataFrame:
    """Quarantine rows of a gate run: its failed `quarantine`-severity outcomes."""
    failed = results[~results["success"].astype(bool) & (results["severity"] == "quarantine")]
    failed = failed[failed["column_name"].notna()]
    out = pd.DataFrame({
        "run_id": failed["run_id"], "run_at": pd.to_datetime(failed["run_at"]), "view": failed["view"],
        "column_name": failed["column_name"], "rule": failed["rule"],
        "reason": failed["rule"] + ": " + failed["observed_value"].astype(str),
        "observed": failed["observed_value"].astype(str),
    })
    return out.reset_index(drop=True)[list(COLUMNS)]


def write(con, quarantine: pd.DataFrame, views: Iterable[str] | None = None) -> None:
    """Replace the rows of `views` (default: all) in `quality.quarantine` with `quarantine`, on an open
    connection (inside the caller's transaction)."""
    con.execute("create schema if not exists quality")
    con.execute(
        f"""create table if not exists {TABLE} (run_id varchar, run_at timestamp, "view" varchar,
            column_name varchar, rule varchar, reason varchar, observed varchar)"""
    )
    if views is None:
        con.execute(f"delete from {TABLE}")
    else:
        con.execute(f'delete from {TABLE} where "view" in (select unnest(?::varchar[]))', [sorted(set(views))])
    if len(quarantine):
        con.register("quarantine_new", quarantine[list(COLUMNS)])
        con.execute(f"insert into {TABLE} by name select * from quarantine_new")
        con.unregister("quarantine_new")


def read(paths: DataPaths, strict: bool = True) -> pd.DataFrame:
    """The latest build's quarantine (empty when there is none or no warehouse yet). Not `strict`
    (display only): also empty while another process holds the warehouse for writing."""
    import duckdb

    if not paths.warehouse.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    try:
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            return con.execute(f'select * from {TABLE} order by "view", column_name, rule').df()
    except duckdb.CatalogException:
        return pd.DataFrame(columns=list(COLUMNS))
    except duckdb.IOException:  # the warehouse is being written (one writer per file)
        if strict:
            raise
        return pd.DataFrame(columns=list(COLUMNS))


def quarantined(paths: DataPaths, strict: bool = True) -> dict[str, dict[str, str]]:
    """{view: {column: reason(s)}} of the latest build."""
    out: dict[str, dict[str, str]] = {}
    for row in read(paths, strict).itertuples(index=False):
        reasons = out.setdefault(str(row.view), {})
        reasons[str(row.column_name)] = "; ".join(filter(None, [reasons.get(str(row.column_name)), str(row.reason)]))
    return out


def feature_ids(paths: DataPaths) -> set[str]:
    """Full feature names (`<view>__<column>`) of the quarantined columns."""
    return {f"{view}{SEP}{col}" for view, cols in quarantined(paths).items() for col in cols}


def report_lines(paths: DataPaths) -> list[str]:
    """`aurora report`'s `quarantined_features`: "view.column: reason" per quarantined column."""
    return [f"{view}.{col}: {reason}" for view, cols in quarantined(paths, strict=False).items()
            for col, reason in cols.items()]


def drop_from_frames(frames: Mapping[str, pd.DataFrame], paths: DataPaths, log: Log | None = print) -> dict:
    """The training frames (per view, columns `<view>__<f>` or bare `<f>`) without quarantined columns."""
    bad = quarantined(paths)
    out = dict(frames)
    for view, cols in bad.items():
        if view not in out:
            continue
        drop = [c for c in out[view].columns if c in cols or (str(c).startswith(view + SEP)
                                                              and str(c).split(SEP, 1)[1] in cols)]
        if drop:
            out[view] = out[view].drop(columns=drop)
            if log:
                log(f"quarantine: {view}: left out of training: {', '.join(sorted(cols))} (see {TABLE})")
            if not [c for c in out[view].columns if c not in ("symbol", "date")]:
                del out[view]  # nothing left to train on
                if log:
                    log(f"quarantine: every feature of view {view} is quarantined: the view is left out")
    return out


def exclude_models(paths: DataPaths, model_ids: Iterable[str], log: Log | None = print) -> set[str]:
    """The models among `model_ids` whose registered features include a quarantined column."""
    import json

    bad = feature_ids(paths)
    if not bad:
        return set()
    from ml.registry import list_models

    registry = list_models(paths)
    if registry.empty:
        return set()
    features = {str(r.model_id): json.loads(r.features) if isinstance(r.features, str) else list(r.features)
                for r in registry[["model_id", "features"]].itertuples(index=False)}
    out = {m for m in model_ids if bad & set(features.get(str(m), []))}
    if out and log:
        log(f"quarantine: {len(out)} model(s) use quarantined features and are left out of serving: "
            f"{', '.join(sorted(out)[:5])}{' ...' if len(out) > 5 else ''}")
    return out
