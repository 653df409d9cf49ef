"""Prefect 3 flows over `ml/`: build_features, train_zoo, monitor, ensemble_calibrate, policy_backtest,
publish_signals, monitoring_marts, and the parent `daily_pipeline`.

Design notes
- `ml/` knows nothing of Prefect; every task here is a thin call into a stage function of `ml`.
- Tasks exchange paths and small dicts, never DataFrames. Caching is keyed on a token made of the
  data snapshot (sha256 of the input files) and the code (sha256 of the source that shapes the
  output), so a re-run after a crash or a kill skips finished work and recomputes the rest.
- I/O-bound tasks (warehouse, Feast) retry with exponential backoff.
- `train_zoo` fans out one task per (family, view) spec, the costly ones first, on 2 worker processes
  (`zoo_task_runner`: threads on request); pass `dask_address` (or `use_dask`) to run them on a Dask
  cluster through `prefect_dask.DaskTaskRunner`.
- Inside a flow or task run (flows/observability.py), stage output goes through Prefect's run logger (the run's page in the UI)
  and to stdout; outside one it is printed.
- Each stage flow records its row of `ml.run_log` from its state hooks (`RUN_LOG_HOOKS`: on_running,
  on_completion, on_failure, on_crashed); `daily_pipeline` ends by publishing the headline metrics, the
  quality summary and the backtest summary as Prefect artifacts.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import INPUTS, NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from flows.observability import _PIPELINE, RUN_LOG_HOOKS, publish_artifacts, run_logger, say  # noqa: F401
from ml.paths import DataPaths

ROOT = Path(__file__).resolve().parents[1]
CODE_GLOBS = ("ml/*.py", "models/**/*.sql", "models/**/*.yml", "macros/*.sql", "config/*.yaml",
              "dbt_project.yml", "feature_repo/*.py")


def _retry_unless_gate(task, task_run, state) -> bool:
    """Retry I/O hiccups, never a data-quality gate: bad data stays bad on a second try."""
    from ml.pipeline import StageUnavailable
    from ml.quality import DataQualityError
    from ml.warehouse import FeatureBuildError

    try:
        state.result()
    except (FeatureBuildError, DataQualityError, StageUnavailable):
        return False
    except Exception:
        return True
    return False


IO_RETRIES = {
    "retries": 2,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_condition_fn": _retry_unless_gate,
}


# ------------------------------------------------------------------------------------------ tokens


def _sha256_files(files: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@functools.cache
def code_version() -> str:
    """sha256 of the source that shapes outputs (library, SQL, configs)."""
    files = {p for pattern in CODE_GLOBS for p in ROOT.glob(pattern) if p.is_file()}
    return _sha256_files(files)[:16]


def snapshot(*folders: Path, pattern: str = "*.parquet") -> str:
    files = [p for folder in folders if folder.exists() for p in folder.glob(pattern)]
    return _sha256_files(files)[:16]


def token(*parts: str) -> str:
    return hashlib.sha256("|".join((code_version(), *parts)).encode()).hexdigest()[:24]


# ------------------------------------------------------------------------------------------ tasks


@task(name="build-features", cache_policy=INPUTS, persist_result=True, **IO_RETRIES)
def build_features_task(data_dir: str, cache_token: str) -> dict[str, Any]:
    from ml.pipeline import build_feature_layer

    paths = DataPaths(Path(data_dir))
    return {"timings": build_feature_layer(paths, log=say)}


@task(name="training-frames", cache_policy=INPUTS, persist_result=True, **IO_RETRIES)
def training_frames_task(data_dir: str, cache_token: str) -> dict[str, str]:
    """Point-in-time frames from Feast, one parquet per view under artifacts/training/."""
    from ml.pipeline import load_training_frames

    paths = DataPaths(Path(data_dir))
    out = paths.artifacts / "training"
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for view, frame in load_training_frames(paths, log=say).items():
        target = out / f"{view}.parquet"
        tmp = target.with_suffix(".tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
        files[view] = str(target)
    return files


_BUILT: dict[tuple, Any] = {}
_PREPARED: dict[tuple, Any] = {}
_PREPARED_LOCK = threading.RLock()  # `all` prepares its parts first, inside the same lock


def _prepared_view(frame_files: dict[str, str], view: str, cfg: dict):
    """Prepare each view once per worker process (the tasks of a thread pool share it), from view
    frames built once per process: building them all takes seconds, and a view asks for one of them."""
    import pandas as pd

    from ml import training

    files = tuple(sorted(frame_files.items()))
    key = (files, view)
    with _PREPARED_LOCK:
        if key not in _PREPARED:
            if files not in _BUILT:
                _BUILT.clear()  # one frame set at a time per process: a new run's frames replace the last
                frames = {name: pd.read_parquet(f) for name, f in frame_files.items()}
                _BUILT[files] = training.build_view_frames(frames, cfg)
            built = _BUILT[files]
            parts = None
            if view == training.ALL_VIEW:  # its features are its parts' columns: normalized once, there
                parts = training.normalized_parts(
                    [_prepared_view(frame_files, v, cfg) for v in built if v != training.ALL_VIEW])
            _PREPARED[key] = training.prepare_view(built[view], view, cfg, normalized=parts) if view in built else None
        return _PREPARED[key]


@task(name="train-spec", cache_policy=INPUTS, persist_result=True,
      task_run_name="train {family} x {view} (horizon {horizon})")
def train_spec_task(frame_files: dict[str, str], family: str, view: str, cache_token: str,
                    horizon: int | None = None):
    from ml import training
    from ml.models.horizons import horizon_config, retarget

    cfg = training.load_config()
    prep = _prepared_view(frame_files, view, cfg)
    if prep is None:
        return None
    if horizon is not None:  # an extra label horizon: the same normalized features, another target
        cfg = horizon_config(cfg, horizon)
        prep = retarget(prep, cfg)
        family_name = f"{family}@{horizon}d"
    else:
        family_name = family
    result = training.train_spec(prep, family, cfg)
    say(f"[zoo] {family_name:<13} x {view:<15} rank IC {result.metrics.get('rank_ic', float('nan')):+.4f}"
        f"  {result.elapsed_s:6.1f}s")
    return result


@task(name="register-zoo", cache_policy=NO_CACHE, **IO_RETRIES)
def register_task(data_dir: str, specs: list, labels_file: str) -> dict[str, Any]:
    import pandas as pd

    from ml import training
    from ml.pipeline import register_zoo_result
    from ml.report import update_saved_report

    paths = DataPaths(Path(data_dir))
    cfg = training.load_config()
    result = training.zoo_result([s for s in specs if s is not None])
    values = register_zoo_result(paths, result, pd.read_parquet(labels_file), cfg, log=say)
    update_saved_report(paths, **values)
    return values


@task(name="stage", cache_policy=NO_CACHE, task_run_name="{stage}", **IO_RETRIES)
def stage_task(data_dir: str, stage: str) -> dict[str, Any]:
    """A later stage of `ml.pipeline.STAGES` (ensemble, policy, publishing, monitoring)."""
    from ml.pipeline import run_stage
    from ml.report import update_saved_report

    paths = DataPaths(Path(data_dir))
    values = run_stage(stage, paths, log=say)
    if values:
        update_saved_report(paths, **values)
    return values or {}


# ------------------------------------------------------------------------------------------ flows


def _data_dir(data_dir: str | None) -> str:
    return str(DataPaths.from_env(data_dir).root)


@flow(name="build_features", log_prints=False, **RUN_LOG_HOOKS)
def build_features(data_dir: str | None = None) -> dict[str, Any]:
    data_dir = _data_dir(data_dir)
    paths = DataPaths(Path(data_dir))
    fresh = not (paths.features / "labels.parquet").exists()
    key = token("features", snapshot(paths.raw), str(paths.root))
    return build_features_task.with_options(refresh_cache=fresh)(data_dir, key)


ZOO_RUNNERS = ("process", "thread")
ZOO_WORKERS = 2  # default worker count, $AURORA_ZOO_WORKERS overrides it for `aurora run`


def zoo_task_runner(use_dask: bool | None = None, dask_address: str | None = None, workers: int | None = None,
                    kind: str | None = None):
    """Worker processes on this machine by default, threads on request, a Dask cluster (local or at
    `dask_address`) on request.

    Processes by default: specs whose inner loops hold the GIL (pandas per-date work, JAX dispatch)
    slow the spec on the other thread (bench/bench_zoo_runner.py: summed spec time +18-20% on threads,
    -1 to +12% on processes; the default market's zoo 534 s on processes against 694 s on threads,
    BENCHMARKS.md "Worker processes for the zoo"); each process prepares the views it trains once.

    Environment: AURORA_ZOO_RUNNER (process | thread), AURORA_ZOO_WORKERS (default 2),
    AURORA_DASK_ADDRESS (scheduler address), AURORA_USE_DASK=1 (local cluster).
    """
    dask_address = dask_address or os.environ.get("AURORA_DASK_ADDRESS") or None
    use_dask = use_dask if use_dask is not None else os.environ.get("AURORA_USE_DASK") == "1"
    workers = workers or int(os.environ.get("AURORA_ZOO_WORKERS", ZOO_WORKERS))
    kind = (kind or os.environ.get("AURORA_ZOO_RUNNER") or "process").strip().lower()
    if kind not in ZOO_RUNNERS:
        raise ValueError(f"AURORA_ZOO_RUNNER={kind!r}: one of {', '.join(ZOO_RUNNERS)}")
    if use_dask or dask_address:
        try:  # the optional `dask` extra: imported only when a Dask cluster is asked for
            from prefect_dask import DaskTaskRunner
        except ImportError as err:
            raise ImportError(
                "a Dask task runner was asked for (AURORA_USE_DASK / AURORA_DASK_ADDRESS) but "
                f"{err.name or 'prefect_dask'} is not installed: install Aurora's `dask` extra "
                "(`pip install -e '.[dask]'`; `make install` includes it), or unset AURORA_USE_DASK "
                "and AURORA_DASK_ADDRESS to run on threads"
            ) from err

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})
    if kind == "process":
        return ProcessPoolTaskRunner(max_workers=workers)
    return ThreadPoolTaskRunner(max_workers=workers)


def _feature_count(parquet_file: str) -> int:
    """Columns of a view's frame, from the parquet footer (no data read)."""
    import pyarrow.parquet as pq

    return len(pq.read_schema(parquet_file).names)


