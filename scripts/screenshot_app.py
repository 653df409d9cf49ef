"""Screenshot every page of the Aurora app with headless Chromium; fail when a page shows an error.

    python scripts/screenshot_app.py --data-dir DIR --out OUTDIR [--height 1000] [--full-height 2600]

Starts `streamlit run app/main.py` on a free port bound to 127.0.0.1 (AURORA_DATA_DIR=DIR), waits for
`/_stcore/health`, then opens each page in one headless Chromium driven over the DevTools protocol
(`--remote-debugging-port`, the `websockets` package Streamlit already depends on), waits until the
page has rendered and settled, and saves a screenshot (OUTDIR/NN_<page>.png, the window size given;
with --full-height also a tall NN_<page>_full.png) and the DOM (OUTDIR/NN_<page>.html). A page fails
when its DOM holds a Streamlit exception (`stException`), an `st.error` box, a Python traceback or an
`XxxError: ...` line, or never shows the page's title. The server and the browser are stopped at the
end; exit status 1 when any page failed, 2 when Chromium or the server is missing or does not start.

Chromium: `apt-get update && apt-get install -y chromium` (Debian), or set CHROMIUM=/path/to/chrome.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.navigation import PAGES, url_path  # noqa: E402

APP = ROOT / "app" / "main.py"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--disable-dev-shm-usage",
)
ERROR_MARKERS = (
    ('data-testid="stException"', "a Streamlit exception"),
    ("stAlertContentError", "an st.error box"),
    ("Traceback (most recent call last)", "a Python traceback"),
)
EXCEPTION_LINE = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception)\s*: \S")


def find_chromium(explicit: str | None = None) -> str | None:
    for candidate in (explicit, os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        if candidate:
            found = shutil.which(candidate)
            if found:
                return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "AURORA_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--server.runOnSave", "false", "--client.toolbarMode", "minimal",
    ]
    log = open(log_path, "w")  # noqa: SIM115 - closed by stop_server
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log_file = log  # type: ignore[attr-defined]
    return proc


def wait_healthy(proc: subprocess.Popen, base: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                if resp.status == 200 and resp.read().strip() == b"ok":
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    log = getattr(proc, "log_file", None)
    if log:
        log.close()


class Browser:
    """Headless Chromium driven over the DevTools protocol (one browser for all pages).

    Why not `chromium --screenshot --virtual-time-budget`: a Streamlit page is an empty shell that its
    JavaScript fills from a websocket, and virtual time does not wait for websocket traffic, so the
    one-shot CLI captures the shell on most runs. Here each page is loaded, then polled until its
    title is shown, the script is no longer running and the DOM has stopped changing.
    """

    def __init__(self, binary: str, width: int, height: int, timeout: float = 30.0):
        from websockets.sync.client import connect

        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="aurora-chromium-")
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace")[-1000:] if self.proc.stderr else ""
                self.close()
                raise RuntimeError(f"chromium did not start its DevTools endpoint: {err}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.loads(resp.read())
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.next_id = 0
        self.call("Page.enable")
        self.resize(height)

    def call(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def resize(self, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def load(self, url: str, title: str, timeout: float) -> bool:
        """Navigate and wait until the page has rendered and settled; False when it never showed `title`."""
        self.call("Page.navigate", {"url": url})
        return self.settle(title, timeout)

    def settle(self, title: str | None, timeout: float, quiet_polls: int = 3, poll_s: float = 0.3) -> bool:
        probe = """(() => {
            const status = document.querySelector('[data-testid="stStatusWidget"]');
            const heads = [...document.querySelectorAll('h1')].map(e => e.innerText.trim());
            return {heads, running: !!status && /running/i.test(status.innerText || ''),
                    exception: !!document.querySelector('[data-testid="stException"]'),
                    size: document.body ? document.body.innerHTML.length : 0};
        })()"""
        deadline = time.monotonic() + timeout
        last, quiet, shown = None, 0, False
        while time.monotonic() < deadline:
            state = self.evaluate(probe) or {}
            shown = title is None or any(title in h for h in state.get("heads", [])) or state.get("exception")
            if shown and not state.get("running"):
                quiet = quiet + 1 if state.get("size") == last else 0
                if quiet >= quiet_polls:
                    return True
            last = state.get("size")
            time.sleep(poll_s)
        return bool(shown)

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", {"format": "png"}, timeout=60)["data"]
        path.write_bytes(base64.b64decode(data))

    def dom(self) -> str:
        return self.evaluate("document.documentElement.outerHTML") or ""

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.profile, ignore_errors=True)


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def check_dom(dom: str, title: str) -> list[str]:
    """Why this page's DOM looks wrong (empty list: it looks fine)."""
    problems = [f"shows {what}" for marker, what in ERROR_MARKERS if marker in dom]
    text = visible_text(dom)
    match = EXCEPTION_LINE.search(text)
    if match:
        start = max(0, match.start() - 60)
        problems.append("shows an exception line: " + " ".join(text[start:match.end() + 120].split()))
    if not re.search(rf"<h1\b[^>]*>.*?{re.escape(title)}", dom, flags=re.S):
        problems.append(f"did not render (no '{title}' heading in the DOM)")
    return problems


