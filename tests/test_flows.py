"""Reliability of `aurora run` (the Prefect daily_pipeline) on a small market.

- it runs end to end locally with no server to set up, and reports per-stage timings;
- killed midway and run again, it ends with the same tables as an uninterrupted run;
- two runs with the same seed give identical tables (signals included once that stage exists);
- a failed step leaves the previous tables intact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.market import MarketConfig, write_market

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("predictions", "model_registry", "signals", "positions", "backtest_daily")
SORT_KEYS = {"predictions": ["model_id", "date", "symbol"], "signals": ["date", "symbol"],
             "positions": ["date", "symbol"], "backtest_daily": ["date"], "model_registry": ["model_id"]}
# columns that legitimately differ between two runs (wall-clock stamps, durations, absolute paths)
VOLATILE = {"created_at", "registered_at", "trained_at", "updated_at", "seconds", "elapsed_s", "artifact_path",
            "run_id", "run_at"}


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(AURORA_DATA_DIR=str(data_dir), AURORA_ZOO_CONFIG=str(ROOT / "tests/fixtures/zoo_small.yaml"))
    env.update(extra)
    return env


def _aurora(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=_env(data_dir, **extra),
                          capture_output=True, text=True, timeout=600)


def _market(data_dir: Path) -> None:
    write_market(MarketConfig(n_symbols=40, n_days=420, seed=21), data_dir / "raw")


def _tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    out = {}
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        present = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'ml'").fetchall()}
        for name in TABLES:
            if name in present:
                frame = con.execute(f"select * from ml.{name}").df()
                frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE])
                keys = [k for k in SORT_KEYS[name] if k in frame.columns]
                out[name] = frame.sort_values(keys).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("run-a")
    _market(data_dir)
    done = _aurora(data_dir, "run")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return data_dir, done


def test_run_goes_end_to_end_and_reports_stage_timings(uninterrupted):
    data_dir, done = uninterrupted
    assert "daily_pipeline done" in done.stdout and "best_single_model_rank_ic" in done.stdout
    report = json.loads((data_dir / "artifacts" / "report.json").read_text())
    assert report["timings_s"]["total"] > 0
    assert {"build_features", "train_zoo"} <= set(report["timings_s"])
    assert report["n_model_families"] == 3
    assert "predictions" in _tables(data_dir)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        logged = dict(con.execute("select stage, status from ml.run_log").fetchall())
    assert logged["build_features"] == "completed" and logged["train_zoo"] == "completed"
    # every stage ran as its own subflow and left its tables
    from ml.pipeline import available_stages

    assert {"ensemble_calibrate", "policy_backtest", "publish_signals", "monitor"} <= set(available_stages())
    assert all(logged[stage] == "completed" for stage in available_stages())
    assert {stage for stage in available_stages()} <= set(report["timings_s"])
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        n_models = con.execute("select count(*) from ml.model_registry").fetchone()[0]
        metrics = con.execute("select * from ml.model_metrics").df()
        weights = con.execute("select method, date, sum(weight) as total from ml.ensemble_weights "
                              "group by all").df()
        methods = {r[0] for r in con.execute("select distinct method from ml.ensemble_signals").fetchall()}
    assert len(metrics) == n_models and metrics["rank_ic"].notna().all()
    from ml.ensemble import METHODS

    assert set(weights["method"]) == methods == set(METHODS)
    assert np.allclose(weights["total"], 1.0)


def test_killed_run_resumed_equals_uninterrupted_run_with_the_same_seed(uninterrupted, tmp_path):
    reference, _ = uninterrupted
    data_dir = tmp_path / "run-b"
    _market(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run"], cwd=ROOT, env=_env(data_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    killed_at = None
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # kill as soon as the zoo has trained its first model
        if "[zoo]" in line and "rank IC" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = line
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=60)
    assert killed_at is not None, "the run ended before it could be killed midway"

    resumed = _aurora(data_dir, "run")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    a, b = _tables(reference), _tables(data_dir)
    assert set(a) == set(b) and "predictions" in a
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=f"ml.{name}")


def test_a_failed_step_leaves_the_previous_tables_intact(uninterrupted):
    data_dir, _ = uninterrupted
    from ml.pipeline import available_stages

    stages = available_stages()
    if not stages:
        pytest.skip("no stage after training in this version")
    before = _tables(data_dir)
    report_before = (data_dir / "artifacts" / "report.json").read_text()
    # threads: this test is about a failing stage, not the zoo's runner (processes cost ~17 s to start)
    failed = _aurora(data_dir, "run", AURORA_FAIL_STAGE=stages[-1], AURORA_ZOO_RUNNER="thread")
    assert failed.returncode != 0
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from ml.run_log where stage = ? and status = 'failed'",
                           [stages[-1]]).fetchone()[0] == 1
    assert "failed on purpose" in failed.stdout + failed.stderr
    after = _tables(data_dir)
    assert set(before) == set(after)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_exact=True, obj=f"ml.{name}")
    assert json.loads(report_before)["timings_s"] == json.loads(
        (data_dir / "artifacts" / "report.json").read_text())["timings_s"]

    # and the app still shows them
    from streamlit.testing.v1 import AppTest

    os.environ["AURORA_DATA_DIR"] = str(data_dir)
    try:
        app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
        app.switch_page("pages/backtest.py")
        app.run()
    finally:
        os.environ.pop("AURORA_DATA_DIR", None)
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error and len(app.metric) > 0


def test_train_zoo_fans_out_on_a_local_dask_cluster(uninterrupted):
    data_dir, _ = uninterrupted
    done = _aurora(data_dir, "run", AURORA_USE_DASK="1", AURORA_ZOO_WORKERS="2",
                   AURORA_ZOO_CONFIG=str(ROOT / "tests/fixtures/zoo_small_dask.yaml"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[zoo] 3 families x 2 views = 6 models" in done.stdout
    assert done.stdout.count("rank IC") >= 6  # every spec ran (nothing cached for this config)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        seeds = con.execute("select distinct seed from ml.model_registry").fetchall()
    assert (1,) in seeds


def test_publish_signals_serves_the_latest_day_from_the_online_store(uninterrupted):
    data_dir, done = uninterrupted
    assert "[publish]" in done.stdout
    last_price_day = pd.read_parquet(data_dir / "raw" / "prices.parquet")["date"].max()
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        versions = con.execute("select distinct ensemble_version from ml.signals where date = ?",
                               [last_price_day]).fetchall()
        earlier = con.execute("select count(*) from ml.signals where date < ? and ensemble_version like 'live:%'",
                              [last_price_day]).fetchone()[0]
        positions = con.execute("select count(*) from ml.positions where date = ?", [last_price_day]).fetchone()[0]
    assert len(versions) == 1 and versions[0][0].startswith("live:")
    assert earlier == 0  # only the latest day is re-published; the history is the batch's
    assert positions > 0
    report = json.loads((data_dir / "artifacts" / "report.json").read_text())
    # serving agrees with the batch path (0.97 on the default market; fewer names and models here)
    assert report["published_vs_batch_correlation"] > 0.2


def test_stale_data_publishes_nothing_new_unless_allowed(uninterrupted, monkeypatch):
    """Ten business days after the last raw date, publishing refuses to present old data as today's."""
    from ml.paths import DataPaths
    from ml.publish import run_publish_stage

    data_dir, _ = uninterrupted
    paths = DataPaths(data_dir)
    last = pd.read_parquet(data_dir / "raw" / "prices.parquet")["date"].max()
    monkeypatch.setenv("AURORA_AS_OF", str((pd.Timestamp(last) + pd.offsets.BDay(10)).date()))
    monkeypatch.delenv("AURORA_ALLOW_STALE", raising=False)
    before = _tables(data_dir)
    messages: list[str] = []
    out = run_publish_stage(paths, log=messages.append)
    assert out["published_date"] is None and out["data_freshness"]["stale"]
    assert out["data_freshness"]["business_days_behind"] == 10
    assert any("STALE" in m and "--allow-stale" in m for m in messages)
    after = _tables(data_dir)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_exact=True, obj=f"ml.{name}")

    monkeypatch.setenv("AURORA_ALLOW_STALE", "1")
    out = run_publish_stage(paths, log=messages.append)
    assert out["published_date"] == str(pd.Timestamp(last).date()) and out["published_signals"] > 0
