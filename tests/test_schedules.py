"""`aurora serve`: the flows on cron schedules, served against a real Prefect server.

- the three deployments, their crons and time zone;
- a one-minute cron served against a server that `flows.schedules` starts fires: the scheduler creates
  the flow run, the runner completes it, its state hooks record it in `ml.run_log`; SIGINT then stops
  the runner and the server (no process left behind);
- `aurora serve` itself prints the UI address, each schedule with its time zone and next runs, and
  stops cleanly on SIGTERM, server included.

The firing test waits for the next minute boundary (cron's resolution), so it takes 30-90 s: the
server's start (15-30 s on a loaded machine), then on average half a minute.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from flows.schedules import deployments, describe

ROOT = Path(__file__).resolve().parents[1]

HEARTBEAT = '''
import sys
from pathlib import Path

from prefect import flow
from prefect.schedules import Cron

from flows.pipeline import RUN_LOG_HOOKS, publish_artifacts, say
from flows.schedules import serve_deployments
from ml.paths import DataPaths


@flow(name="heartbeat", **RUN_LOG_HOOKS)
def heartbeat(data_dir: str) -> str:
    say("heartbeat from a scheduled run")
    publish_artifacts(DataPaths(Path(data_dir)))  # what daily_pipeline publishes, here of an empty report
    return "ok"


if __name__ == "__main__":
    data_dir = sys.argv[1]
    deployment = heartbeat.to_deployment(name="every-minute", schedule=Cron("* * * * *", timezone="UTC"),
                                         parameters={"data_dir": data_dir})
    serve_deployments([deployment], Path(data_dir) / "prefect")
'''


def test_serve_schedules_pipeline_daily_retraining_weekly_and_review_monthly(tmp_path):
    deps = deployments(str(tmp_path), daily_cron="30 21 * * 1-5", weekly_cron="0 6 * * 6",
                       monthly_cron="0 7 1 * *")
    by_name = {d.name: d for d in deps}
    assert set(by_name) == {"aurora-daily", "aurora-weekly-retrain", "aurora-monthly-review"}
    crons = {name: [s.schedule.cron for s in d.schedules] for name, d in by_name.items()}
    assert crons == {"aurora-daily": ["30 21 * * 1-5"], "aurora-weekly-retrain": ["0 6 * * 6"],
                     "aurora-monthly-review": ["0 7 1 * *"]}
    assert all(s.schedule.timezone == "UTC" for d in deps for s in d.schedules)
    assert all(d.parameters == {"data_dir": str(tmp_path)} for d in deps)
    assert by_name["aurora-daily"].flow_name == "daily_pipeline"


def test_serve_crons_follow_the_time_zone_asked_for(tmp_path):
    from datetime import UTC, datetime

    deps = deployments(str(tmp_path), "30 21 * * 1-5", "0 6 * * 6", "0 7 1 * *", timezone="America/New_York")
    assert all(s.schedule.timezone == "America/New_York" for d in deps for s in d.schedules)
    # Friday 2025-01-03 12:00 UTC: the next close-of-day run is 21:30 New York time, 02:30 UTC on Saturday
    lines = describe(deps, n=2, start=datetime(2025, 1, 3, 12, tzinfo=UTC))
    daily = next(line for line in lines if "aurora-daily" in line)
    assert "in America/New_York" in daily and "Fri 2025-01-03 21:30 EST (02:30 UTC)" in daily
    assert "Mon 2025-01-06 21:30 EST" in daily
    with pytest.raises(ValueError, match="unknown time zone"):
        deployments(str(tmp_path), "* * * * *", "* * * * *", "* * * * *", timezone="Mars/Olympus")


# ------------------------------------------------------------------------------------------ a real server


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(AURORA_DATA_DIR=str(data_dir), PREFECT_HOME=str(data_dir / "prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.update(extra)
    return env


class Served:
    """A serving process whose output is collected line by line (a reader thread keeps the pipe drained)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}:\n{self.output[-4000:]}"
            time.sleep(0.25)
        raise AssertionError(f"no {text!r} after {timeout:.0f}s:\n{self.output[-4000:]}")

    def server_pid(self) -> int | None:
        for line in self.lines:
            if line.split("] ")[-1].startswith("Prefect server pid "):
                return int(line.split("Prefect server pid ")[1].split(",")[0])
        return None

    def stop(self, sig: int, timeout: float = 240) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.reader.join(timeout=5)

    def cleanup(self) -> None:
        """Whatever happened in the test: nothing of it may outlive it."""
        pid = self.server_pid()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        if pid is not None and _alive(pid):
            os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def _api(ui_line: str) -> str:
    return ui_line.split("Prefect UI: ")[1].strip().rstrip("/") + "/api"


