"""Read-only data access for the Streamlit app: warehouse tables, the saved report, dbt and file facts.

The app only reads. How it reads the DuckDB warehouse (`$AURORA_DATA_DIR/warehouse.duckdb`):

- Open, read, close. Every read opens the file `read_only=True`, runs its queries and closes it at once;
  no connection outlives a rerun, so the app holds DuckDB's shared lock for milliseconds.
- Unchanged means not re-read. Reads are cached (`st.cache_data`) under the warehouse fingerprint
  (size and mtime of the file and its WAL, and of the parquet inputs a query joins); an unchanged
  warehouse is not opened again until the TTL runs out.
- A writer holding the lock (a running flow) makes a read-only open fail. A read then retries briefly
  (about 1.5 s, a single try when the warehouse was busy a moment ago), then falls back to the last
  successful read of the same queries (process memory, `st.cache_resource`), and without one to a
  private copy of the warehouse file (its last checkpointed state: the previous tables; under
  `AURORA_APP_SNAPSHOT_DIR`, default <tmp>/aurora-app-snapshots, one per warehouse). `Read.source`
  says which, so pages can say they show a snapshot.
- A table that does not exist yet reads as None: pages show "not available yet".

Queries are named (`QUERIES`); each takes an open connection and returns a DataFrame or None.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from ml.paths import DataPaths

CACHE_TTL_S = 120
RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8)  # ~1.5 s of retries while a writer holds the lock
BUSY_MEMORY_S = 10.0  # after a busy read, try only once for this long (a flow holds the lock for minutes)
SNAPSHOT_MAX_AGE_S = 24 * 3600  # copies of other warehouses older than this are removed
LABEL_PREFERENCE = ("fwd_ret_sn_5d", "fwd_ret_5d")  # the signals' horizon (5 days), sector-neutral first
ML = "ml"


def data_paths() -> DataPaths:
    """The data directory of this rerun (`AURORA_DATA_DIR`, default `data/`)."""
    return DataPaths.from_env()


# ============================================================================================ results
@dataclass
class Read:
    """What one warehouse read returned.

    `frames[name]` is a DataFrame, or None when the table(s) behind the query do not exist (yet).
    `source`: live (read now or cached from an unchanged warehouse), memory (the last successful read,
    the warehouse being locked by a writer), copy (a copy of the warehouse file, same reason),
    missing (no warehouse file) or unavailable (locked and no snapshot).
    """

    frames: dict[str, pd.DataFrame | None]
    source: str
    read_at: datetime | None = None
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> pd.DataFrame | None:
        return self.frames.get(name)

    @property
    def stale(self) -> bool:
        return self.source in ("memory", "copy")


class WarehouseBusy(RuntimeError):
    """The warehouse could not be opened read-only (a writer holds the lock, or another error)."""


# ============================================================================================ queries
@dataclass
class Ctx:
    con: duckdb.DuckDBPyConnection
    paths: DataPaths
    params: dict[str, Any]
    _tables: set[str] | None = None

    @property
    def tables(self) -> set[str]:
        """Qualified lower-case names (schema.table) of the tables and views in the warehouse."""
        if self._tables is None:
            rows = self.con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
                "union all select schema_name, view_name from duckdb_views() "
                "where database_name = current_database() and not internal"
            ).fetchall()
            self._tables = {f"{s}.{t}".lower() for s, t in rows}
        return self._tables

    def has(self, name: str) -> bool:
        return name.lower() in self.tables

    def find(self, table: str, schemas: Iterable[str] = (ML, "monitoring", "main")) -> str | None:
        for schema in schemas:
            if self.has(f"{schema}.{table}"):
                return f"{schema}.{table}"
        return None

    def columns(self, qualified: str) -> list[str]:
        schema, table = qualified.split(".", 1)
        rows = self.con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? order by column_index",
            [schema, table],
        ).fetchall()
        return [r[0] for r in rows]

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()


Query = Callable[[Ctx], "pd.DataFrame | None"]
QUERIES: dict[str, Query] = {}


def query(name: str) -> Callable[[Query], Query]:
    def register(fn: Query) -> Query:
        QUERIES[name] = fn
        return fn

    return register


def _select_all(table: str, order: str | None = None, limit: int | None = None) -> Query:
    def run(ctx: Ctx) -> pd.DataFrame | None:
        found = ctx.find(table)
        if found is None:
            return None
        cols = ctx.columns(found)
        sql = f"select * from {found}"
        if order and order.split()[0] in cols:
            sql += f" order by {order}"
        if limit:
            sql += f" limit {int(limit)}"
        return ctx.df(sql)

    return run


for _name, _order, _limit in (
    ("model_registry", None, None),
    ("model_metrics", None, 50_000),
    ("model_metrics_monthly", None, 200_000),
    ("monitoring_model_ic_monthly", None, 200_000),
    ("ensemble_weights", None, 500_000),
    ("ensemble_comparison", None, None),
    ("backtest_daily", "date", None),
    ("feature_drift", None, 100_000),
    ("model_lineage", None, 10_000),
    ("run_log", None, 1_000),
):
    QUERIES[_name] = _select_all(_name, _order, _limit)


@query("model_status_runs")
def _model_status_runs(ctx: Ctx) -> pd.DataFrame | None:
    """`ml.model_status_daily` (date, model_id, status, ...) as runs: model_id, status, start, end."""
    found = ctx.find("model_status_daily")
    if found is None or not {"date", "model_id", "status"} <= set(ctx.columns(found)):
        return None
    return ctx.df(
        f"""with s as (
                select model_id, cast(date as date) as date, cast(status as varchar) as status,
                       row_number() over (partition by model_id order by date)
                       - row_number() over (partition by model_id, status order by date) as grp
                from {found}
            )
            select model_id, status, min(date) as start, max(date) as "end", count(*) as days
            from s group by model_id, status, grp order by model_id, start"""
    )


@query("model_events")
def _model_events(ctx: Ctx) -> pd.DataFrame | None:
    found = ctx.find("model_events")
    if found is None:
        return None
    cols = ctx.columns(found)
    when = next((c for c in ("event_at", "date", "created_at", "at") if c in cols), None)
    return ctx.df(f"select * from {found}" + (f" order by {when} desc" if when else "") + " limit 5000")


def labels_path(paths: DataPaths) -> Path:
    return paths.features / "labels.parquet"


def label_column(paths: DataPaths) -> str | None:
    """The realized-return column of labels.parquet matching the signals' horizon (5 days)."""
    path = labels_path(paths)
    if not path.exists():
        return None
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    for name in LABEL_PREFERENCE:
        if name in names:
            return name
    return next((n for n in names if n.startswith("fwd_")), None)


