"""Build the dbt monitoring marts (`models/monitoring/`, tag `monitoring`) over the pipeline's `ml` tables.

The marts read tables that exist only after the pipeline's stages ran (`ml.predictions`,
`ml.model_registry`, `ml.signals`, `ml.backtest_daily` and the lifecycle's tables), so the feature
build excludes them and this runs them alone: `dbt build --select <marts>` through the same runner as
the feature build (`ml.data.dbt_runner._invoke_dbt`: data dir, target/log paths under `<data>/dbt/`,
vars), materialized as tables in the warehouse schema `monitoring`, their data tests included.

A mart whose `ml` source tables (or upstream warehouse relations, e.g. the labels mart) are missing is
skipped with a log line naming what is missing; with none buildable the stage is skipped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import duckdb

from ml.contract import TABLES
from ml.data.dbt_runner import (
    MONITORING_SELECTOR,
    Log,
    MartBuildError,
    NodeResult,
    _dbt_dirs,
    _invoke_dbt,
    build_marts,
)
from ml.data.raw_inputs import OPTIONAL_PRICE_COLUMNS, RawInputs, inspect_raw
from ml.paths import DataPaths

MONITORING_TAG = MONITORING_SELECTOR.split(":", 1)[1]
MONITORING_SCHEMA = "monitoring"


class MonitoringBuildError(MartBuildError):
    """A monitoring mart or one of its tests failed."""


@dataclass
class MonitoringResult:
    built: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # mart -> missing relations
    tests_passed: int = 0
    tests_warned: int = 0
    seconds: float = 0.0
    nodes: list[NodeResult] = field(default_factory=list)


def _raw_inputs(paths: DataPaths) -> RawInputs:
    if paths.raw_table("prices").exists():
        return inspect_raw(paths)
    return RawInputs(frozenset(TABLES), frozenset(OPTIONAL_PRICE_COLUMNS))


def monitoring_marts(paths: DataPaths) -> dict[str, list[tuple[str, str]]]:
    """{mart: [(schema, relation) it reads]} for every model tagged monitoring, from a fresh parse."""
    raw = _raw_inputs(paths)
    res = _invoke_dbt(["parse"], paths, raw, paths.features)
    target, _ = _dbt_dirs(paths)
    manifest_path = target / "manifest.json"
    if not res.success or not manifest_path.exists():
        raise MonitoringBuildError(f"dbt parse failed: {res.exception}")
    manifest = json.loads(manifest_path.read_text())
    nodes, sources = manifest["nodes"], manifest["sources"]
    out: dict[str, list[tuple[str, str]]] = {}
    for node in nodes.values():
        if node["resource_type"] != "model" or MONITORING_TAG not in (node.get("tags") or []):
            continue
        reads = []
        for dep in node.get("depends_on", {}).get("nodes", []):
            if dep in sources:
                reads.append((sources[dep]["schema"], sources[dep]["identifier"] or sources[dep]["name"]))
            elif dep in nodes and MONITORING_TAG not in (nodes[dep].get("tags") or []):
                upstream = nodes[dep]
                reads.append((upstream["schema"], upstream.get("alias") or upstream["name"]))
        out[node["name"]] = reads
    return dict(sorted(out.items()))


def _existing_relations(paths: DataPaths) -> set[tuple[str, str]]:
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        rows = con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    finally:
        con.close()
    return {(s, t) for s, t in rows}


def build_monitoring_marts(paths: DataPaths, log: Log = print) -> MonitoringResult:
    """`dbt build` the monitoring marts whose inputs exist (tables in schema `monitoring`, tests
    included); skip, with a log line, the ones whose `ml` tables are missing. Raises
    MonitoringBuildError when a mart or a test fails."""
    started = time.perf_counter()
    result = MonitoringResult()
    if not paths.warehouse.exists():
        log(f"[monitoring] skipped: no warehouse at {paths.warehouse} (build features and run the pipeline first)")
        return result
    marts = monitoring_marts(paths)
    existing = _existing_relations(paths)
    for mart, reads in marts.items():
        missing = [f"{s}.{t}" for s, t in reads if (s, t) not in existing]
        if missing:
            result.skipped[mart] = missing
            log(f"[monitoring] skipping {mart}: missing {', '.join(missing)}")
    selected = [m for m in marts if m not in result.skipped]
    if not selected:
        log("[monitoring] skipped: no monitoring mart has its inputs yet (the ml tables appear after training)")
        result.seconds = time.perf_counter() - started
        return result
    log(f"[monitoring] dbt build of {len(selected)} marts: {', '.join(selected)}")
    nodes = build_marts(paths, _raw_inputs(paths), selected, log, "monitoring marts", MonitoringBuildError)
    result.nodes = nodes
    result.built = sorted(n.name for n in nodes if n.resource_type == "model" and n.status == "success")
    tests = [n for n in nodes if n.is_test]
    result.tests_passed = sum(1 for n in tests if n.status == "pass")
    result.tests_warned = sum(1 for n in tests if n.status == "warn")
    result.seconds = time.perf_counter() - started
    for n in nodes:
        if n.status == "warn":
            log(f"[monitoring] warning: {n.describe()}")
    log(f"[monitoring] built {len(result.built)} marts in schema {MONITORING_SCHEMA} "
        f"({result.tests_passed} tests passed, {result.tests_warned} warned) in {result.seconds:.1f}s")
    return result


def run_monitoring_marts_stage(paths: DataPaths, log: Log = print) -> dict:
    """Pipeline stage wrapper (ml.pipeline.STAGES signature): build the marts, return report keys."""
    result = build_monitoring_marts(paths, log=log)
    return {"monitoring_marts_built": result.built, "monitoring_marts_skipped": sorted(result.skipped),
            "monitoring_marts_s": result.seconds}
