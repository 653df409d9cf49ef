"""What a command needs before it can run, and what a new raw/ invalidates (`--replace`).

`missing_step` names the step to run first (generate or ingest, build-features, train);
`check_replace` / `clear_results` keep an earlier run's results from standing beside new raw data.
"""

from __future__ import annotations

import os
from pathlib import Path

from ml.paths import DataPaths

# the warehouse schemas, directories and files that hold results computed from raw/: a new raw/ (ingest or
# generate into a data directory that holds an earlier run) invalidates them; `--replace` clears them
RESULT_SCHEMAS = ("ml", "monitoring", "research")
RESULT_TABLES = ("quality.quarantine",)  # the latest build's quarantined columns (shown by `aurora report`)
RESULT_DIRS = ("artifacts", "features")  # artifacts/ holds the saved report (artifacts/report.json)
RESULT_FILES = ("feast/registry.db", "feast/online.db")  # the Feast registry and its online store


def _data_dir_line(paths: DataPaths) -> str:
    where = "AURORA_DATA_DIR=" + os.environ["AURORA_DATA_DIR"] if os.environ.get("AURORA_DATA_DIR") else (
        "AURORA_DATA_DIR unset, so ./data")
    return f"{paths.root} ({where})"


def _has_predictions(paths: DataPaths) -> bool:
    """Whether `aurora train` has written `ml.predictions` (True when the warehouse is locked by a writer:
    the stage itself will then say what is wrong)."""
    import duckdb

    if not paths.warehouse.exists():
        return False
    try:
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            return bool(con.execute("select count(*) from information_schema.tables "
                                    "where table_schema = 'ml' and table_name = 'predictions'").fetchone()[0])
    except duckdb.Error:
        return True


def missing_step(paths: DataPaths, need: str) -> str | None:
    """What stops a command that needs `need` (raw | features | trained), with the step to run; None
    when nothing does."""
    order = ("raw", "features", "trained")
    if not paths.root.is_dir():
        return (f"no data directory at {_data_dir_line(paths)}: run `aurora generate` (a synthetic market) or "
                f"`aurora ingest` (your files) first, or point AURORA_DATA_DIR at an existing data directory")
    if not paths.raw_table("prices").exists():
        return f"no raw data in {paths.raw}: run `aurora generate` or `aurora ingest` first"
    if order.index(need) >= 1 and not (paths.features / "labels.parquet").exists():
        return f"no features yet in {paths.features}: run `aurora build-features` first"
    if order.index(need) >= 2 and not _has_predictions(paths):
        return f"no trained models yet (no ml.predictions in {paths.warehouse}): run `aurora train` first"
    return None


def next_pipeline_step(paths: DataPaths) -> str:
    """The next step of the pipeline for this data directory, from what it holds."""
    from ml.report import read_saved_report

    for need, step in (("raw", "aurora generate (or aurora ingest)"), ("features", "aurora build-features"),
                       ("trained", "aurora train")):
        if missing_step(paths, need):
            return step
    saved = read_saved_report(paths)
    if saved.get("n_models_active") is None and "monitor_stage_s" not in saved:
        return "aurora monitor (the lifecycle picks the active models)"
    if saved.get("sharpe_net") is None and not saved.get("policy_diagnostics"):
        return "aurora backtest (ensembles, calibration, the policy after costs)"
    return "aurora app (the monitoring app), or aurora run to redo the whole pipeline"


def existing_results(paths: DataPaths) -> list[Path]:
    """The results of an earlier run in this data directory (what a new raw/ would leave on show)."""
    found = [paths.warehouse] if paths.warehouse.exists() else []
    found += [paths.root / d for d in RESULT_DIRS if (paths.root / d).is_dir() and any((paths.root / d).iterdir())]
    found += [paths.root / f for f in RESULT_FILES if (paths.root / f).exists()]
    return found


def describe_results() -> str:
    return (f"the warehouse schemas {', '.join(RESULT_SCHEMAS)} and the table {', '.join(RESULT_TABLES)}, "
            f"artifacts/ (with the saved report artifacts/report.json), features/ "
            f"and the Feast registry and online store ({', '.join(RESULT_FILES)})")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_replace(paths: DataPaths, command: str, replace: bool, inputs: list[Path] = ()) -> str | None:
    """Why `command` may not write a new raw/ into `paths` (None: it may). Without `replace`, an earlier
    run's results refuse it; with it, an input inside what would be cleared, or a warehouse another
    process holds, does."""
    found = existing_results(paths)
    if not found:
        return None
    if not replace:
        return (f"{paths.root} holds the results of an earlier run ({', '.join(str(p) for p in found)}); new raw "
                f"data would leave them on show. Rerun with --replace to clear {describe_results()} "
                f"(raw/ is rewritten, nothing outside {paths.root} is touched), or use another AURORA_DATA_DIR")
    for given in inputs:
        for folder in RESULT_DIRS:
            if _inside(given, paths.root / folder):
                return f"--replace would delete {paths.root / folder}, which holds your input {given}: move it first"
    if paths.warehouse.exists():
        import duckdb

        try:
            duckdb.connect(str(paths.warehouse)).close()
        except duckdb.Error as err:
            return f"cannot open {paths.warehouse} to clear it (is `aurora app` or a run using it?): {err}"
    return None


def clear_results(paths: DataPaths) -> list[str]:
    """Delete what a new raw/ invalidates (RESULT_*), only under `paths.root`; returns what was cleared."""
    import shutil

    import duckdb

    cleared: list[str] = []
    if paths.warehouse.exists():
        with duckdb.connect(str(paths.warehouse)) as con:
            schemas = {r[0] for r in con.execute("select schema_name from information_schema.schemata "
                                                 "where catalog_name = current_database()").fetchall()}
            for schema in RESULT_SCHEMAS:
                if schema in schemas:
                    con.execute(f"drop schema {schema} cascade")
                    cleared.append(f"warehouse schema {schema}")
            for table in RESULT_TABLES:
                schema, name = table.split(".")
                if con.execute("select count(*) from information_schema.tables where table_schema = ? "
                               "and table_name = ?", [schema, name]).fetchone()[0]:
                    con.execute(f"drop table {table}")
                    cleared.append(f"warehouse table {table}")
    for relative in (*RESULT_DIRS, *RESULT_FILES):
        target = paths.root / relative
        if not _inside(target, paths.root) or target.is_symlink():
            continue  # never follow a link out of the data directory
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        else:
            continue
        cleared.append(str(target))
    return cleared