def shoot(binary: str, base: str, out: Path, width: int, height: int, timeout: float,
          full_height: int | None = None) -> list[dict]:
    results = []
    browser = Browser(binary, width, height)
    try:
        for i, (_, title, _, _) in enumerate(PAGES):
            slug = url_path(title) or PAGES[0][3]
            url = f"{base}/{url_path(title)}"
            png = out / f"{i + 1:02d}_{slug}.png"
            started = time.monotonic()
            problems: list[str] = []
            try:
                browser.load(url, title, timeout)
                browser.screenshot(png)
                dom = browser.dom()
                if full_height:
                    browser.resize(full_height)
                    browser.settle(None, timeout)
                    browser.screenshot(out / f"{i + 1:02d}_{slug}_full.png")
                    browser.resize(height)
            except (RuntimeError, TimeoutError, OSError) as err:
                dom, problems = "", [f"browser error: {err}"]
            (out / f"{i + 1:02d}_{slug}.html").write_text(dom)
            if not problems:
                problems = check_dom(dom, title)
            results.append({"page": title, "url": url, "png": str(png), "ok": not problems, "problems": problems,
                            "seconds": round(time.monotonic() - started, 1)})
            print(f"{'ok  ' if not problems else 'FAIL'} {title:<13} {url}  -> {png.name} "
                  f"({results[-1]['seconds']}s)" + "".join(f"\n     - {p}" for p in problems), flush=True)
    finally:
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("AURORA_DATA_DIR", "data"))
    parser.add_argument("--out", default="screenshots")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--chromium", help="browser binary (default: $CHROMIUM, then chromium on PATH)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--full-height", type=int, default=0,
                        help="also save NN_<page>_full.png at this window height (0: no)")
    parser.add_argument("--page-timeout", type=float, default=60.0, help="seconds a page may take to render")
    parser.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for the server")
    args = parser.parse_args(argv)

    binary = find_chromium(args.chromium)
    if binary is None:
        print("no Chromium found: apt-get update && apt-get install -y chromium (or set CHROMIUM)", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir).resolve()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = out / "streamlit.log"
    proc = start_server(data_dir, port, log_path)
    try:
        if not wait_healthy(proc, base, args.start_timeout):
            print(f"the app did not become healthy at {base} (log: {log_path}):\n"
                  + log_path.read_text()[-3000:], file=sys.stderr)
            return 2
        print(f"app up at {base} (data dir {data_dir}); screenshots to {out}", flush=True)
        results = shoot(binary, base, out, args.width, args.height, args.page_timeout, args.full_height or None)
    finally:
        stop_server(proc)
    (out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    failed = [r for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)}/{len(results)} pages ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
