"""A real Prefect API for `aurora serve`: a supervised `prefect server start`, or the one at PREFECT_API_URL.

`prefect.serve` against the temporary API that Prefect starts on demand runs no scheduler service, so
no scheduled flow run is ever created. `prefect_api()` therefore either connects to the server named
by PREFECT_API_URL or starts `prefect server start` (scheduler included) as a child process:

- state in SQLite under `<data>/prefect/` (server.db; the server's log in server.log), apart from the
  temporary API database that `aurora run` uses, so the two never contend for one file;
- on a free local port (or the one asked for), ready once /api/health answers;
- in a session of its own, so a Ctrl-C in the terminal reaches `aurora serve` only, which stops the
  schedules first and then the server (SIGTERM, SIGKILL after a grace period); on Linux the server
  also gets SIGTERM should its parent die without cleaning up, so no server is left orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT_S = 180.0  # migrations on a loaded machine take a while
STOP_TIMEOUT_S = 30.0


class ServerError(RuntimeError):
    """The Prefect server could not be started or reached."""


@dataclass
class PrefectServer:
    """A Prefect API: `process` is set when this process started (and owns) the server."""

    api_url: str
    process: subprocess.Popen | None = None
    database: Path | None = None
    log_file: Path | None = None

    @property
    def ui_url(self) -> str:
        url = self.api_url.rstrip("/")
        return url[: -len("/api")] if url.endswith("/api") else url

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _tail(path: Path | None, n: int = 30) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def wait_healthy(api_url: str, timeout: float, process: subprocess.Popen | None = None,
                 log_file: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(api_url):
            return
        if process is not None and process.poll() is not None:
            raise ServerError(f"prefect server exited with code {process.returncode} before {api_url} answered; "
                              f"its log ({log_file}):\n{_tail(log_file)}")
        time.sleep(0.5)
    raise ServerError(f"no answer from {api_url}/health after {timeout:.0f}s"
                      + (f"; the server's log ({log_file}):\n{_tail(log_file)}" if log_file else ""))


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def server_environment(home: Path, database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_API_KEY")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{database}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    env.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    return env


def start_server(home: Path, host: str = "127.0.0.1", port: int | None = None,
                 timeout: float = STARTUP_TIMEOUT_S, extra_env: dict[str, str] | None = None) -> PrefectServer:
    """`prefect server start` (API, UI and services, the scheduler among them) on SQLite under `home`;
    returns once /api/health answers. A port taken in the meantime is retried on another free one."""
    home.mkdir(parents=True, exist_ok=True)
    database, log_file = home / "server.db", home / "server.log"
    env = server_environment(home, database) | (extra_env or {})
    tries = 1 if port else 3
    for attempt in range(tries):
        chosen = port or free_port(host)
        api_url = f"http://{host}:{chosen}/api"
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(chosen)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=home,
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        server = PrefectServer(api_url, process, database, log_file)
        RUNNING.append(server)
        try:
            wait_healthy(api_url, timeout, process, log_file)
            return server
        except BaseException as err:  # a signal while waiting included: never leave the server behind
            exited_early = process.poll() is not None
            stop_server(server)
            if not (isinstance(err, ServerError) and exited_early and attempt < tries - 1):
                raise
    raise AssertionError("unreachable")


RUNNING: list[PrefectServer] = []  # the servers this process started and has not stopped yet


def stop_all_servers(timeout: float = 10.0) -> None:
    """Stop every server this process started (the shutdown watchdog of flows.schedules)."""
    for server in list(RUNNING):
        stop_server(server, timeout=timeout)


def stop_server(server: PrefectServer, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM to the server's process group, SIGKILL after `timeout`; waits until it is gone."""
    with contextlib.suppress(ValueError):
        RUNNING.remove(server)
    process = server.process
    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def use_api(api_url: str) -> Iterator[None]:
    """Point this process (settings) and the processes it starts (environment) at `api_url`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield
    finally:
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before


@contextlib.contextmanager
def prefect_api(home: Path, api_url: str | None = None, port: int | None = None,
                timeout: float = STARTUP_TIMEOUT_S, extra_env: dict[str, str] | None = None
                ) -> Iterator[PrefectServer]:
    """The Prefect API to serve against: `api_url` or PREFECT_API_URL when set (it must answer), else
    a server started here under `home` and stopped on the way out, whatever ends the block."""
    api_url = api_url or os.environ.get("PREFECT_API_URL") or None
    if api_url:
        wait_healthy(api_url, min(timeout, 30.0))
        with use_api(api_url):
            yield PrefectServer(api_url)
        return
    server = start_server(home, port=port, timeout=timeout, extra_env=extra_env)
    try:
        with use_api(server.api_url):
            yield server
    finally:
        stop_server(server)
