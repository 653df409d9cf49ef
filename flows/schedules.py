"""`aurora serve`: the flows on cron schedules, served from this process against a real Prefect server.

The pipeline runs daily after the close, the zoo retrains weekly and the monitoring review runs monthly.
The crons are read in `timezone` (default UTC; an IANA name such as America/New_York follows its
daylight saving time). The API is the server at PREFECT_API_URL when set, else a `prefect server start`
that this process starts and supervises (`flows.server`): its scheduler service creates the flow runs,
this process's runner executes them. SIGINT or SIGTERM stops the runner, then the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import serve as prefect_serve
from prefect.schedules import Cron

from flows.pipeline import daily_pipeline, monitor, train_zoo
from flows.server import prefect_api

DEFAULT_TIMEZONE = "UTC"


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {timezone!r} (an IANA name, e.g. UTC or America/New_York)") from err
    return timezone


def deployments(data_dir: str, daily_cron: str, weekly_cron: str, monthly_cron: str,
                timezone: str = DEFAULT_TIMEZONE) -> list:
    """The pipeline daily after the close, retraining weekly, a monitoring review monthly."""
    check_timezone(timezone)
    params = {"data_dir": data_dir}
    return [
        daily_pipeline.to_deployment(name="aurora-daily", schedule=Cron(daily_cron, timezone=timezone),
                                     parameters=params),
        train_zoo.to_deployment(name="aurora-weekly-retrain", schedule=Cron(weekly_cron, timezone=timezone),
                                parameters=params),
        monitor.to_deployment(name="aurora-monthly-review", schedule=Cron(monthly_cron, timezone=timezone),
                              parameters=params),
    ]


def next_runs(schedule, n: int = 3, start: datetime | None = None) -> list[datetime]:
    """The next `n` times of a deployment schedule, by the same code as Prefect's scheduler service."""
    from prefect.server.schemas import schedules as server_schedules

    kind = {"cron": server_schedules.CronSchedule, "interval": server_schedules.IntervalSchedule,
            "rrule": server_schedules.RRuleSchedule}
    data = schedule.model_dump(exclude_none=True)
    for key, model in kind.items():
        if key in data:
            return list(asyncio.run(model(**data).get_dates(n=n, start=start)))
    return []


def describe(deps: list, n: int = 3, start: datetime | None = None) -> list[str]:
    """One line per schedule: deployment, cron and time zone, the next `n` runs in that zone."""
    lines = []
    for dep in deps:
        for entry in dep.schedules or []:
            schedule = entry.schedule
            rule = getattr(schedule, "cron", None) or getattr(schedule, "interval", None) or schedule
            zone = getattr(schedule, "timezone", None) or DEFAULT_TIMEZONE
            when = ", ".join(_when(t, zone) for t in next_runs(schedule, n, start))
            lines.append(f"  {dep.flow_name + '/' + dep.name:<32} {str(rule)!r:<16} in {zone}; next: {when}")
    return lines


def _when(t: datetime, zone: str) -> str:
    local = f"{t:%a %Y-%m-%d %H:%M %Z}"
    if zone == "UTC":
        return local
    return f"{local} ({t.astimezone(ZoneInfo('UTC')):%H:%M} UTC)"


SHUTDOWN_GRACE_S = 45.0  # after a stop signal, the runner gets this long before the watchdog ends it


def _force_exit() -> None:
    """The runner did not finish stopping in time (it can wait on a run in flight): stop the server
    this process started and leave, so a stop signal always stops everything."""
    from flows.server import stop_all_servers

    print(f"[aurora] the runner did not stop within {SHUTDOWN_GRACE_S:.0f}s: stopping the server and "
          "exiting", flush=True)
    stop_all_servers(timeout=10.0)
    os._exit(0)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM end this process like Ctrl-C (the runner installs its own SIGTERM handler
    once it starts), so the `finally` that stops the server runs; the first signal also arms a
    watchdog that stops the server and exits if shutting down takes longer than SHUTDOWN_GRACE_S."""
    watchdog: list[threading.Timer] = []

    def interrupt(signum, frame):
        if not watchdog:
            watchdog.append(threading.Timer(SHUTDOWN_GRACE_S, _force_exit))
            watchdog[0].daemon = True
            watchdog[0].start()
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        before = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        for timer in watchdog:
            timer.cancel()


def serve_deployments(deps: list, home: Path, log: Callable[[str], None] = print, port: int | None = None,
                      limit: int | None = None, extra_env: dict[str, str] | None = None) -> None:
    """Serve `deps` until SIGINT or SIGTERM, against PREFECT_API_URL or a server started under `home`."""
    with _sigterm_as_interrupt():
        try:
            if not _has_api():
                log(f"starting a Prefect server (SQLite under {home}) ...")
            with prefect_api(home, port=port, extra_env=extra_env) as api:
                if api.process is not None:
                    log(f"Prefect server pid {api.pid}, database {api.database}, log {api.log_file}")
                else:
                    log(f"Prefect server at PREFECT_API_URL={api.api_url}")
                log(f"Prefect UI: {api.ui_url}")
                log("schedules:")
                for line in describe(deps):
                    log(line)
                first = f"{deps[0].flow_name}/{deps[0].name}" if deps else "<flow>/<deployment>"
                log(f"run one now: PREFECT_API_URL={api.api_url} prefect deployment run '{first}'")
                log("serving; Ctrl-C (SIGINT) or SIGTERM stops the schedules"
                    + (" and the server" if api.process is not None else ""))
                try:
                    prefect_serve(*deps, print_starting_message=False, limit=limit)
                except SystemExit:  # the runner's SIGTERM handler: stop the server on the way out
                    pass
        except KeyboardInterrupt:
            pass
        log("stopped")


def _has_api() -> bool:
    import os

    return bool(os.environ.get("PREFECT_API_URL"))


def serve(data_dir: str, daily_cron: str, weekly_cron: str, monthly_cron: str,
          timezone: str = DEFAULT_TIMEZONE, log: Callable[[str], None] = print, port: int | None = None) -> None:
    deps = deployments(data_dir, daily_cron, weekly_cron, monthly_cron, timezone)
    serve_deployments(deps, Path(data_dir) / "prefect", log=log, port=port)