# ============================================================================================ reading
def _stat(path: Path) -> tuple[int, int] | None:
    try:
        s = path.stat()
    except OSError:
        return None
    return (s.st_mtime_ns, s.st_size)


def fingerprint(paths: DataPaths) -> tuple:
    """Changes whenever the warehouse (file or WAL) or a parquet input of a query changes."""
    db = paths.warehouse
    return (_stat(db), _stat(Path(f"{db}.wal")), _stat(labels_path(paths)))


def _lock_like(err: Exception) -> bool:
    text = str(err).lower()
    return "lock" in text or "different configuration" in text


_busy_at: dict[str, float] = {}
_busy_guard = threading.Lock()


def _run_queries(con: duckdb.DuckDBPyConnection, paths: DataPaths, names: tuple[str, ...],
                 params: dict[str, Any]) -> tuple[dict[str, pd.DataFrame | None], dict[str, str]]:
    ctx = Ctx(con, paths, params)
    frames: dict[str, pd.DataFrame | None] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            frames[name] = QUERIES[name](ctx)
        except duckdb.Error as err:  # a table of an unexpected shape: that query only
            frames[name] = None
            errors[name] = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    return frames, errors


def _open_read_only(db: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only, retrying while a writer holds the lock; WarehouseBusy if it stays."""
    key = str(db)
    with _busy_guard:
        recently_busy = time.monotonic() - _busy_at.get(key, -1e9) < BUSY_MEMORY_S
    delays = (0.0,) if recently_busy else (0.0, *RETRY_DELAYS_S)
    last: Exception | None = None
    for delay in delays:
        if delay:
            time.sleep(delay)
        try:
            con = duckdb.connect(key, read_only=True)
        except duckdb.Error as err:
            last = err
            if not _lock_like(err):
                break
            continue
        with _busy_guard:
            _busy_at.pop(key, None)
        return con
    with _busy_guard:
        _busy_at[key] = time.monotonic()
    raise WarehouseBusy(_describe_open_error(last))


def _describe_open_error(err: Exception | None) -> str:
    if err is None:
        return "the warehouse could not be opened"
    if _lock_like(err):
        return "the warehouse is locked by a writer (a flow is running)"
    return "the warehouse could not be opened read-only: " + str(err).splitlines()[0][:200]


def _read_live(root: str, names: tuple[str, ...], params: tuple) -> tuple[dict, dict, datetime]:
    paths = DataPaths(Path(root))
    con = _open_read_only(paths.warehouse)
    try:
        frames, errors = _run_queries(con, paths, names, dict(params))
    finally:
        con.close()
    return frames, errors, datetime.now()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=512)
def _read_live_cached(root: str, fp: tuple, names: tuple[str, ...], params: tuple) -> tuple[dict, dict, datetime]:
    """`_read_live` under the warehouse fingerprint `fp` (exceptions are not cached)."""
    return _read_live(root, names, params)


@st.cache_resource(show_spinner=False)
def _last_good() -> dict:
    """{(root, name, params): (frame, read_at)}: the last successful read of each query."""
    return {}


def snapshot_dir() -> Path:
    """Where warehouse copies go (`AURORA_APP_SNAPSHOT_DIR`, default <tmp>/aurora-app-snapshots)."""
    return Path(os.environ.get("AURORA_APP_SNAPSHOT_DIR") or Path(tempfile.gettempdir()) / "aurora-app-snapshots")


def _snapshot_copy(db: Path) -> Path:
    """A private copy of the warehouse file (its last checkpointed state), reused while unchanged.

    One copy per warehouse is kept; copies untouched for a day are removed."""
    folder = snapshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stat = db.stat()
    key = hashlib.sha1(str(db.resolve()).encode()).hexdigest()[:16]
    target = folder / f"{key}-{stat.st_mtime_ns}-{stat.st_size}.duckdb"
    if not target.exists():
        tmp = folder / f".{target.name}.{os.getpid()}.{threading.get_ident()}.partial"
        try:
            shutil.copyfile(db, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    now = time.time()
    for old in folder.glob("*.duckdb"):
        try:
            stale = old.name.startswith(f"{key}-") or now - old.stat().st_mtime > SNAPSHOT_MAX_AGE_S
            if stale and old != target:
                old.unlink(missing_ok=True)
        except OSError:
            pass
    os.utime(target)
    return target


def _read_copy(paths: DataPaths, names: tuple[str, ...], params: dict) -> tuple[dict, dict, datetime]:
    copy = _snapshot_copy(paths.warehouse)
    read_at = datetime.fromtimestamp(paths.warehouse.stat().st_mtime)  # the warehouse's last checkpoint
    con = duckdb.connect(str(copy), read_only=True)
    try:
        frames, errors = _run_queries(con, paths, names, params)
    finally:
        con.close()
    return frames, errors, read_at


def read(names: Iterable[str], paths: DataPaths | None = None, **params: Any) -> Read:
    """Run the named queries against the warehouse (see the module docstring for the fallbacks)."""
    paths = paths or data_paths()
    names = tuple(names)
    unknown = [n for n in names if n not in QUERIES]
    if unknown:
        raise KeyError(f"unknown queries {unknown}; known: {sorted(QUERIES)}")
    if not paths.warehouse.exists():
        return Read({n: None for n in names}, "missing")
    root = str(paths.root)
    frozen = tuple(sorted(params.items()))
    try:
        frames, errors, read_at = _read_live_cached(root, fingerprint(paths), names, frozen)
    except WarehouseBusy as busy:
        return _fallback(paths, names, params, frozen, str(busy))
    store = _last_good()
    for name in names:
        store[(root, name, frozen)] = (frames[name], read_at)
    return Read(dict(frames), "live", read_at, errors=dict(errors))


def _fallback(paths: DataPaths, names: tuple[str, ...], params: dict, frozen: tuple, note: str) -> Read:
    root = str(paths.root)
    store = _last_good()
    kept = [store.get((root, n, frozen)) for n in names]
    if all(k is not None for k in kept):
        return Read({n: k[0] for n, k in zip(names, kept, strict=True)}, "memory",
                    min(k[1] for k in kept), note=note)
    try:
        frames, errors, read_at = _read_copy(paths, names, params)
    except (duckdb.Error, OSError) as err:
        text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        return Read({n: None for n in names}, "unavailable", note=f"{note}; no earlier snapshot ({text})")
    return Read(frames, "copy", read_at, note=note, errors=errors)


def clear_caches() -> None:
    _read_live_cached.clear()
    _cached_report.clear()
    _cached_file_facts.clear()
    _last_good().clear()


# ============================================================================================ files
@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=64)
def _cached_report(root: str, fp: tuple) -> dict[str, Any]:
    from ml.report import build_report

    return build_report(DataPaths(Path(root)))


def load_report(paths: DataPaths | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """`ml.report.build_report` (cached while its inputs are unchanged), or (None, why) on failure."""
    paths = paths or data_paths()
    fp = tuple(_stat(p) for p in (
        paths.artifacts / "report.json", paths.raw_table("prices"), paths.raw / "_source.json",
        paths.oracle / "expected_returns.parquet",
    ))
    try:
        return _cached_report(str(paths.root), fp), None
    except Exception as err:  # a half-written or foreign report must not take the page down
        return None, f"{type(err).__name__}: {err}"


def dbt_run_results(paths: DataPaths | None = None) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """The nodes of `$AURORA_DATA_DIR/dbt/target/run_results.json` (None when absent) and its metadata."""
    paths = paths or data_paths()
    path = paths.root / "dbt" / "target" / "run_results.json"
    if not path.exists():
        return None, {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return None, {"error": f"unreadable {path.name}: {err}"}
    rows = []
    for r in doc.get("results") or []:
        uid = str(r.get("unique_id", ""))
        parts = uid.split(".")
        kind = parts[0]
        # test.<project>.<name>.<hash>; model.<project>.<name>; unit_test.<project>.<model>.<name>
        name = parts[2] if kind == "test" and len(parts) >= 3 else parts[-1]
        rows.append({
            "kind": {"test": "data test", "unit_test": "unit test"}.get(kind, kind),
            "name": name,
            "status": r.get("status"),
            "seconds": r.get("execution_time"),
            "failures": r.get("failures"),
            "message": r.get("message"),
            "unique_id": uid,
        })
    meta = {
        "generated_at": (doc.get("metadata") or {}).get("generated_at"),
        "elapsed_time": doc.get("elapsed_time"),
        "path": str(path),
    }
    columns = ["kind", "name", "status", "seconds", "failures", "message", "unique_id"]
    return pd.DataFrame(rows, columns=columns), meta


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=64)
def _cached_file_facts(root: str, fp: tuple) -> dict[str, Any]:
    paths = DataPaths(Path(root))
    facts: dict[str, Any] = {"latest_price_date": None, "price_rows": None, "features": {}}
    with duckdb.connect() as con:
        prices = paths.raw_table("prices")
        if prices.exists():
            facts["latest_price_date"], facts["price_rows"] = con.execute(
                "select max(date), count(*) from read_parquet(?)", [str(prices)]).fetchone()
        for path in sorted(paths.features.glob("*.parquet")):
            try:
                facts["features"][path.stem] = con.execute(
                    "select max(date), count(*) from read_parquet(?)", [str(path)]).fetchone()
            except duckdb.Error:
                facts["features"][path.stem] = (None, None)
    return facts


def file_facts(paths: DataPaths | None = None) -> dict[str, Any]:
    """Latest raw price date and, per features/*.parquet, (latest date, rows)."""
    paths = paths or data_paths()
    files = [paths.raw_table("prices"), *sorted(paths.features.glob("*.parquet"))]
    return _cached_file_facts(str(paths.root), tuple((str(p), _stat(p)) for p in files))


def securities(paths: DataPaths | None = None) -> pd.DataFrame | None:
    """symbol, name, sector, industry from raw/securities.parquet (None when absent)."""
    paths = paths or data_paths()
    path = paths.raw_table("securities")
    if not path.exists():
        return None
    frame = pd.read_parquet(path)
    keep = [c for c in ("symbol", "name", "sector", "industry") if c in frame.columns]
    return frame[keep]


# the feature research and prob_up queries register themselves in QUERIES (kept in their own modules for size)
from app import pipeline_queries as _pipeline_queries  # noqa: E402, F401
from app import probability_queries as _probability_queries  # noqa: E402, F401
from app import research_queries as _research_queries  # noqa: E402, F401
