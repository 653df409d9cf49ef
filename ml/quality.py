"""The data-quality gate of the feature build: Great Expectations on pandas DataFrames plus reference
profiles. Public API: `check_features(paths, ...)`, `DataQualityError`, `QualityConfig`.

Why GX on DataFrames: GX 1.x through SQLAlchemy/duckdb_engine fails on every expectation (see
STACK.md), so each mart (`features/<view>.parquet`, `features/labels.parquet`) is read into pandas
and validated there; row/column tests of the warehouse itself stay in dbt.

Severities. *critical* stops the pipeline (`DataQualityError`): what is wrong in any market.
*quarantine* leaves the column out of training and serving (`ml.data.quarantine`) and the run goes
on. *warning* is recorded and logged only. Structural rules, with GX, on all rows, no thresholds:

| rule | severity | per | expectation |
|---|---|---|---|
| `schema` | critical | frame | key columns exist |
| `keys_not_null` | critical | symbol, date | values not null |
| `unique_keys` | critical | (symbol, date) | compound columns unique |
| `freshness` | critical | date | max date = latest raw price date (labels: up to `label_lag_days` before) |
| `numeric` | critical | column | dtype float64 |
| `finite` | critical | column | no +-infinity |
| `declared_range` | critical | column | within the `accepted_range` its dbt YAML declares (impossible values) |
| `not_all_null` | critical | column | some value is not null |
| `not_constant` | critical | column | at least two distinct values |

Distribution rules compare each column with its own past: its earlier months, and the reference
profile that the last accepted build of the same data directory persisted (`quality.reference_profile`,
only when raw data comes from the same source); see `ml.data.quality_profile` for `scale_jump`
(critical: a step of >= `scale_jump_log10` orders of magnitude, e.g. a vendor unit change),
`scale_shift`, `null_rate`, `psi` (quarantine against the reference, warnings on a first build) and
`reference_profile`. Labels are never quarantined: their non-structural failures are warnings.
Thresholds: `config/quality.yaml` (`QualityConfig`, loaded by `ml.config.load_config`).

Storage, one transaction per run: every outcome is appended to `quality.gx_results` (`RESULT_COLUMNS`;
`expectation` is the GX expectation type, or `aurora.<rule>` for the profile rules); when no critical
rule failed, `quality.quarantine` is replaced by this run's quarantined columns and the reference
profile of every validated view by this run's profile (a quarantined column keeps its previous
reference, so it stays quarantined until its data returns to normal). A rejected build changes
neither.
"""

from __future__ import annotations

import os

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported (lazily, below)

import hashlib
import json
import logging
import math
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ml.config import load_config
from ml.data import quality_profile as qp
from ml.data import quarantine
from ml.data.quality_store import (  # noqa: F401 (public API of the gate)
    PROFILE_TABLE,
    RESULT_COLUMNS,
    RESULTS_TABLE,
    read_reference,
    write_results,
)
from ml.data.views import FEATURES_SUBDIR, feature_views, project_dir
from ml.paths import DataPaths

LABELS = "labels"
KEYS = ("symbol", "date")
CRITICAL, QUARANTINE, WARNING = qp.CRITICAL, qp.QUARANTINE, qp.WARNING
RULE_SEVERITY = {
    "schema": CRITICAL,
    "keys_not_null": CRITICAL,
    "unique_keys": CRITICAL,
    "freshness": CRITICAL,
    "numeric": CRITICAL,
    "finite": CRITICAL,
    "declared_range": CRITICAL,
    "not_all_null": CRITICAL,
    "not_constant": CRITICAL,
}
_FLOAT_MAX = float(np.finfo(np.float64).max)


