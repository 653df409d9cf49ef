"""`aurora serve`: the flows on cron schedules."""

from __future__ import annotations

from flows.schedules import deployments


def test_serve_schedules_pipeline_daily_retraining_weekly_and_review_monthly(tmp_path):
    deps = deployments(str(tmp_path), daily_cron="30 21 * * 1-5", weekly_cron="0 6 * * 6",
                       monthly_cron="0 7 1 * *")
    by_name = {d.name: d for d in deps}
    assert set(by_name) == {"aurora-daily", "aurora-weekly-retrain", "aurora-monthly-review"}
    crons = {name: [s.schedule.cron for s in d.schedules] for name, d in by_name.items()}
    assert crons == {"aurora-daily": ["30 21 * * 1-5"], "aurora-weekly-retrain": ["0 6 * * 6"],
                     "aurora-monthly-review": ["0 7 1 * *"]}
    assert all(d.parameters == {"data_dir": str(tmp_path)} for d in deps)
    assert by_name["aurora-daily"].flow_name == "daily_pipeline"
