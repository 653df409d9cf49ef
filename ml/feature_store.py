"""Feast for Aurora: register the feature marts, point-in-time training frames, online vectors.

Everything is configured from the data directory (`DataPaths`), never from the working directory:
the `RepoConfig` is built here (project `aurora`, local provider, DuckDB offline store over the marts'
parquet files, SQLite online store `feast/online.db`, file registry `feast/registry.db`), and `apply`
also renders it to `$AURORA_DATA_DIR/feast/feature_store.yaml` for the `feast` command line.
The Feast objects come from `feature_repo/definitions.py`, which discovers features from the parquet
schemas of `features/<view>.parquet`.

Column names. Frames returned here use Feast's full feature names, `<view>__<feature>` (labels:
`labels__<label>`), so two views may use the same feature name without clashing, and a column says
which view it came from. `feature_columns` / `label_columns` pick them out of a frame.

Dates. The marts' `date` (DATE) is the event timestamp, read as midnight UTC; an entity row dated t
is sent to Feast as midnight UTC of t. A feature row dated t is therefore returned for an entity row
dated t, and a row dated after t never is. Between two feature rows, the earlier one is returned if it
is within the view's ttl (`feast_ttl_days` in its YAML, ml/data/views.py; labels only match their own date).

Call `apply` after every feature build: `training_frame` refuses a registry whose schemas differ
from the marts (an analyst's new feature would otherwise be silently missing).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from ml.paths import DataPaths

SEP = "__"  # Feast's separator in full feature names: <view>__<feature>
LABELS = "labels"
ALL_VIEWS_SERVICE = "all_views"
_DEFINITIONS_FILE = Path(__file__).resolve().parents[1] / "feature_repo" / "definitions.py"
_STORES: dict[Path, Any] = {}
_EPOCH = date(1970, 1, 1)


class FeatureStoreError(RuntimeError):
    """A feature-store call that cannot be served as asked (missing marts, stale registry, bad input)."""


# ------------------------------------------------------------------------------------ configuration
def definitions_module() -> ModuleType:
    """`feature_repo/definitions.py`, loaded by path (feature_repo/ is a Feast repo, not a package)."""
    name = "aurora_feature_repo_definitions"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, _DEFINITIONS_FILE)
        if spec is None or spec.loader is None:
            raise FeatureStoreError(f"cannot load Feast definitions from {_DEFINITIONS_FILE}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


def build_definitions(paths: DataPaths):
    """The Feast objects for the marts present in `paths.features` (see feature_repo/definitions.py)."""
    return definitions_module().build_definitions(paths)


def repo_settings(paths: DataPaths) -> dict[str, Any]:
    """The feature_store.yaml content for this data directory (absolute paths)."""
    return {
        "project": "aurora",
        "provider": "local",
        "registry": {
            "registry_type": "file",
            "path": str(paths.feast / "registry.db"),
            "cache_ttl_seconds": 60,
        },
        "online_store": {"type": "sqlite", "path": str(paths.feast / "online.db")},
        "offline_store": {"type": "duckdb"},
        "entity_key_serialization_version": 3,
    }


def repo_config(paths: DataPaths):
    from feast import RepoConfig

    return RepoConfig(repo_path=paths.feast, **repo_settings(paths))


def store(paths: DataPaths):
    """A `FeatureStore` for this data directory (one per process and directory, reused)."""
    from feast import FeatureStore

    key = paths.root.resolve()
    fs = _STORES.get(key)
    if fs is None:
        paths.feast.mkdir(parents=True, exist_ok=True)
        with _quiet():
            fs = FeatureStore(config=repo_config(paths))
        _STORES[key] = fs
    return fs


# ------------------------------------------------------------------------------------------- apply
def apply(paths: DataPaths, log: Callable[[str], None] | None = None):
    """Register entity, sources, views and services for the marts present; drop ones now absent.

    Idempotent: applying unchanged marts changes nothing. Returns the `FeatureStore`.
    """
    import yaml

    log = log or (lambda _m: None)
    defs = build_definitions(paths)
    if not defs.views:
        raise FeatureStoreError(f"no feature marts in {paths.features}: build the features first")
    paths.feast.mkdir(parents=True, exist_ok=True)
    (paths.feast / "feature_store.yaml").write_text(yaml.safe_dump(repo_settings(paths), sort_keys=False))
    _STORES.pop(paths.root.resolve(), None)
    fs = store(paths)
    wanted_views = set(defs.views) | ({LABELS} if defs.labels is not None else set())
    stale: list = []
    with _quiet():
        stale += [s for s in fs.list_feature_services() if s.name not in defs.services]
        stale += [v for v in fs.list_feature_views() if v.name not in wanted_views]
        wanted_sources = {s.name for s in defs.sources.values()}
        stale += [s for s in fs.list_data_sources() if s.name not in wanted_sources]
    with _quiet(streams=True):
        fs.apply(defs.objects(), objects_to_delete=stale, partial=not stale)
    names = ", ".join(f"{v} ({len(defs.feature_names(v))})" for v in defs.views)
    log(
        f"feast apply: {len(defs.views)} feature views [{names}]"
        + (f", labels ({len(defs.feature_names(LABELS))})" if defs.labels is not None else ", no labels")
        + f", {len(defs.services)} services"
        + (f"; removed {sorted(o.name for o in stale)}" if stale else "")
    )
    return fs


# ---------------------------------------------------------------------------------- feature lookup
def _view_refs(fs, views: str | Sequence[str] | None) -> list[str]:
    """`view:feature` refs for views given as None (all), a service name, a view name, or a list."""
    if views is None:
        views = [ALL_VIEWS_SERVICE]
    elif isinstance(views, str):
        views = [views]
    refs: list[str] = []
    with _quiet():
        for name in views:
            refs += _refs_of(fs, name)
    return list(dict.fromkeys(refs))


def _refs_of(fs, name: str) -> list[str]:
    # one registry lookup per name (listing everything costs ~10 ms a call on the online path)
    try:
        service = fs.get_feature_service(name)
        return [f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features]
    except Exception:
        pass
    if name != LABELS:
        try:
            return [f"{name}:{f.name}" for f in fs.get_feature_view(name).features]
        except Exception:
            pass
    known = sorted(
        {s.name for s in fs.list_feature_services()} | {v.name for v in fs.list_feature_views()} - {LABELS}
    )
    raise FeatureStoreError(f"unknown feature view or service {name!r}; known: {known}")


def _label_refs(fs) -> list[str]:
    with _quiet():
        names = {v.name: v for v in fs.list_feature_views()}
    if LABELS not in names:
        raise FeatureStoreError("no labels view registered (features/labels.parquet missing when applied)")
    return [f"{LABELS}:{f.name}" for f in names[LABELS].features]


def _full_names(refs: Iterable[str]) -> list[str]:
    return [ref.replace(":", SEP, 1) for ref in refs]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Feature columns (`<view>__<feature>`) of a frame from `training_frame` / `online_vectors`."""
    return [c for c in frame.columns if SEP in c and not c.startswith(LABELS + SEP)]