# the flow's own runner (a served deployment's); `aurora run` passes `zoo_task_runner()`, which reads the environment
@flow(name="train_zoo", log_prints=False, task_runner=ProcessPoolTaskRunner(max_workers=ZOO_WORKERS), **RUN_LOG_HOOKS)
def train_zoo(data_dir: str | None = None) -> dict[str, Any]:
    """One task per (family, view) spec of config/zoo.yaml, on the flow's task runner."""
    from ml import training

    data_dir = _data_dir(data_dir)
    paths = DataPaths(Path(data_dir))
    cfg = training.load_config()
    features_key = token("frames", snapshot(paths.features), str(paths.root))
    fresh = not (paths.artifacts / "training" / "labels.parquet").exists()
    frame_files = training_frames_task.with_options(refresh_cache=fresh)(data_dir, features_key)
    families = training.enabled_families(cfg)
    views = [v for v in cfg["views"] if v == "all" or v in frame_files]
    pairs = [(f, v) for v in views for f in families if training.runs_on(cfg, f, v)]
    say(f"[zoo] {len(families)} families x {len(views)} views = {len(pairs)} models")
    from ml.models.uncertainty_scores import StdSettings

    # the interval method decides whether a spec records score stds: a cached spec of another method lacks them
    spec_key = token("spec", features_key, repr(sorted(cfg.items(), key=str)), StdSettings.from_config(cfg).token())
    from ml.models.horizons import horizon_specs

    runs = [(family, view, None) for family, view in pairs] + [
        (family, view, horizon)
        for view in views for family, horizon in horizon_specs(cfg, families) if training.runs_on(cfg, family, view)
    ]
    widths = {v: _feature_count(f) for v, f in frame_files.items()}
    futures = [train_spec_task.submit(frame_files, family, view, spec_key, horizon)
               for family, view, horizon in training.longest_first(runs, cfg, widths)]
    specs = [f.result() for f in futures]
    return register_task(data_dir, specs, frame_files["labels"])


