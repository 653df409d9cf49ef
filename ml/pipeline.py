"""The daily pipeline as plain functions: the stages that exist today, in order.

Prefect flows wrap these later; keeping them here lets tests and the CLI run them without a server.
Each stage records its wall time in the saved report (`timings_s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from ml.paths import DataPaths
from ml.report import build_report, render_report, update_saved_report

Log = Callable[[str], None]


def build_feature_layer(paths: DataPaths, log: Log = print, select: str | None = None) -> dict[str, float]:
    """dbt build (with its tests, and the feature research marts) -> Great Expectations gate -> Feast
    apply -> materialize.

    Any failure raises before the next stage, so a bad build never reaches Feast; a failure of the
    research marts alone is logged as a warning (ml.warehouse.build_features).
    """
    from ml import feature_store, quality
    from ml.warehouse import build_features

    timings: dict[str, float] = {}
    started = time.perf_counter()
    log("[1/4] dbt build: staging -> intermediate -> feature marts + labels -> research, with data and unit tests")
    result = build_features(paths, log=log, select=select)
    timings["dbt_build"] = time.perf_counter() - started

    started = time.perf_counter()
    log("[2/4] Great Expectations checkpoint on the feature and label frames")
    quality.check_features(paths, log=log)
    timings["quality_gate"] = time.perf_counter() - started

    started = time.perf_counter()
    log("[3/4] feast apply")
    feature_store.apply(paths, log=log)
    timings["feast_apply"] = time.perf_counter() - started

    started = time.perf_counter()
    log("[4/4] feast materialize (online store: latest vector per symbol)")
    feature_store.materialize(paths, None, None, log=log)
    timings["feast_materialize"] = time.perf_counter() - started

    update_saved_report(
        paths,
        n_feature_views=len(result.views_built),
        feature_views=result.views_built,
        feature_views_skipped=result.views_skipped,
    )
    return timings


def load_training_frames(paths: DataPaths, log: Log = print) -> dict:
    """Point-in-time view frames (+ labels) from Feast's offline store (get_historical_features),
    without the columns the quality gate quarantined (`quality.quarantine`)."""
    from ml import feature_store, training
    from ml.data import quarantine
    from ml.models.categories import CATEGORIES_KEY, load_categories

    started = time.perf_counter()
    log("training frame from the Feast offline store (get_historical_features, point-in-time)")
    wide = feature_store.training_frame(paths, feature_store.entity_frame(paths), with_labels=True, log=log)
    frames = quarantine.drop_from_frames(training.frames_from_wide(wide), paths, log=log)
    categories = load_categories(paths)  # sector / industry for `needs_categories` families
    if categories is not None:
        frames[CATEGORIES_KEY] = categories
    log(f"training frame ready in {time.perf_counter() - started:.1f}s: views {', '.join(sorted(frames))}")
    return frames


MODEL_METRIC_COLUMNS = ("rank_ic", "ic", "icir", "t_stat", "hit_rate", "rank_ic_std", "ic_decay_1", "ic_decay_5",
                        "ic_decay_21", "decile_spread", "decile_spread_t", "n_days", "n_folds", "n_features",
                        "seconds")


def write_model_metrics(paths: DataPaths, metrics: pd.DataFrame, importance: pd.DataFrame | None = None,
                        score_std: pd.DataFrame | None = None) -> None:
    """`ml.model_metrics`: one row per registered model with its out-of-sample metrics over the whole
    walk-forward history (the monthly ones are the lifecycle's `ml.model_metrics_monthly`); with
    `importance` (`ml.importance.importance_table`), `ml.feature_importance` in the same transaction,
    and with `score_std` (`ml.models.uncertainty_scores.std_table`), `ml.prediction_std`."""
    from ml.tables import write_tables

    frame = metrics.reindex(columns=["model_id", "family", "view", "start", "end", *MODEL_METRIC_COLUMNS]).copy()
    for col in ("start", "end"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    frame = frame.rename(columns={"start": "oos_start", "end": "oos_end"})
    for col in MODEL_METRIC_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    tables = {"model_metrics": frame.sort_values("model_id").reset_index(drop=True)}
    if importance is not None:
        from ml.importance import TABLE

        tables[TABLE] = importance
    if score_std is not None:
        from ml.models.uncertainty_scores import TABLE as STD_TABLE

        tables[STD_TABLE] = score_std
    write_tables(paths, tables)


def register_zoo_result(paths: DataPaths, result, labels, cfg: dict, log: Log = print) -> dict:
    """Registry + out-of-sample predictions into the warehouse; the report keys of the zoo. The best
    model by whole-history rank IC is picked with hindsight, so it is written as a diagnostic
    (`*_hindsight`); the headline `best_single_model_rank_ic` is the ensemble stage's walk-forward pick."""
    from ml import registry
    from ml.importance import importance_table
    from ml.models.uncertainty_scores import std_table
    from ml.report import oracle_rank_ic
    from ml.warehouse import mart_checksums

    records = registry.register_zoo(paths, result, mart_checksums(paths, lineage=True), overwrite=True)
    metrics = result.metrics
    registered = {r.model_id for r in records}
    importance = importance_table(result.specs, registered)
    stds = std_table(result.predictions, registered)  # empty unless intervals.method asked for stds
    write_model_metrics(paths, metrics[metrics["model_id"].isin(registered)], importance, stds)
    log(f"registered {len(records)} models and {len(result.predictions):,} out-of-sample predictions "
        f"(ml.model_registry, ml.predictions, ml.model_metrics; {len(importance):,} feature importances "
        f"per refit in ml.feature_importance; {len(stds):,} score stds in ml.prediction_std)")
    best = metrics.loc[metrics["rank_ic"].idxmax()]
    values = {
        "best_single_model_rank_ic_hindsight": float(best["rank_ic"]),
        "best_single_model_hindsight": str(best["model_id"]),
        "n_model_families": int(metrics["family"].nunique()),
        "n_feature_views": int(metrics.loc[metrics["view"] != "all", "view"].nunique()),
        "zoo_rank_ic": {f"{r.family}|{r.view}": round(float(r.rank_ic), 5) for r in metrics.itertuples()},
    }
    oracle = oracle_rank_ic(
        paths, dates=result.predictions["date"].unique(), labels=labels, label=cfg["target"]["label"]
    )
    if oracle is not None:
        values["oracle_rank_ic"] = oracle
    return values


def train_stage(paths: DataPaths, log: Log = print, config=None) -> dict:
    """Walk-forward train the zoo on point-in-time frames from Feast's offline store.

    Writes the registry (`ml.model_registry`, YAML + native artifacts) and the out-of-sample
    predictions (`ml.predictions`); returns the report keys it fills.
    """
    from ml import training

    cfg = training.load_config(config)
    frames = load_training_frames(paths, log=log)
    result = training.train_zoo(frames, cfg, log=log)
    return register_zoo_result(paths, result, frames.get("labels"), cfg, log=log)


# The stages after training, in pipeline order: name -> (module, function). Each takes
# (paths, log=...) and returns the report keys it fills.
# The monitor decides which models are active before the ensemble reads them. Each stage writes
# its tables in one transaction; the policy stage reads the calibrated signals of every ensemble
# from `ml.ensemble_signals`, which the ensemble stage wrote.
STAGES: dict[str, tuple[str, str]] = {
    "monitor": ("ml.monitoring.stage", "run_monitor_stage"),
    "ensemble_calibrate": ("ml.evaluation", "run_ensemble_stage"),
    "policy_backtest": ("ml.policy_stage", "run_policy_stage"),
    "publish_signals": ("ml.publish", "run_publish_stage"),
    "monitoring_marts": ("ml.monitoring.marts", "run_monitoring_marts_stage"),
}


class StageUnavailable(RuntimeError):
    """A stage's module failed to import or lacks its function: the run fails, it never skips the stage."""


def _stage_function(name: str):
    import importlib

    module_name, function = STAGES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:  # a broken dependency must fail the run, not silently drop a stage
        raise StageUnavailable(f"stage {name!r}: module {module_name} failed to import: {err!r}") from err
    fn = getattr(module, function, None)
    if fn is None:
        raise StageUnavailable(f"stage {name!r}: {module_name} has no function {function!r}")
    return fn


def verify_stages() -> None:
    """Import every stage before the run starts, so a broken dependency fails it at once."""
    for name in STAGES:
        _stage_function(name)


def available_stages() -> list[str]:
    """The stages after training, in pipeline order (all of them: none is optional)."""
    return list(STAGES)


class InjectedFailure(RuntimeError):
    """Raised by the stage named in AURORA_FAIL_STAGE: reliability tests prove a failed step
    leaves the previous tables intact."""


def run_stage(name: str, paths: DataPaths, log: Log = print) -> dict:
    import os

    if os.environ.get("AURORA_FAIL_STAGE") == name:
        raise InjectedFailure(f"stage {name} failed on purpose (AURORA_FAIL_STAGE={name})")
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    return _stage_function(name)(paths, log=log) or {}


def run_pipeline(paths: DataPaths, log: Log = print) -> int:
    if not paths.raw_table("prices").exists():
        log(f"no raw data in {paths.raw}: run `aurora generate` or `aurora ingest` first")
        return 1
    verify_stages()
    started = time.perf_counter()
    log(f"pipeline on {paths.root}")
    timings = build_feature_layer(paths, log=log)
    stage_started = time.perf_counter()
    update_saved_report(paths, **train_stage(paths, log=log))
    timings["train_zoo"] = time.perf_counter() - stage_started
    for stage in available_stages():
        stage_started = time.perf_counter()
        update_saved_report(paths, **run_stage(stage, paths, log=log))
        timings[stage] = time.perf_counter() - stage_started
    timings["total"] = time.perf_counter() - started
    update_saved_report(paths, timings_s=timings)
    log(f"pipeline done in {timings['total']:.1f}s")
    print(render_report(build_report(paths)))
    return 0