def label_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(LABELS + SEP)]


def _check_registry_current(fs, paths: DataPaths) -> None:
    defs = build_definitions(paths)
    with _quiet():
        registered = {v.name: [f.name for f in v.features] for v in fs.list_feature_views()}
    marts = {v: defs.feature_names(v) for v in defs.views}
    if defs.labels is not None:
        marts[LABELS] = defs.feature_names(LABELS)
    problems = []
    for view in sorted(set(marts) | set(registered)):
        if view not in registered:
            problems.append(f"{view}: mart present, not registered")
        elif view not in marts:
            problems.append(f"{view}: registered, mart absent")
        elif set(marts[view]) != set(registered[view]):
            new, gone = set(marts[view]) - set(registered[view]), set(registered[view]) - set(marts[view])
            problems.append(f"{view}: new features {sorted(new)}, removed {sorted(gone)}")
    if problems:
        raise FeatureStoreError(
            "the Feast registry is out of date with the feature marts ("
            + "; ".join(problems)
            + "): run ml.feature_store.apply(paths) after building features"
        )


# ------------------------------------------------------------------------------------------ offline
def _entity_timestamps(dates: pd.Series) -> pd.Series:
    """Midnight UTC of each row's calendar date (tz-aware input keeps its own calendar date)."""
    ts = pd.to_datetime(dates)
    if ts.dt.tz is not None:
        ts = ts.dt.tz_localize(None)
    return ts.dt.normalize().dt.tz_localize("UTC")