def _run_stages(data_dir: str | None, stages: tuple[str, ...]) -> dict[str, Any]:
    data_dir = _data_dir(data_dir)
    values: dict[str, Any] = {}
    for stage in stages:
        values.update(stage_task(data_dir, stage))
    return values


@flow(name="monitor", **RUN_LOG_HOOKS)
def monitor(data_dir: str | None = None) -> dict[str, Any]:
    """Model lifecycle: monthly ICs, retirements, promotions, drift and regimes (before the ensemble)."""
    return _run_stages(data_dir, ("monitor",))


@flow(name="ensemble_calibrate", **RUN_LOG_HOOKS)
def ensemble_calibrate(data_dir: str | None = None) -> dict[str, Any]:
    """Equal, IC-weighted and stacked ensembles of the live models, calibrated into expected returns
    with intervals: ml.signals, ml.ensemble_signals, ml.ensemble_comparison."""
    return _run_stages(data_dir, ("ensemble_calibrate",))


@flow(name="policy_backtest", **RUN_LOG_HOOKS)
def policy_backtest(data_dir: str | None = None) -> dict[str, Any]:
    """The cost-aware policy on the calibrated signals and the backtest after costs:
    ml.positions, ml.backtest_daily."""
    return _run_stages(data_dir, ("policy_backtest",))


