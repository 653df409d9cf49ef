"""Run dbt in-process over the warehouse: arguments and environment, progress, node results, failing rows.

`build_marts` builds marts outside the feature build (monitoring, research) with it; the feature build
itself is `ml.warehouse.build_features`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ml.data.raw_inputs import RawInputs
from ml.data.views import project_dir
from ml.paths import DataPaths

MONITORING_SELECTOR = "tag:monitoring"  # marts over the ml schema, never part of the feature build
RESEARCH_SELECTOR = "tag:research"  # feature research marts (models/research/): built, never blocking
RESEARCH_DIR = "research"
_SAMPLE_ROWS = 5

Log = Callable[[str], None]


class MartBuildError(RuntimeError):
    """A dbt build of marts outside the feature build (monitoring, research) failed; `str(err)` lists
    what and why, `failures` the nodes."""

    def __init__(self, message: str, failures: list[NodeResult] | None = None):
        super().__init__(message)
        self.failures = failures or []


def build_marts(paths: DataPaths, raw: RawInputs, select: list[str], log: Log, what: str,
                error: type[MartBuildError] = MartBuildError) -> list[NodeResult]:
    """`dbt build --select <select>` of marts outside the feature build (monitoring, research), tests
    included; raises `error` with a readable report (sampled failing rows, dbt log path) on a failure."""
    res = _invoke_dbt(["build", "--select", *select], paths, raw, paths.features,
                      callbacks=[_progress_callback(log)])
    nodes = _node_results(res.result)
    failures = [n for n in nodes if n.failed]
    if res.success and not failures:
        return nodes
    samples = _sample_failures(paths, res.result, {n.unique_id for n in failures})
    failures = [NodeResult(**{**n.__dict__, "detail": samples.get(n.unique_id, "")}) for n in failures]
    lines = [f"{what} failed:"]
    if res.exception is not None:
        lines.append(f"dbt could not run: {res.exception}")
    lines += [f"  - {n.describe()}" for n in failures]
    lines.append(f"dbt log: {_dbt_dirs(paths)[1] / 'dbt.log'}")
    raise error("\n".join(lines), failures)


@dataclass(frozen=True)
class NodeResult:
    """One dbt node's outcome (model, data test or unit test)."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    seconds: float
    message: str = ""
    detail: str = ""
    research: bool = False  # a node of models/research/ (a research mart, its tests or unit tests)

    @property
    def failed(self) -> bool:
        return self.status in ("error", "fail", "runtime error")

    @property
    def is_test(self) -> bool:
        return self.resource_type in ("test", "unit_test")

    def describe(self) -> str:
        kind = {"test": "data test", "unit_test": "unit test"}.get(self.resource_type, self.resource_type)
        text = f"{kind} {self.name}: {self.status.upper()}"
        if self.message:
            text += f" - {self.message.strip()}"
        if self.detail:
            text += "\n" + "\n".join(f"      {line}" for line in self.detail.strip().splitlines())
        return text


def _dbt_dirs(paths: DataPaths) -> tuple[Path, Path]:
    return paths.root / "dbt" / "target", paths.root / "dbt" / "logs"


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _invoke_dbt(command: list[str], paths: DataPaths, raw: RawInputs, features_dir: Path,
                callbacks: list | None = None):
    from dbt.cli.main import dbtRunner

    target, logs = _dbt_dirs(paths)
    args = [
        *command,
        "--project-dir", str(project_dir()),
        "--profiles-dir", str(project_dir()),
        "--target-path", str(target),
        "--log-path", str(logs),
        "--vars", json.dumps(raw.dbt_vars()),
        "--log-level", "none",  # progress goes through `log`; the full story to <data>/dbt/logs/dbt.log
        "--log-level-file", "debug",
        "--no-use-colors",
    ]
    env = {
        "AURORA_DATA_DIR": str(paths.root),
        "AURORA_FEATURES_DIR": str(features_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    with _environ(**env):
        try:
            return dbtRunner(callbacks=callbacks or []).invoke(args)
        finally:
            _release_warehouse()


def _release_warehouse() -> None:
    """Close the DuckDB database that dbt-duckdb keeps open in this process after a run.

    Otherwise the warehouse file stays attached with dbt's configuration and this process (the runner,
    tests, the app) cannot open it read-only, and other processes cannot open it at all.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a locked dependency
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            with contextlib.suppress(Exception):
                env.close()


def _progress_callback(log: Log, every: int = 50) -> Callable:
    """dbt's per-node lines summarized: a progress line every `every` nodes, and a line for each node
    that did not pass (error, fail, warn); skipped nodes are counted in the failure report instead. The
    full per-node story is in <data>/dbt/logs/dbt.log."""
    done = [0]

    def on_event(event) -> None:
        if event.info.name != "NodeFinished":
            return
        try:
            info, run = event.data.node_info, event.data.run_result
            status = (run.status or info.node_status or "?").lower()
            kind = {"unit_test": "unit test", "test": "test"}.get(info.resource_type, info.resource_type)
            done[0] += 1
            if status not in ("success", "pass", "skipped", "no-op"):
                log(f"dbt {kind} {info.node_name}: {status.upper()} ({run.execution_time:.2f}s)")
            elif done[0] % every == 0:
                log(f"dbt: {done[0]} nodes done (last: {kind} {info.node_name})")
        except Exception:  # progress is best effort; never break the build over it
            pass

    return on_event


def _node_results(run_results) -> list[NodeResult]:
    out = []
    for r in getattr(run_results, "results", None) or []:
        node = r.node
        status = str(getattr(r.status, "value", r.status)).lower()
        name = node.name
        if node.resource_type == "test":
            meta = getattr(node, "test_metadata", None)
            attached = getattr(node, "attached_node", None) or ""
            column = getattr(node, "column_name", None)
            if meta is not None and attached:
                target = attached.split(".")[-1] + (f".{column}" if column else "")
                kwargs = {k: v for k, v in (meta.kwargs or {}).items() if k not in ("model", "column_name")}
                name = f"{meta.name} on {target}" + (f" {kwargs}" if kwargs else "")
        elif node.resource_type == "unit_test":
            tested = (getattr(node, "tested_node_unique_id", None) or "").split(".")[-1]
            name = f"{node.name} (model {tested})" if tested else node.name
        out.append(NodeResult(
            unique_id=node.unique_id,
            name=name,
            resource_type=str(node.resource_type),
            status=status,
            seconds=float(r.execution_time or 0.0),
            message=(r.message or "") if status not in ("success", "pass") else "",
            research=list(getattr(node, "fqn", None) or [])[1:2] == [RESEARCH_DIR],
        ))
    return out


def _sample_failures(paths: DataPaths, run_results, failed_ids: set[str]) -> dict[str, str]:
    """A few offending rows of each failed data test, re-running its compiled SQL read-only."""
    import duckdb

    samples: dict[str, str] = {}
    queries = {
        r.node.unique_id: r.node.compiled_code
        for r in getattr(run_results, "results", None) or []
        if r.node.unique_id in failed_ids and r.node.resource_type == "test" and getattr(r.node, "compiled_code", None)
    }
    if not queries or not paths.warehouse.exists():
        return samples
    try:
        con = duckdb.connect(str(paths.warehouse), read_only=True)
    except Exception:
        return samples
    try:
        for uid, sql in queries.items():
            try:
                frame = con.execute(f"select * from ({sql}) as failing limit {_SAMPLE_ROWS}").fetchdf()
                samples[uid] = f"offending rows (first {_SAMPLE_ROWS}):\n{frame.to_string(index=False)}"
            except Exception:
                continue
    finally:
        con.close()
    return samples
