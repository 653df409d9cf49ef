"""The pipeline fails loudly: a stage that cannot import fails the run; stale data is named as such."""

from __future__ import annotations

import json
from datetime import date

import pytest

from ml import pipeline
from ml.data.freshness import business_days_behind, check_freshness
from ml.paths import DataPaths


def test_a_stage_whose_module_fails_to_import_fails_the_run(tmp_path, monkeypatch):
    (tmp_path / "broken_stage_module.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(pipeline.STAGES, "publish_signals", ("broken_stage_module", "run"))
    with pytest.raises(pipeline.StageUnavailable, match="publish_signals.*a_dependency_that_is_not_installed"):
        pipeline.verify_stages()
    with pytest.raises(pipeline.StageUnavailable):
        pipeline.run_stage("publish_signals", DataPaths(tmp_path))
    assert "publish_signals" in pipeline.available_stages()  # listed, never silently dropped


def test_a_stage_whose_function_is_missing_fails_the_run(monkeypatch):
    monkeypatch.setitem(pipeline.STAGES, "monitor", ("ml.report", "no_such_function"))
    with pytest.raises(pipeline.StageUnavailable, match="no_such_function"):
        pipeline.verify_stages()


def test_the_shipped_stages_all_import():
    pipeline.verify_stages()


@pytest.mark.parametrize(
    ("latest", "today", "behind"),
    [
        (date(2026, 11, 20), date(2026, 11, 20), 0),  # same day
        (date(2026, 11, 20), date(2026, 11, 23), 1),  # Friday's data on Monday
        (date(2026, 11, 20), date(2026, 11, 22), 0),  # the weekend is not late
        (date(2026, 11, 20), date(2026, 11, 26), 4),
        (date(2026, 11, 26), date(2026, 11, 20), 0),  # data ahead of the clock is not late
    ],
)
def test_lateness_counts_business_days(latest, today, behind):
    assert business_days_behind(latest, today) == behind


def _source(tmp_path, source: str) -> DataPaths:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "_source.json").write_text(json.dumps({"source": source}))
    return DataPaths(tmp_path)


def test_ingested_data_is_judged_by_the_wall_clock(tmp_path, monkeypatch):
    monkeypatch.delenv("AURORA_AS_OF", raising=False)
    paths = _source(tmp_path, "ingested")
    old = check_freshness(paths, date(2022, 12, 30), limit=3)
    assert old.stale and old.clock == "wall clock" and "STALE" in old.message()
    assert not check_freshness(paths, date.today(), limit=3).stale


def test_a_synthetic_market_runs_on_its_own_clock_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("AURORA_AS_OF", raising=False)
    paths = _source(tmp_path, "synthetic")
    assert not check_freshness(paths, date(2024, 9, 30)).stale
    monkeypatch.setenv("AURORA_AS_OF", "2024-10-07")
    late = check_freshness(paths, date(2024, 9, 30), limit=3)
    assert late.stale and late.business_days_behind == 5 and late.clock == "AURORA_AS_OF"
    monkeypatch.setenv("AURORA_AS_OF", "next week")
    with pytest.raises(ValueError, match="AURORA_AS_OF"):
        check_freshness(paths, date(2024, 9, 30))
