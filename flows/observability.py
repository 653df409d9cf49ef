"""What Prefect users see of a run: stage output through the run logger, `ml.run_log` rows from the
stage flows' state hooks, and the artifacts the daily pipeline publishes at its end."""

from __future__ import annotations

import functools
import logging
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger

from ml.paths import DataPaths


class _Stdout(logging.StreamHandler):
    """Whatever sys.stdout is at the time of the record (a Dask worker's, pytest's capture)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


@functools.cache
def _stage_logger() -> logging.Logger:
    """Stage output of a run: INFO to the Prefect API (the run's logs in the UI) and to stdout in the
    `[aurora HH:MM:SS]` format, while Prefect's own loggers stay at PREFECT_LOGGING_LEVEL."""
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("aurora.flows")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    stdout = _Stdout()
    stdout.setFormatter(logging.Formatter("[aurora %(asctime)s] %(message)s", datefmt="%H:%M:%S"))
    logger.addHandler(stdout)
    logger.addHandler(APILogHandler())
    return logger


def run_logger() -> logging.LoggerAdapter | None:
    """Prefect's run logger of the current flow or task run (its run ids on every record), writing
    through `_stage_logger`; None outside a run."""
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.exceptions import MissingContextError

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    try:
        logger = get_run_logger()
    except MissingContextError:
        return None
    return logging.LoggerAdapter(_stage_logger(), dict(getattr(logger, "extra", None) or {}))


def say(message: str) -> None:
    """A progress line: through the run logger inside a flow or task run, printed outside one."""
    logger = run_logger()
    if logger is None:
        print(f"[aurora {time.strftime('%H:%M:%S')}] {message}", flush=True)
    else:
        logger.info(message)


# ------------------------------------------------------------------------------------------ run log hooks

# the daily_pipeline run around the current stage flow: its run id, data paths and stage timings
_PIPELINE: ContextVar[dict[str, Any] | None] = ContextVar("aurora_pipeline", default=None)
_STARTED: dict[Any, tuple[datetime, float]] = {}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _stage_running(flow, flow_run, state) -> None:
    _STARTED[flow_run.id] = (_now(), time.perf_counter())


def _failure_message(state) -> str:
    try:
        err = state.result(raise_on_failure=False)
    except BaseException as exc:  # the result could not be read back: the exception it raised says why
        err = exc
    if isinstance(err, BaseException):
        return f"{type(err).__name__}: {err}"
    return state.message or state.name or "failed"


def _stage_finished(flow, flow_run, state) -> None:
    """One `ml.run_log` row for a stage flow that ended: its name, start, duration and outcome. Inside
    `daily_pipeline` the row carries the pipeline's run id and the duration joins its timings; a stage
    flow run alone (a served deployment) gets a run id of its own."""
    from ml.runlog import log_stage

    started_at, t0 = _STARTED.pop(flow_run.id, (None, None))
    if started_at is None:  # ended before it ran (say, a crash while starting)
        started_at, t0 = _now(), time.perf_counter()
    seconds = time.perf_counter() - t0
    pipeline = _PIPELINE.get()
    if pipeline is not None:
        run_id, paths, timings = pipeline["run_id"], pipeline["paths"], pipeline["timings"]
    else:
        run_id = started_at.strftime("run-%Y%m%dT%H%M%S")
        paths, timings = DataPaths.from_env((flow_run.parameters or {}).get("data_dir")), None
    name = flow.name
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    if state.is_completed():
        log_stage(paths, run_id, name, started_at, round(seconds, 2), "completed")
        if timings is not None:
            timings[name] = round(seconds, 2)
        say(f"stage {name} done in {seconds:.1f}s")
    else:
        log_stage(paths, run_id, name, started_at, seconds, "failed", _failure_message(state))


# the state hooks that keep ml.run_log: `@flow(..., **RUN_LOG_HOOKS)`
RUN_LOG_HOOKS: dict[str, list] = {
    "on_running": [_stage_running],
    "on_completion": [_stage_finished],
    "on_failure": [_stage_finished],
    "on_crashed": [_stage_finished],
}


# ------------------------------------------------------------------------------------------ artifacts


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) if value == value else None  # NaN: not measured
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return value


