"""Build the SQL feature layer: the dbt project in the repository root, run in-process over DuckDB.

`build_features(paths)` runs `dbt build` (models, data tests and unit tests) against
`$AURORA_DATA_DIR/warehouse.duckdb` and publishes the feature marts as parquet under
`$AURORA_DATA_DIR/features/` (`<view>.parquet` and `labels.parquet`: symbol, date, then the features).

- Inputs decide what is built. The raw directory is inspected (tables present, optional price columns
  present); views whose inputs are missing (`ml.data.views.disabled_views`, from the views' `needs:`
  tags) are skipped and reported, the models tagged `needs:<input>` for a missing input are excluded,
  and dbt vars tell the remaining models which optional inputs exist (e.g. sector returns from ETFs or
  from members).
- Publication is all-or-nothing. dbt writes the marts into a private staging folder under features/;
  only when every model and test passed are they moved into place (one atomic rename per file), stale
  files of skipped views removed, and the warehouse views re-pointed at the published files. On any
  failure `FeatureBuildError` lists what failed and why, and features/ is left exactly as it was.
- Several data directories can build side by side: dbt's target and log paths live under
  `<data>/dbt/`, and the data directory reaches dbt as an absolute `AURORA_DATA_DIR`.

The pieces live in ml/data/: raw_inputs (what raw/ holds), dbt_runner (running dbt, node results,
`build_marts` for the monitoring and research marts), warehouse_views (the published marts and the
warehouse views over them); this module runs the feature build and fingerprints its marts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ml.contract import REQUIRED_TABLES, TABLES
from ml.data.dbt_runner import (
    MONITORING_SELECTOR,
    Log,
    NodeResult,
    _dbt_dirs,
    _invoke_dbt,
    _node_results,
    _progress_callback,
    _sample_failures,
)
from ml.data.raw_inputs import OPTIONAL_PRICE_COLUMNS, RawInputs, inspect_raw
from ml.data.views import feature_views, project_dir
from ml.data.warehouse_views import LABELS, _excluded_models, _sync_warehouse, marts
from ml.paths import DataPaths


def __getattr__(name: str):
    if name == "MARTS":  # the old constant, now discovered on every access
        return marts()
    if name == "PROJECT_DIR":
        return project_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FeatureBuildError(RuntimeError):
    """The feature build failed; `str(err)` is a readable report. Published features are unchanged."""

    def __init__(self, message: str, failures: list[NodeResult] | None = None,
                 result: BuildResult | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []
        self.result = result


@dataclass
class BuildResult:
    """What a feature build did."""

    views_built: list[str]
    views_skipped: dict[str, list[str]]
    labels_built: bool
    tests_passed: int
    tests_failed: int
    tests_warned: int
    seconds: float
    manifest_path: Path
    files: dict[str, Path] = field(default_factory=dict)
    nodes: list[NodeResult] = field(default_factory=list)
    research_error: str | None = None  # the research marts failed (the features were published)

    @property
    def models_built(self) -> int:
        return sum(1 for n in self.nodes if n.resource_type == "model" and n.status == "success")

    def summary(self) -> str:
        lines = [
            f"features built in {self.seconds:.1f}s: {self.models_built} models, "
            f"{self.tests_passed} tests passed, {self.tests_failed} failed, {self.tests_warned} warned",
            "views built: " + (", ".join(self.views_built) or "none")
            + (f" (+ {LABELS})" if self.labels_built else ""),
        ]
        for view, missing in self.views_skipped.items():
            lines.append(f"view skipped: {view} (missing {', '.join(missing)})")
        research = [n for n in self.nodes if n.research and n.resource_type == "model" and n.status == "success"]
        if research:
            lines.append(f"feature research: {len(research)} models in "
                         f"{sum(n.seconds for n in research):.1f}s (`aurora features`)")
        warned = [n for n in self.nodes if n.status == "warn"]
        lines += [f"warning: {n.describe()}" for n in warned]
        if self.research_error:
            lines.append(f"warning: {self.research_error}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# public API


def build_features(paths: DataPaths, log: Log = print, select: str | None = None) -> BuildResult:
    """Run `dbt build` for the feature layer on `paths` and publish the marts; see the module docstring.

    `select` is a dbt selector (e.g. "+price_momentum") to build part of the project.
    Raises FeatureBuildError, with a readable report, when a model or test fails, except the feature
    research marts (models/research/, read only by `aurora features` and the app): their failure is
    logged as a warning and kept in `result.research_error`, and the feature marts are published.
    """
    started = time.perf_counter()
    missing_required = [t for t in REQUIRED_TABLES if not paths.raw_table(t).exists()]
    if missing_required:
        raise FeatureBuildError(
            f"no raw data to build features from: {', '.join(missing_required)} missing in {paths.raw} "
            "(run `aurora generate` or `aurora ingest` first)"
        )
    raw = inspect_raw(paths)
    skipped = raw.skipped_views
    for view, needs in skipped.items():
        log(f"skipping view {view}: missing {', '.join(needs)}")

    paths.features.mkdir(parents=True, exist_ok=True)
    staging = paths.features / f".staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    target, _ = _dbt_dirs(paths)
    manifest_path = target / "manifest.json"
    # Tests of excluded models drop out with them (dbt's default "eager" exclusion). With a selection,
    # "cautious" runs a test only when every model it reads is selected, so e.g. a mart's test
    # comparing it with stg_prices does not run just because stg_prices was selected.
    # The monitoring marts (tag:monitoring) read the pipeline's ml tables: ml.monitoring builds them.
    command = ["build", "--exclude", *raw.excludes(), MONITORING_SELECTOR]
    if select:
        command += ["--select", *select.split(), "--indirect-selection", "cautious"]
    log(f"dbt build on {paths.root}" + (f" (select {select})" if select else ""))
    try:
        res = _invoke_dbt(command, paths, raw, staging, callbacks=[_progress_callback(log)])
        nodes = _node_results(res.result)
        failures = [n for n in nodes if n.failed and not n.research]
        research_failures = [n for n in nodes if n.failed and n.research]
        tests = [n for n in nodes if n.is_test]
        built = {n.name for n in nodes if n.resource_type == "model" and n.status == "success"}
        result = BuildResult(
            views_built=[v for v in feature_views() if v in built],
            views_skipped=skipped,
            labels_built=LABELS in built,
            tests_passed=sum(1 for n in tests if n.status == "pass"),
            tests_failed=sum(1 for n in tests if n.failed),
            tests_warned=sum(1 for n in tests if n.status == "warn"),
            seconds=0.0,
            manifest_path=manifest_path,
            nodes=nodes,
        )
        if failures or (not res.success and not research_failures):
            samples = _sample_failures(paths, res.result, {n.unique_id for n in failures})
            failures = [
                NodeResult(**{**n.__dict__, "detail": samples.get(n.unique_id, "")}) for n in failures
            ]
            result.seconds = time.perf_counter() - started
            raise FeatureBuildError(_failure_report(res, failures, nodes, paths), failures, result)
        if research_failures:
            samples = _sample_failures(paths, res.result, {n.unique_id for n in research_failures})
            result.research_error = "\n".join(
                ["feature research marts failed (the feature marts are published; the research tables that "
                 "failed, and those built from them, keep their previous contents):"]
                + [f"  - {NodeResult(**{**n.__dict__, 'detail': samples.get(n.unique_id, '')}).describe()}"
                   for n in research_failures])

        # every mart that dbt built must have its parquet in staging before anything is published
        produced = {m: staging / f"{m}.parquet" for m in marts() if m in built}
        absent = [m for m, f in produced.items() if not f.exists()]
        if absent:
            raise FeatureBuildError(f"dbt reported success but wrote no parquet for: {', '.join(absent)}")
        for mart, file in produced.items():
            os.replace(file, paths.features / file.name)
            result.files[mart] = paths.features / file.name
        for view in skipped:
            stale = paths.features / f"{view}.parquet"
            if stale.exists():
                stale.unlink()
                log(f"removed stale {stale.name} (view skipped)")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(Exception):
            _sync_warehouse(paths, drop=_excluded_models(manifest_path, raw))

    result.seconds = time.perf_counter() - started
    for line in result.summary().splitlines():
        log(line)
    log(f"dbt detail, node by node: {_dbt_dirs(paths)[1] / 'dbt.log'}")
    return result


def _failure_report(res, failures: list[NodeResult], nodes: list[NodeResult], paths: DataPaths) -> str:
    lines = [f"feature build failed; published features in {paths.features} are unchanged."]
    if res.exception is not None:
        lines.append(f"dbt could not run: {res.exception}")
    if failures:
        lines.append(f"{len(failures)} failed:")
        lines += [f"  - {n.describe()}" for n in failures]
    skipped = [n for n in nodes if n.status == "skipped"]
    if skipped:
        lines.append(f"{len(skipped)} nodes not run because something upstream failed: "
                     + ", ".join(sorted(n.name for n in skipped if n.resource_type == "model")))
    _, logs = _dbt_dirs(paths)
    lines.append(f"dbt log: {logs / 'dbt.log'}")
    return "\n".join(lines)


def _load_manifest(paths: DataPaths) -> dict:
    target, _ = _dbt_dirs(paths)
    manifest = target / "manifest.json"
    if not manifest.exists():
        raw = inspect_raw(paths) if paths.raw_table("prices").exists() else RawInputs(
            frozenset(TABLES), frozenset(OPTIONAL_PRICE_COLUMNS))
        res = _invoke_dbt(["parse"], paths, raw, paths.features)
        if not res.success or not manifest.exists():
            raise FeatureBuildError(f"dbt parse failed: {res.exception}")
    return json.loads(manifest.read_text())


def mart_checksums(paths: DataPaths, lineage: bool = False) -> dict[str, str]:
    """The dbt manifest checksum (sha256 of the model's SQL) of each mart, keyed by view name.

    With `lineage=True` each value instead hashes the checksums of the mart and of every model upstream
    of it plus the macros they call, so it changes whenever anything that defines the features does.
    Uses the manifest of the last build of `paths` (running `dbt parse` when there is none).
    """
    manifest = _load_manifest(paths)
    nodes, macros = manifest["nodes"], manifest.get("macros", {})
    names = marts()
    out: dict[str, str] = {}
    for uid, node in nodes.items():
        if node["resource_type"] != "model" or node["name"] not in names:
            continue
        if not lineage:
            out[node["name"]] = node["checksum"]["checksum"]
            continue
        seen_nodes: set[str] = set()
        seen_macros: set[str] = set()
        stack = [uid]
        while stack:
            current = nodes.get(stack.pop())
            if current is None or current["unique_id"] in seen_nodes:
                continue
            seen_nodes.add(current["unique_id"])
            deps = current.get("depends_on", {})
            stack += [d for d in deps.get("nodes", []) if d.startswith("model.")]
            macro_stack = list(deps.get("macros", []))
            while macro_stack:
                m = macro_stack.pop()
                if m in seen_macros or m not in macros:
                    continue
                seen_macros.add(m)
                macro_stack += macros[m].get("depends_on", {}).get("macros", [])
        digest = hashlib.sha256()
        for u in sorted(seen_nodes):
            digest.update(f"{u}:{nodes[u]['checksum']['checksum']}\n".encode())
        for m in sorted(seen_macros):
            digest.update(f"{m}:{hashlib.sha256(macros[m]['macro_sql'].encode()).hexdigest()}\n".encode())
        out[node["name"]] = digest.hexdigest()
    return {m: out[m] for m in names if m in out}