def training_frame(
    paths: DataPaths,
    entity_df: pd.DataFrame,
    views: str | Sequence[str] | None = None,
    with_labels: bool = True,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Point-in-time features (and labels) for entity rows (symbol, date), via `get_historical_features`.

    `views`: None (all feature views), a feature service name (`all_views`, `<view>_service`), a view
    name, or a list of those. Returns one row per entity row, in the entity frame's order: `symbol`,
    `date` (as given), then `<view>__<feature>` float columns in view and mart order, then
    `labels__<label>` when `with_labels`. A value is NaN when no row of that view is dated on or before
    the entity date within the view's ttl.
    """
    missing = [c for c in ("symbol", "date") if c not in entity_df.columns]
    if missing:
        raise FeatureStoreError(f"entity_df needs columns symbol and date; missing {missing}")
    if entity_df[["symbol", "date"]].isna().any().any():
        raise FeatureStoreError("entity_df has null symbol or date values")
    t0 = time.perf_counter()
    fs = store(paths)
    with _quiet():
        fs.refresh_registry()
    _check_registry_current(fs, paths)
    refs = _view_refs(fs, views) + (_label_refs(fs) if with_labels else [])
    out = entity_df[["symbol", "date"]].reset_index(drop=True)
    keys = pd.DataFrame(
        {"symbol": out["symbol"].astype(str), "event_timestamp": _entity_timestamps(out["date"])}
    )
    unique = keys.drop_duplicates(ignore_index=True)
    if unique.empty:
        return pd.concat([out, pd.DataFrame(columns=_full_names(refs), dtype="float64")], axis=1)
    with _quiet():
        got = fs.get_historical_features(entity_df=unique, features=refs, full_feature_names=True).to_df()
    got["event_timestamp"] = pd.to_datetime(got["event_timestamp"], utc=True).astype(
        keys["event_timestamp"].dtype
    )
    columns = _full_names(refs)
    merged = keys.merge(
        got[["symbol", "event_timestamp", *columns]], how="left", on=["symbol", "event_timestamp"]
    )
    if len(merged) != len(keys):
        raise FeatureStoreError("historical retrieval returned duplicate rows for an entity key")
    features = merged[columns].astype("float64")
    if log is not None:
        log(
            f"training frame: {len(out)} rows ({len(unique)} unique keys) x {len(columns)} columns "
            f"via get_historical_features in {time.perf_counter() - t0:.1f}s"
        )
    return pd.concat([out, features], axis=1)


def entity_frame(paths: DataPaths, source: str = LABELS) -> pd.DataFrame:
    """All (symbol, date) keys of one mart (default: labels), sorted: the default training entities."""
    import duckdb

    path = paths.features / f"{source}.parquet"
    if not path.exists():
        raise FeatureStoreError(f"{path} not found")
    with duckdb.connect() as con:
        return (
            con.execute("select symbol, date from read_parquet(?) order by date, symbol", [str(path)])
            .df()
            .assign(date=lambda f: pd.to_datetime(f["date"]).dt.date)
        )


# ------------------------------------------------------------------------------------------- online
def _as_utc(value: date | datetime | str | None) -> datetime | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def _mart_date_range(paths: DataPaths, views: Iterable[str]) -> tuple[datetime, datetime]:
    import duckdb

    files = [str(paths.features / f"{v}.parquet") for v in views]
    with duckdb.connect() as con:
        lo, hi = con.execute("select min(date), max(date) from read_parquet(?)", [files]).fetchone()
    return _as_utc(lo), _as_utc(hi)


def materialize(
    paths: DataPaths,
    start: date | datetime | str | None,
    end: date | datetime | str | None,
    views: Sequence[str] | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, float]:
    """Load the latest row per symbol dated in [start, end] (both inclusive) into the online store.

    `start`/`end` None mean the marts' first/last date. `views`: feature view names (default: all
    registered feature views; labels are never materialized). Returns seconds per view.
    """
    log = log or (lambda _m: None)
    fs = store(paths)
    with _quiet():
        registered = [v.name for v in fs.list_feature_views() if v.name != LABELS]
    todo = list(views) if views is not None else registered
    unknown = [v for v in todo if v not in registered]
    if unknown:
        raise FeatureStoreError(f"cannot materialize unregistered views {unknown}; registered: {registered}")
    if not todo:
        raise FeatureStoreError("no feature views registered: run apply first")
    lo, hi = _mart_date_range(paths, todo) if start is None or end is None else (None, None)
    start_ts, end_ts = _as_utc(start) or lo, _as_utc(end) or hi
    log(
        f"materialize {len(todo)} views, {start_ts.date()} .. {end_ts.date()} into {paths.feast / 'online.db'}"
    )
    timings: dict[str, float] = {}
    for i, view in enumerate(todo, 1):
        t0 = time.perf_counter()
        with _quiet(streams=True):
            fs.materialize(start_date=start_ts, end_date=end_ts, feature_views=[view])
        timings[view] = time.perf_counter() - t0
        log(f"materialize [{i}/{len(todo)}] {view}: {timings[view]:.1f}s")
    return timings


def online_vectors(
    paths: DataPaths,
    symbols: Sequence[str],
    views: str | Sequence[str] | None = None,
    view_dates: bool = False,
) -> pd.DataFrame:
    """Latest materialized feature vectors for `symbols`, via `get_online_features`.

    Returns one row per symbol in the order given: `symbol`, `date` (the latest event date among
    the vector's views, a `datetime.date`; None when nothing is materialized for the symbol), then
    `<view>__<feature>` columns as in `training_frame`. With `view_dates`, a `<view>__asof` date column
    per view follows (views can be stale by different amounts; the online store applies no ttl).
    """
    fs = store(paths)
    refs = _view_refs(fs, views)
    symbols = [str(s) for s in symbols]
    with _quiet():
        response = fs.get_online_features(
            features=refs, entity_rows={"symbol": symbols}, full_feature_names=True
        )
    raw = response.to_dict(include_event_timestamps=True)
    columns = _full_names(refs)
    data: dict[str, Any] = {c: np.array(raw[c], dtype="float64") for c in columns}  # None -> NaN
    asof: dict[str, np.ndarray] = {}  # epoch seconds of each view's row per symbol (0: none)
    for ref, col in zip(refs, columns, strict=True):
        asof.setdefault(ref.split(":", 1)[0], np.array(raw[f"{col}__ts"], dtype="int64"))
    latest = np.max(np.vstack(list(asof.values())), axis=0)
    out = pd.DataFrame({"symbol": symbols, "date": _to_dates(latest), **data})
    if view_dates:
        for view, secs in asof.items():
            out[f"{view}{SEP}asof"] = _to_dates(secs)
    return out


def _to_dates(epoch_seconds: np.ndarray) -> list[date | None]:
    days = (np.asarray(epoch_seconds) // 86400).tolist()
    return [_EPOCH + timedelta(days=d) if s > 0 else None for d, s in zip(days, epoch_seconds, strict=True)]


# -------------------------------------------------------------------------------------------- misc
@contextlib.contextmanager
def _quiet(streams: bool = False):
    """Silence Feast's deprecation chatter and, with `streams`, its prints and progress bars (apply,
    materialize); errors still propagate. Redirecting streams is process-wide, so it is kept to the
    calls that print."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not streams:
            yield
            return
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield


def cli_objects(paths: DataPaths | None = None) -> dict[str, Any]:
    """Named Feast objects for `feature_repo/repo.py` (the `feast` command line's view of the repo)."""
    defs = build_definitions(paths or DataPaths.from_env())
    named: dict[str, Any] = {"symbol_entity": defs.entity}
    named.update({f"{v}_source": s for v, s in defs.sources.items()})
    named.update({f"{v}_view": fv for v, fv in defs.views.items()})
    if defs.labels is not None:
        named["labels_view"] = defs.labels
    named.update({f"{name}_feature_service": s for name, s in defs.services.items()})
    return named


__all__ = [
    "ALL_VIEWS_SERVICE",
    "FeatureStoreError",
    "apply",
    "build_definitions",
    "entity_frame",
    "feature_columns",
    "label_columns",
    "materialize",
    "online_vectors",
    "repo_config",
    "store",
    "training_frame",
]