def headline_rows(paths: DataPaths) -> list[dict[str, Any]]:
    """The report's headline metrics (artifacts/report.json), one row each."""
    from ml.report import REPORT_KEYS, read_saved_report, share_of_oracle

    report = read_saved_report(paths)
    report["best_single_model_share_of_oracle"] = share_of_oracle(report)
    apart = {"timings_s", "policy_warnings", "policy_diagnostics", "policy_constants"}
    return [{"metric": key, "value": _cell(report.get(key))} for key in REPORT_KEYS if key not in apart]


def quality_rows(paths: DataPaths) -> tuple[str | None, list[dict[str, Any]]]:
    """The latest data-quality run (quality.gx_results): per frame, checks and failures by severity."""
    import duckdb

    from ml.data.quality_store import RESULTS_TABLE

    if not paths.warehouse.exists():
        return None, []
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        present = con.execute("select count(*) from information_schema.tables "
                              "where table_schema = 'quality' and table_name = 'gx_results'").fetchone()[0]
        if not present:
            return None, []
        latest = con.execute(f"select run_id from {RESULTS_TABLE} order by run_at desc limit 1").fetchone()
        rows = con.execute(
            f"""select "view", count(*) as checks, count(*) filter (where success) as passed,
                   count(*) filter (where not success and severity = 'critical') as critical,
                   count(*) filter (where not success and severity = 'quarantine') as quarantine,
                   count(*) filter (where not success and severity = 'warning') as warning
                from {RESULTS_TABLE} where run_id = ? group by all order by "view" """, [latest[0]]).fetchall()
    columns = ("view", "checks", "passed", "critical", "quarantine", "warning")
    return latest[0], [dict(zip(columns, row, strict=True)) for row in rows]


def backtest_markdown(paths: DataPaths) -> str:
    """The policy backtest after costs: window and book, Sharpe, drawdown, turnover, guardrail warnings."""
    from ml.portfolio.guardrails import guardrail_messages, summary_line
    from ml.report import constants_line, read_saved_report

    report = read_saved_report(paths)
    diagnostics = report.get("policy_diagnostics")
    lines = ["# Backtest after costs", "", summary_line(diagnostics), "", "| metric | value |", "|---|---|"]
    for key in ("sharpe_gross", "sharpe_net", "max_drawdown", "turnover_monthly", "cost_retention",
                "coverage_80", "calibration_error"):
        value = _cell(report.get(key))
        lines.append(f"| {key} | {'—' if value is None else value} |")
    if report.get("policy_constants"):
        lines += ["", f"measured: {constants_line(report['policy_constants'])}"]
    warnings = report.get("policy_warnings") or []
    messages = guardrail_messages(warnings) if diagnostics else warnings
    if messages:
        lines += ["", "## Guardrail warnings", ""] + [f"- {m}" for m in messages]
    return "\n".join(lines) + "\n"


def publish_artifacts(paths: DataPaths) -> None:
    """The run's headline metrics, quality summary and backtest summary as Prefect artifacts (the
    Artifacts page of the UI, under fixed keys so each keeps its history). Never fails the run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    def publish(what: str, make) -> None:
        try:
            make()
        except Exception as err:  # an artifact is a view of the run, not a stage of it
            say(f"artifact {what} not published: {type(err).__name__}: {err}")

    publish("aurora-headline-metrics", lambda: create_table_artifact(
        headline_rows(paths), key="aurora-headline-metrics",
        description=f"Headline metrics of the daily pipeline on {paths.root} (aurora report)"))

    def quality() -> None:
        run, rows = quality_rows(paths)
        if rows:
            create_table_artifact(rows, key="aurora-quality-summary",
                                  description=f"Data-quality gate, run {run}: checks and failures by severity "
                                              "per frame (quality.gx_results)")

    publish("aurora-quality-summary", quality)
    publish("aurora-backtest-summary", lambda: create_markdown_artifact(
        backtest_markdown(paths), key="aurora-backtest-summary",
        description="The cost-aware policy's backtest after costs (ml.backtest_daily)"))
