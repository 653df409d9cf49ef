"""How `aurora run` schedules the zoo's specs.

- by default on worker processes (no shared GIL), on threads or Dask on request, and a clear error for
  an unknown runner;
- the costly specs start first, so the cheap ones fill the last idle worker at the end.
"""

from __future__ import annotations

import pytest
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from flows.pipeline import zoo_task_runner
from ml.models.horizons import horizon_specs
from ml.training import enabled_families, family_settings, load_config, longest_first, runs_on


def test_the_zoo_runs_on_worker_processes_by_default(monkeypatch):
    for name in ("AURORA_ZOO_RUNNER", "AURORA_USE_DASK", "AURORA_DASK_ADDRESS", "AURORA_ZOO_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    runner = zoo_task_runner()
    assert isinstance(runner, ProcessPoolTaskRunner) and runner._max_workers == 2


def test_threads_on_request_and_an_unknown_runner_is_named(monkeypatch):
    monkeypatch.setenv("AURORA_ZOO_RUNNER", "thread")
    monkeypatch.setenv("AURORA_ZOO_WORKERS", "3")
    runner = zoo_task_runner()
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 3
    monkeypatch.setenv("AURORA_ZOO_RUNNER", "fibers")
    with pytest.raises(ValueError, match="AURORA_ZOO_RUNNER='fibers'.*process, thread"):
        zoo_task_runner()


def test_costly_specs_start_first_on_the_widest_views():
    cfg = load_config()
    families = enabled_families(cfg)
    views = ["price_momentum", "sector_neutral", "microstructure", "all"]
    widths = {"price_momentum": 27, "sector_neutral": 39, "microstructure": 11}  # `all`: no file, widest
    runs = [(f, v, None) for v in views for f in families if runs_on(cfg, f, v)]
    runs += [(f, v, h) for v in views for f, h in horizon_specs(cfg, families) if runs_on(cfg, f, v)]
    order = longest_first(runs, cfg, widths)

    assert sorted(order, key=str) == sorted(runs, key=str)  # a permutation: nothing dropped or added
    subsampled = [family_settings(cfg, f)["max_train_rows"] is not None for f, _, _ in order]
    first_cheap = subsampled.index(False)
    assert all(subsampled[:first_cheap]) and not any(subsampled[first_cheap:])  # row-capped fits lead
    heavy_views = [v for (_, v, _), s in zip(order, subsampled, strict=True) if s]
    assert heavy_views[0] == "all"
    rank = {"all": 0, "sector_neutral": 1, "price_momentum": 2, "microstructure": 3}
    assert [rank[v] for v in heavy_views] == sorted(rank[v] for v in heavy_views)  # widest view first
    # within one (cost class, view), the primary label before the other horizons
    cheap_all = [h for f, v, h in order if v == "all" and not family_settings(cfg, f)["max_train_rows"]]
    assert cheap_all.index(1) > max(i for i, h in enumerate(cheap_all) if h is None)
