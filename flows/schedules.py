"""`aurora serve`: the flows on cron schedules, served from this process (Prefect 3 `serve`)."""

from __future__ import annotations

from prefect import serve as prefect_serve

from flows.pipeline import daily_pipeline, monitor, train_zoo


def deployments(data_dir: str, daily_cron: str, weekly_cron: str, monthly_cron: str) -> list:
    """The pipeline daily after the close, retraining weekly, a monitoring review monthly."""
    params = {"data_dir": data_dir}
    return [
        daily_pipeline.to_deployment(name="aurora-daily", cron=daily_cron, parameters=params),
        train_zoo.to_deployment(name="aurora-weekly-retrain", cron=weekly_cron, parameters=params),
        monitor.to_deployment(name="aurora-monthly-review", cron=monthly_cron, parameters=params),
    ]


def serve(data_dir: str, daily_cron: str, weekly_cron: str, monthly_cron: str) -> None:
    prefect_serve(*deployments(data_dir, daily_cron, weekly_cron, monthly_cron))