class DataQualityError(RuntimeError):
    """A critical rule failed; `results` holds every rule's outcome, `report` the failures."""

    def __init__(self, report: str, results: pd.DataFrame | None = None):
        super().__init__(report)
        self.report = report
        self.results = results


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the gate; `config/quality.yaml` documents each one."""

    label_lag_days: int = 45
    baseline_months: int = 12
    min_baseline_months: int = 3
    min_period_values: int = 20
    scale_jump_log10: float = 2.0
    scale_shift_log10: float = 0.5
    recent_months: int = 3
    max_null_rate_increase: float = 0.25
    max_psi: float = 0.25
    freshness_max_business_days: int = 3  # read by ml.data.freshness (publish_signals), not by the gate

    @classmethod
    def load(cls, override: str | os.PathLike | Mapping | QualityConfig | None = None) -> QualityConfig:
        return load_config("quality", cls, override)


# ------------------------------------------------------------------------------------------ inputs
def latest_price_date(paths: DataPaths) -> date | None:
    """The last date of `raw/prices.parquet`, or None when there is none."""
    import duckdb

    path = paths.raw_table("prices")
    if not path.exists():
        return None
    with duckdb.connect() as con:
        value = con.execute("select max(date) from read_parquet(?)", [str(path)]).fetchone()[0]
    return pd.Timestamp(value).date() if value is not None else None


def load_marts(paths: DataPaths) -> dict[str, pd.DataFrame]:
    """The feature marts present (the project's views first, in view order, then any other mart) plus labels."""
    import pyarrow.parquet as pq

    found = {p.stem for p in paths.features.glob("*.parquet")} if paths.features.exists() else set()
    views = feature_views()
    names = [v for v in views if v in found] + sorted(found - {*views, LABELS})
    names += [LABELS] if LABELS in found else []
    return {name: pq.read_table(paths.features / f"{name}.parquet").to_pandas() for name in names}


def data_fingerprint(paths: DataPaths) -> str:
    """Which raw data a reference profile belongs to: `raw/_source.json` and the first price date
    (a regenerated or re-ingested market from another source gets a fresh reference)."""
    source = paths.raw / "_source.json"
    text = source.read_text() if source.exists() else ""
    first = None
    if paths.raw_table("prices").exists():
        import duckdb

        with duckdb.connect() as con:
            first = con.execute("select min(date) from read_parquet(?)", [str(paths.raw_table("prices"))]).fetchone()[0]
    return hashlib.sha256(f"{text}|{first}".encode()).hexdigest()[:16]


@lru_cache(maxsize=64)
def declared_ranges(view: str) -> dict[str, tuple[float | None, float | None]]:
    """{column: (min, max)} of the error-severity `accepted_range` tests the mart's dbt YAML declares."""
    import yaml

    out: dict[str, tuple[float | None, float | None]] = {}
    path = project_dir() / FEATURES_SUBDIR / f"{view}.yml"
    if not path.exists():
        return out
    for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
        if model.get("name") != view:
            continue
        for col in model.get("columns", []):
            for test in col.get("data_tests") or []:
                if not isinstance(test, dict) or "accepted_range" not in test:
                    continue
                spec = test["accepted_range"] or {}
                args = spec.get("arguments", spec)
                if (spec.get("config") or {}).get("severity", "error") != "error":
                    continue
                out[col["name"]] = (args.get("min_value"), args.get("max_value"))
    return out


# ------------------------------------------------------------------------------------------- rules
def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame GX sees: datetime `date`, numeric features as float64 (GX's fast path)."""
    df = frame.reset_index(drop=True)
    df["date"] = pd.to_datetime(df["date"])
    for col in df.columns:
        if col not in KEYS and pd.api.types.is_numeric_dtype(df[col]) and df[col].dtype != np.float64:
            df[col] = df[col].astype("float64")
    return df


def structural_expectations(view: str, df: pd.DataFrame, latest: date | None, config: QualityConfig) -> list:
    """(rule, GX expectation) pairs of one prepared frame: the structural, critical rules."""
    import great_expectations as gx

    E = gx.expectations
    features = [c for c in df.columns if c not in KEYS]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(df[c])]
    out: list[tuple[str, Any]] = [
        ("keys_not_null", E.ExpectColumnValuesToNotBeNull(column="symbol")),
        ("keys_not_null", E.ExpectColumnValuesToNotBeNull(column="date")),
        ("unique_keys", E.ExpectCompoundColumnsToBeUnique(column_list=list(KEYS))),
    ]
    if latest is not None:
        newest = datetime.combine(latest, datetime.min.time())
        oldest = newest - timedelta(days=config.label_lag_days) if view == LABELS else newest
        out.append(("freshness", E.ExpectColumnMaxToBeBetween(column="date", min_value=oldest, max_value=newest)))
    ranges = declared_ranges(view)
    for col in features:
        out.append(("numeric", E.ExpectColumnValuesToBeInTypeList(column=col, type_list=["float64"])))
    for col in numeric:
        out += [
            ("finite", E.ExpectColumnValuesToBeBetween(column=col, min_value=-_FLOAT_MAX, max_value=_FLOAT_MAX)),
            ("not_all_null", E.ExpectColumnProportionOfNonNullValuesToBeBetween(column=col, min_value=0.0,
                                                                                 strict_min=True)),
            ("not_constant", E.ExpectColumnUniqueValueCountToBeBetween(column=col, min_value=2)),
        ]
        if col in ranges:
            lo, hi = ranges[col]
            out.append(("declared_range", E.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi)))
    return out