@flow(name="publish_signals", **RUN_LOG_HOOKS)
def publish_signals(data_dir: str | None = None) -> dict[str, Any]:
    """Today's signals and positions from the online store into ml.signals and ml.positions."""
    return _run_stages(data_dir, ("publish_signals",))


@flow(name="monitoring_marts", **RUN_LOG_HOOKS)
def monitoring_marts(data_dir: str | None = None) -> dict[str, Any]:
    """dbt monitoring marts over the ml tables (what the app shows)."""
    return _run_stages(data_dir, ("monitoring_marts",))


# the flow that runs each stage of ml.pipeline.STAGES
STAGE_FLOWS = {
    "monitor": monitor,
    "ensemble_calibrate": ensemble_calibrate,
    "policy_backtest": policy_backtest,
    "publish_signals": publish_signals,
    "monitoring_marts": monitoring_marts,
}


@flow(name="daily_pipeline")
def daily_pipeline(data_dir: str | None = None) -> dict[str, Any]:
    """build_features -> train_zoo -> monitor -> ensemble_calibrate -> policy_backtest ->
    publish_signals -> monitoring_marts, each a subflow whose state hooks keep ml.run_log; then the
    run's artifacts (headline metrics, quality summary, backtest summary)."""
    from ml.pipeline import available_stages, verify_stages
    from ml.report import update_saved_report

    verify_stages()
    data_dir = _data_dir(data_dir)
    paths = DataPaths(Path(data_dir))
    timings: dict[str, float] = {}
    run_id = datetime.now(UTC).strftime("run-%Y%m%dT%H%M%S")
    context = _PIPELINE.set({"run_id": run_id, "paths": paths, "timings": timings})
    try:
        started = time.perf_counter()
        feature_timings = build_features(data_dir).get("timings", {})
        train_zoo.with_options(task_runner=zoo_task_runner())(data_dir)
        for stage in available_stages():
            STAGE_FLOWS[stage](data_dir)
    finally:
        _PIPELINE.reset(context)
    timings["total"] = round(time.perf_counter() - started, 2)
    timings.update({f"features.{k}": round(v, 2) for k, v in feature_timings.items()})
    update_saved_report(paths, timings_s=timings)
    publish_artifacts(paths)
    return timings
