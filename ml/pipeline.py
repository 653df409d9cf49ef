"""The daily pipeline as plain functions: the stages that exist today, in order.

Prefect flows wrap these later; keeping them here lets tests and the CLI run them without a server.
Each stage records its wall time in the saved report (`timings_s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ml.paths import DataPaths
from ml.report import build_report, render_report, update_saved_report

Log = Callable[[str], None]


def build_feature_layer(paths: DataPaths, log: Log = print, select: str | None = None) -> dict[str, float]:
    """dbt build (with its tests) -> Great Expectations gate -> Feast apply -> materialize.

    Any failure raises before the next stage, so a bad build never reaches Feast.
    """
    from ml import feature_store, quality
    from ml.warehouse import build_features

    timings: dict[str, float] = {}
    started = time.perf_counter()
    log("[1/4] dbt build: staging -> intermediate -> feature marts + labels, with data and unit tests")
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
        timings_s=timings,
    )
    return timings


def run_pipeline(paths: DataPaths, log: Log = print) -> int:
    if not paths.raw_table("prices").exists():
        log(f"no raw data in {paths.raw}: run `aurora generate` or `aurora ingest` first")
        return 1
    started = time.perf_counter()
    log(f"pipeline on {paths.root}")
    timings = build_feature_layer(paths, log=log)
    # Training, ensembling and the policy join here as their issues land.
    timings["total"] = time.perf_counter() - started
    update_saved_report(paths, timings_s=timings)
    log(f"pipeline done in {timings['total']:.1f}s")
    print(render_report(build_report(paths)))
    return 0
