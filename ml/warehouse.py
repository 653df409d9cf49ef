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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from ml.contract import OPTIONAL_TABLES, REQUIRED_TABLES, TABLES
from ml.data.views import disabled_views, feature_views, project_dir
from ml.paths import DataPaths

LABELS = "labels"


def marts() -> tuple[str, ...]:
    """The published marts: every feature view of the dbt project (ml/data/views.py), then labels."""
    return (*feature_views(), LABELS)


def __getattr__(name: str):
    if name == "MARTS":  # the old constant, now discovered on every access
        return marts()
    if name == "PROJECT_DIR":
        return project_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
OPTIONAL_PRICE_COLUMNS: tuple[str, ...] = TABLES["prices"].optional_columns
WAREHOUSE_SCHEMA = "main"
MONITORING_SELECTOR = "tag:monitoring"  # marts over the ml schema, never part of the feature build
RESEARCH_SELECTOR = "tag:research"  # feature research marts (models/research/): built, never blocking
RESEARCH_DIR = "research"
_SAMPLE_ROWS = 5

Log = Callable[[str], None]


class FeatureBuildError(RuntimeError):
    """The feature build failed; `str(err)` is a readable report. Published features are unchanged."""

    def __init__(self, message: str, failures: list[NodeResult] | None = None,
                 result: BuildResult | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []
        self.result = result


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
class RawInputs:
    """What the raw directory holds: contract tables present and optional price columns with data."""

    tables: frozenset[str]
    price_columns: frozenset[str]

    @property
    def missing(self) -> list[str]:
        """Missing optional inputs, as `needs:` tag suffixes (`fundamentals`, `prices.vwap`, ...)."""
        tables = [t for t in OPTIONAL_TABLES if t not in self.tables]
        columns = [f"prices.{c}" for c in OPTIONAL_PRICE_COLUMNS if c not in self.price_columns]
        return tables + columns

    @property
    def skipped_views(self) -> dict[str, list[str]]:
        return disabled_views(set(self.tables), set(self.price_columns))

    def dbt_vars(self) -> dict[str, list[str]]:
        skipped = self.skipped_views
        return {"raw_tables": sorted(self.tables), "price_columns": sorted(self.price_columns),
                "feature_views": [v for v in feature_views() if v not in skipped]}

    def excludes(self) -> list[str]:
        return [f"tag:needs:{m}" for m in self.missing] + sorted(self.skipped_views)


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
# inputs


def inspect_raw(paths: DataPaths) -> RawInputs:
    """The contract tables present under raw/ and the optional price columns that hold any data."""
    tables = frozenset(name for name in TABLES if paths.raw_table(name).exists())
    columns: set[str] = set()
    prices = paths.raw_table("prices")
    if prices.exists():
        meta = pq.ParquetFile(prices).metadata
        names = set(meta.schema.names)
        for column in OPTIONAL_PRICE_COLUMNS:
            if column in names and _has_values(prices, meta, column):
                columns.add(column)
    return RawInputs(tables, frozenset(columns))


def _has_values(path: Path, meta, column: str) -> bool:
    """True when the parquet column has at least one non-null value (statistics first, data if needed)."""
    if meta.num_rows == 0:
        return False
    index = meta.schema.names.index(column)
    nulls = 0
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(index).statistics
        if stats is None or not stats.has_null_count:
            return pq.read_table(path, columns=[column]).column(0).null_count < meta.num_rows
        nulls += stats.null_count
    return nulls < meta.num_rows


# ----------------------------------------------------------------------------------------------
# running dbt


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


# ----------------------------------------------------------------------------------------------
# publishing


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sync_warehouse(paths: DataPaths, drop: list[str]) -> None:
    """Point each mart's warehouse view at its published parquet (or drop it when there is none) and
    drop relations of models excluded for missing inputs, so no stale table or dangling view remains."""
    import duckdb

    if not paths.warehouse.exists():
        return
    con = duckdb.connect(str(paths.warehouse))
    try:
        kinds = dict(con.execute(
            "select table_name, table_type from information_schema.tables where table_schema = ?",
            [WAREHOUSE_SCHEMA],
        ).fetchall())
        for mart in marts():
            published = paths.features / f"{mart}.parquet"
            if published.exists():
                if kinds.get(mart, "VIEW") == "VIEW":
                    con.execute(
                        f'create or replace view {WAREHOUSE_SCHEMA}."{mart}" as '
                        f"select * from read_parquet({_sql_string(str(published))})"
                    )
            elif mart in kinds:
                drop.append(mart)
        for name in dict.fromkeys(drop):
            kind = kinds.get(name)
            if kind is not None:
                what = "view" if kind == "VIEW" else "table"
                con.execute(f'drop {what} if exists {WAREHOUSE_SCHEMA}."{name}"')
    finally:
        con.close()


def _excluded_models(manifest_path: Path, raw: RawInputs) -> list[str]:
    """Names of the models that need a missing input (from their `needs:` tags)."""
    if not manifest_path.exists():
        return []
    missing = {f"needs:{m}" for m in raw.missing}
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return sorted(
        n["name"] for n in nodes
        if n["resource_type"] == "model" and (missing & set(n.get("tags") or [])
                                              or n["name"] in raw.skipped_views)
    )


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