def _post(url: str, query: dict) -> list[dict]:
    request = urllib.request.Request(url, data=json.dumps(query).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _flow_runs(api_url: str, state: str) -> list[dict]:
    return _post(f"{api_url}/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": [state]}}}, "limit": 50})


def _run_log(data_dir: Path, stage: str) -> list[tuple]:
    try:
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            return con.execute("select run_id, stage, status, seconds, message from ml.run_log where stage = ?",
                               [stage]).fetchall()
    except (duckdb.IOException, duckdb.CatalogException):  # not yet there, or being written
        return []


@pytest.mark.slow
def test_a_one_minute_cron_fires_on_the_served_server_and_the_run_is_logged(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    script = tmp_path / "heartbeat_serve.py"
    script.write_text(HEARTBEAT)
    started = time.monotonic()
    served = Served([sys.executable, str(script), str(data_dir)],
                    _env(data_dir, PREFECT_RUNNER_POLL_FREQUENCY="2", PREFECT_LOGGING_LEVEL="INFO"), tmp_path)
    try:
        api_url = _api(served.wait_for("Prefect UI: ", timeout=240))
        served.wait_for("serving; Ctrl-C", timeout=60)
        server_pid = served.server_pid()
        assert server_pid is not None and _alive(server_pid)
        assert (data_dir / "prefect" / "server.db").exists()
        assert "heartbeat/every-minute" in served.output and "in UTC; next: " in served.output

        # the scheduler service creates the run at the next minute; the runner executes it
        deadline = time.monotonic() + 240
        logged: list[tuple] = []
        while time.monotonic() < deadline and not logged:
            assert served.proc.poll() is None, served.output[-4000:]
            logged = _run_log(data_dir, "heartbeat")
            time.sleep(1)
        assert logged, f"no run logged after {time.monotonic() - started:.0f}s:\n{served.output[-4000:]}"
        run_id, stage, status, seconds, message = logged[0]
        assert status == "completed" and run_id.startswith("run-") and seconds >= 0 and message == ""
        runs = _flow_runs(api_url, "COMPLETED")  # created by the scheduler, not by hand
        assert runs and runs[0]["auto_scheduled"] and runs[0]["deployment_id"], runs
        assert _flow_runs(api_url, "SCHEDULED")  # and the next ones are waiting
        served.wait_for("heartbeat from a scheduled run", timeout=30)  # the run logger reached the console
        # ... and the run's logs in the UI, with the artifacts the run published
        of_the_run = {"logs": {"flow_run_id": {"any_": [runs[0]["id"]]}}, "limit": 200}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            messages = [log["message"] for log in _post(f"{api_url}/logs/filter", of_the_run)]
            if "heartbeat from a scheduled run" in messages:
                break
            time.sleep(1)
        assert "heartbeat from a scheduled run" in messages, messages
        artifacts = _post(f"{api_url}/artifacts/filter", {"flow_runs": {"id": {"any_": [runs[0]["id"]]}}})
        keys = {a["key"] for a in artifacts}
        assert {"aurora-headline-metrics", "aurora-backtest-summary"} <= keys, keys

        assert served.stop(signal.SIGINT) == 0, served.output[-4000:]
        assert not _alive(server_pid), "the Prefect server outlived `serve`"
        assert "stopped" in served.lines[-1]
    finally:
        served.cleanup()


@pytest.mark.slow
def test_aurora_serve_prints_the_ui_and_the_schedules_and_stops_its_server_on_sigterm(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    served = Served([sys.executable, "-m", "flows.cli", "serve", "--timezone", "America/New_York"],
                    _env(data_dir), ROOT)
    try:
        api_url = _api(served.wait_for("Prefect UI: ", timeout=240))
        served.wait_for("serving; Ctrl-C", timeout=60)
        server_pid = served.server_pid()
        assert server_pid is not None and _alive(server_pid)
        with urllib.request.urlopen(f"{api_url}/health", timeout=30) as response:
            assert response.status == 200
        for name in ("daily_pipeline/aurora-daily", "train_zoo/aurora-weekly-retrain",
                     "monitor/aurora-monthly-review"):
            line = served.wait_for(name, timeout=5)
            assert "in America/New_York; next: " in line and " UTC)" in line
        assert f"PREFECT_API_URL={api_url} prefect deployment run 'daily_pipeline/aurora-daily'" in served.output

        assert served.stop(signal.SIGTERM) == 0, served.output[-4000:]
        assert not _alive(server_pid), "the Prefect server outlived `aurora serve`"
    finally:
        served.cleanup()


def test_aurora_serve_refuses_an_unknown_time_zone(tmp_path):
    from flows.cli import main

    assert main(["serve", "--timezone", "Mars/Olympus"]) == 2