# ------------------------------------------------------------------------------------------ run GX
def _gx_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _run_gx(context, source, view: str, df: pd.DataFrame, expectations: list) -> list[tuple[str, Any]]:
    """One GX Checkpoint over one frame; (rule, ExpectationValidationResult) pairs."""
    import great_expectations as gx
    from great_expectations.expectations.metadata_types import FailureSeverity

    name = f"aurora_{view}"
    for rule, expectation in expectations:
        expectation.meta = {"rule": rule}
        expectation.severity = FailureSeverity(RULE_SEVERITY[rule])
    # the whole suite at once: suite.add_expectation re-serializes the suite on every call
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=[e for _, e in expectations]))
    batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all_rows")
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=name, validation_definitions=[definition],
        result_format={"result_format": "BASIC", "partial_unexpected_count": 5}))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        result = checkpoint.run(batch_parameters={"dataframe": df})
    return [((r.expectation_config.meta or {}).get("rule", "?"), r)
            for suite_result in result.run_results.values() for r in suite_result.results]


def validate_frames(
    frames: dict[str, pd.DataFrame],
    latest: date | None,
    config: QualityConfig | None = None,
    run_id: str | None = None,
    log: Callable[[str], None] | None = None,
    reference: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every rule on every frame: (results with `RESULT_COLUMNS`, the frames' profile).

    `reference`: the reference profile (rows of every view), or None on a first build.
    """
    config = config or QualityConfig.load()
    log = log or (lambda _m: None)
    run_id = run_id or new_run_id()
    run_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    context = _gx_context()
    source = context.data_sources.add_pandas("aurora_marts")
    rows: list[dict[str, Any]] = []
    profiles = []
    for view, frame in frames.items():
        t0 = time.perf_counter()
        missing = [c for c in KEYS if c not in frame.columns]
        if missing:
            rows.append(_row(run_id, run_at, view, "schema", "expect_column_to_exist", ",".join(missing), False,
                             f"missing key column(s) {missing}", {"columns": list(frame.columns)}))
            continue
        df = _prepare(frame)
        start = len(rows)
        for rule, r in _run_gx(context, source, view, df, structural_expectations(view, df, latest, config)):
            cfg = r.expectation_config
            column = cfg.kwargs.get("column") or ",".join(cfg.kwargs.get("column_list") or [])
            observed, details = _describe(r, cfg)
            rows.append(_row(run_id, run_at, view, rule, cfg.type, column, bool(r.success), observed, details))
        keys_ok = all(r["success"] for r in rows[start:] if r["rule"] in ("keys_not_null", "unique_keys"))
        if keys_ok:  # a profile of a frame with broken keys would mislead
            profile = qp.profile_frame(view, df, config.recent_months)
            profiles.append(profile)
            ref = None if reference is None else reference[reference["view"] == view]
            for f in qp.evaluate(view, df, profile, ref, config, is_labels=view == LABELS):
                rows.append(_row(run_id, run_at, view, f["rule"], f"aurora.{f['rule']}", f["column_name"],
                                 f["success"], f["observed_value"], f["details"], f["severity"]))
        failed = [r for r in rows[start:] if not r["success"]]
        by = {s: sum(r["severity"] == s for r in failed) for s in (CRITICAL, QUARANTINE, WARNING)}
        log(f"quality {view}: {len(rows) - start} checks on {len(frame)} rows; failed: {by[CRITICAL]} critical, "
            f"{by[QUARANTINE]} quarantine, {by[WARNING]} warning ({time.perf_counter() - t0:.1f}s)")
    profile = pd.concat(profiles, ignore_index=True) if profiles else pd.DataFrame(columns=list(qp.PROFILE_COLUMNS))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS)), profile


def _row(run_id, run_at, view, rule, expectation, column, success, observed, details, severity=None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "run_at": run_at,
        "view": view,
        "rule": rule,
        "severity": severity or RULE_SEVERITY.get(rule, CRITICAL),
        "expectation": expectation,
        "column_name": column or None,
        "success": success,
        "observed_value": observed,
        "details": json.dumps(_jsonable(details), sort_keys=True),
    }


def _describe(result, cfg) -> tuple[str, dict[str, Any]]:
    """A readable observed value and the details (bounds, counts, examples) of one expectation result."""
    res = result.result or {}
    kwargs = {
        k: v
        for k, v in cfg.kwargs.items()
        if k not in ("column", "column_list", "batch_id") and v is not None
    }
    details: dict[str, Any] = {"kwargs": kwargs}
    exception = getattr(result, "exception_info", None) or {}
    if exception.get("raised_exception"):
        details["exception"] = exception.get("exception_message")
        return f"error: {exception.get('exception_message')}", details
    if "observed_value" in res:
        observed = res["observed_value"]
        details["observed_value"] = observed
        if observed is None or (isinstance(observed, float) and math.isnan(observed)):
            return "not computable (non-finite or no values)", details
        if isinstance(observed, pd.Timestamp | datetime):
            stamp = pd.Timestamp(observed)
            observed = stamp.date().isoformat() if stamp == stamp.normalize() else str(stamp)
        elif isinstance(observed, float):
            observed = f"{observed:.6g}"
        return str(observed), details
    count, total = res.get("unexpected_count"), res.get("element_count")
    missing = res.get("missing_count")
    examples = res.get("partial_unexpected_list") or []
    details.update(
        unexpected_count=count,
        element_count=total,
        missing_count=missing,
        unexpected_percent=res.get("unexpected_percent"),
        examples=examples[:5],
    )
    if count is None:
        return "n/a", details
    pct = 100.0 * count / total if total else 0.0
    text = f"{count} of {total} rows unexpected ({pct:.3g}%)"
    if examples and cfg.type != "expect_column_values_to_not_be_null":
        text += f", e.g. {', '.join(_fmt(v) for v in examples[:3])}"
    return text, details


def _fmt(value: Any) -> str:
    if isinstance(value, str) and value.endswith("T00:00:00"):
        return value[: -len("T00:00:00")]
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return "(" + ", ".join(_fmt(v) for v in value.values()) + ")"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else str(float(value))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    return str(value)



# ------------------------------------------------------------------------------ report and storage
def render_failures(results: pd.DataFrame, severity: str = CRITICAL, limit: int = 40) -> str:
    """A readable report of failed expectations of one severity: view, rule, column, observed, bounds."""
    failed = results[~results["success"].astype(bool) & (results["severity"] == severity)]
    if failed.empty:
        return f"no {severity} expectation failed"
    run_id = results["run_id"].iloc[0]
    head = {CRITICAL: "data quality failed", QUARANTINE: "data quality: quarantined columns"}.get(
        severity, "data quality warnings")
    lines = [
        f"{head}: {len(failed)} of {len(results)} expectations ({severity}) in "
        f"{failed['view'].nunique()} frame(s) (run {run_id}; table {RESULTS_TABLE}):"
    ]
    for row in failed.head(limit).itertuples(index=False):
        kwargs = json.loads(row.details).get("kwargs", {})
        bounds = {k: kwargs[k] for k in ("min_value", "max_value", "mostly") if k in kwargs}
        expected = ", ".join(f"{k}={_fmt(v)}" for k, v in bounds.items())
        lines.append(
            f"  - view {row.view} | {row.rule} ({row.expectation}) | column {row.column_name or '-'} | "
            f"observed: {row.observed_value}" + (f" | expected: {expected}" if expected else "")
        )
    if len(failed) > limit:
        lines.append(f"  ... and {len(failed) - limit} more")
    return "\n".join(lines)


def new_run_id() -> str:
    return f"gx-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def check_features(
    paths: DataPaths,
    frames: dict[str, pd.DataFrame] | None = None,
    latest: date | None = None,
    config: QualityConfig | Mapping | str | None = None,
    run_id: str | None = None,
    log: Callable[[str], None] | None = print,
    raise_on_failure: bool = True,
    use_reference: bool = True,
) -> pd.DataFrame:
    """Validate the feature and label marts, record the outcome in the warehouse, stop on critical failures.

    `frames` default to the marts in `paths.features`; `latest` to the last raw price date (when there
    are no raw prices, to the newest date among the frames, logged). Returns every rule's outcome
    (`RESULT_COLUMNS`); `results.attrs["quarantine"]` holds the quarantined columns. Raises
    `DataQualityError` (after the results are written) when a critical rule fails and
    `raise_on_failure`; quarantined columns and warnings are logged and the run goes on.
    """
    log = log or (lambda _m: None)
    config = QualityConfig.load(config)
    t0 = time.perf_counter()
    frames = load_marts(paths) if frames is None else frames
    if not frames:
        raise DataQualityError(f"data quality: no feature marts found in {paths.features}")
    if latest is None:
        latest = latest_price_date(paths)
        if latest is None:
            latest = max(pd.to_datetime(f["date"]).max() for f in frames.values() if "date" in f).date()
            log(f"quality: no raw prices in {paths.raw}; freshness measured against the newest mart date {latest}")
    fingerprint = data_fingerprint(paths)
    reference = read_reference(paths, fingerprint) if use_reference else None
    if reference is None:
        log("quality: no reference profile of this data directory and source: distribution checks warn only")
    results, profile = validate_frames(frames, latest, config, run_id, log, reference)
    failed = results[~results["success"]]
    n_critical = int((failed["severity"] == CRITICAL).sum())
    accepted = n_critical == 0
    held = quarantine.from_results(results)
    write_results(paths, results, held if accepted else None, profile if accepted else None, fingerprint)
    results.attrs["quarantine"] = held
    log(f"quality: {len(results)} checks on {len(frames)} frames; {n_critical} critical, "
        f"{int((failed['severity'] == QUARANTINE).sum())} quarantine and "
        f"{int((failed['severity'] == WARNING).sum())} warning failures, run {results['run_id'].iloc[0]} "
        f"({time.perf_counter() - t0:.1f}s)")
    if (failed["severity"] == WARNING).any():
        log(render_failures(results, WARNING))
    if accepted and len(held):
        log(render_failures(results, QUARANTINE))
        cols = sorted(set(held["view"] + "." + held["column_name"]))
        log(f"quality: {len(cols)} column(s) quarantined (left out of training and serving; {quarantine.TABLE}): "
            + ", ".join(cols))
    if n_critical and raise_on_failure:
        raise DataQualityError(render_failures(results, CRITICAL), results)
    return results
