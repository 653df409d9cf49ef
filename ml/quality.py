"""Data quality of the feature marts, with Great Expectations 1.x on pandas DataFrames.

Why GX on DataFrames: GX 1.x through SQLAlchemy/duckdb_engine fails on every expectation (see
STACK.md), so each mart is read into pandas and validated there; row/column tests of the warehouse
itself stay in dbt.

Suites are built per frame (`features/<view>.parquet`, `features/labels.parquet`) from generic, robust
rules, because feature names are not fixed (analysts add features in SQL):

| rule | severity | per | expectation | rows |
|---|---|---|---|---|
| `keys_not_null` | critical | symbol, date | values not null | all |
| `unique_keys` | critical | (symbol, date) | compound columns unique | all |
| `freshness` | critical | date | max date = latest raw price date (labels: up to `label_lag_days` before) | all |
| `numeric` | critical | feature | dtype numeric | all |
| `finite` | critical | feature | no +-infinity (values within +-float max) | all |
| `null_rate` | critical | feature | null share <= `max_null_rate` | after warm-up |
| `plausible_range` | critical | feature | share `range_mostly` within [q5 - k s, q95 + k s], k = `range_k` | sample |
| `mean` | critical | feature | mean within [q5 - k s, q95 + k s], k = `mean_k` | sample |
| `stdev` | critical | feature | stdev <= `stdev_k` s (no wild values) | sample |
| `not_constant` | warning | feature | stdev > 0 | sample |

q5, q95 are the column's 5% and 95% quantiles and s = q95 - q5 its spread (see `robust_stats` for
sparse and constant columns), computed on its finite values: bounds scale with each feature's own
distribution, heavy tails included, and only absurd values (a unit error, a division by ~0) fail.
Calibrated on the dbt marts of the default synthetic market: the most extreme 0.1% of any column
lies within 8.2 s of [q5, q95] (k = 25), stdev <= 0.97 s (k = 5). Being relative to the column's
own quantiles, these rules cannot see garbage in more than ~5% of a column's rows. "After warm-up"
leaves out each symbol's first `warmup_rows` rows (rolling windows fill up; at most half of a symbol's
rows). "sample" is all rows up to `sample_rows` (above the default market's size), a seeded random
sample beyond. Freshness, null rates, keys and infinities are always checked on full data.

GX objects: an ephemeral context with progress bars off, one `add_pandas` datasource, and per frame
and row set ("all_rows", "after_warmup", and "sample" when sampling) a dataframe asset, a batch
definition, a suite, a ValidationDefinition and a Checkpoint (a Checkpoint hands the same dataframe to
all its validation definitions, hence one per row set). Each result becomes a row of the summary
(`RESULT_COLUMNS`), appended to `quality.gx_results` in the warehouse in one transaction. A failed
critical expectation raises `DataQualityError` with a readable report; failed warnings are logged and
recorded only.
"""

from __future__ import annotations

import os

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported (lazily, below)

import json
import logging
import math
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ml.contract import FEATURE_VIEWS
from ml.paths import DataPaths

LABELS = "labels"
KEYS = ("symbol", "date")
RESULTS_TABLE = "quality.gx_results"
RESULT_COLUMNS = (
    "run_id",
    "run_at",
    "view",
    "rule",
    "severity",
    "expectation",
    "column_name",
    "success",
    "observed_value",
    "details",
)
CRITICAL, WARNING = "critical", "warning"
RULE_SEVERITY = {
    "schema": CRITICAL,
    "keys_not_null": CRITICAL,
    "unique_keys": CRITICAL,
    "freshness": CRITICAL,
    "numeric": CRITICAL,
    "finite": CRITICAL,
    "null_rate": CRITICAL,
    "plausible_range": CRITICAL,
    "mean": CRITICAL,
    "stdev": CRITICAL,
    "not_constant": WARNING,
}
_FLOAT_MAX = float(np.finfo(np.float64).max)


class DataQualityError(RuntimeError):
    """A quality suite failed; `results` holds every expectation's outcome, `report` the failures."""

    def __init__(self, report: str, results: pd.DataFrame | None = None):
        super().__init__(report)
        self.report = report
        self.results = results


@dataclass(frozen=True)
class QualityConfig:
    warmup_rows: int = 260  # per symbol, excluded from null-rate checks (12-1 momentum needs ~252 days)
    max_null_rate: float = 0.25
    null_rate_by_view: dict[str, float] = field(default_factory=dict)
    range_k: float = 100.0  # a gross-garbage (unit error) check: real ratios are heavy-tailed
    range_mostly: float = 0.999
    mean_k: float = 1.0
    stdev_k: float = 5.0
    label_lag_days: int = 45  # calendar days the labels' last date may trail the last price date
    sample_rows: int = 300_000
    seed: int = 0

    def null_rate(self, view: str) -> float:
        return self.null_rate_by_view.get(view, self.max_null_rate)


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
    """The feature marts present (in FEATURE_VIEWS order) plus labels, as pandas frames."""
    import pyarrow.parquet as pq

    frames = {}
    for name in (*FEATURE_VIEWS, LABELS):
        path = paths.features / f"{name}.parquet"
        if path.exists():
            frames[name] = pq.read_table(path).to_pandas()
    return frames


# ------------------------------------------------------------------------------------------- rules
def robust_stats(values: pd.Series) -> dict[str, float] | None:
    """Central range [q_lo, q_hi] and spread of the finite values (None when there are none).

    Normally q_lo, q_hi are the 5% and 95% quantiles and spread = q_hi - q_lo. A sparse column (over
    90% one value, e.g. zero) takes them from its other values (widened to include the common one);
    a constant column gets spread max(|value|, 1), so that the bounds stay meaningful.
    """
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    q_lo, median, q_hi = (float(v) for v in np.quantile(x, [0.05, 0.5, 0.95]))
    kind = "q95-q5"
    if q_hi - q_lo <= 0:
        others = x[x != median]
        if others.size:
            lo, hi = np.quantile(others, [0.05, 0.95])
            q_lo, q_hi, kind = min(float(lo), median), max(float(hi), median), "sparse"
    spread = q_hi - q_lo
    if spread <= 0:
        spread, kind = max(abs(median), 1.0), "constant"
    return {"q_lo": q_lo, "median": median, "q_hi": q_hi, "spread": spread, "spread_kind": kind}


@dataclass
class _Batch:
    """One row set of one frame and the expectations that run on it (one GX Checkpoint)."""

    name: str
    frame: pd.DataFrame
    expectations: list[tuple[str, Any]]


def _feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in KEYS]


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame GX sees: datetime `date`, numeric features as float64 (GX's fast path)."""
    df = frame.reset_index(drop=True)
    df["date"] = pd.to_datetime(df["date"])
    for col in _feature_columns(df):
        dtype = df[col].dtype
        if pd.api.types.is_numeric_dtype(dtype) and dtype != np.float64:
            df[col] = df[col].astype("float64")
    return df


def _after_warmup(df: pd.DataFrame, warmup_rows: int) -> pd.DataFrame:
    """Rows past each symbol's warm-up, with each column's own leading nulls forgiven.

    A rolling feature is null until its window fills (a 12-1 residual momentum on a 126-day beta needs
    ~380 rows), so null rates count only the gaps after a symbol's first value of that column. A
    column that never has a value for a symbol keeps its nulls (an all-null column still fails).
    """
    df = df.sort_values(["symbol", "date"], kind="stable")
    by_symbol = df.groupby("symbol", sort=False)
    keep = by_symbol.cumcount() >= np.minimum(warmup_rows, by_symbol["date"].transform("size") // 2)
    features = [c for c in df.columns if c not in ("symbol", "date")]
    present = df[features].notna()
    started = present.groupby(df["symbol"], sort=False).cumsum() > 0
    ever = present.groupby(df["symbol"], sort=False).transform("any")
    leading = (~started) & ever
    out = df[features].mask(leading, 0.0)
    out.insert(0, "date", df["date"])
    out.insert(0, "symbol", df["symbol"])
    return out.loc[keep].sort_index()


def plan_batches(view: str, frame: pd.DataFrame, latest: date | None, config: QualityConfig) -> list[_Batch]:
    """The row sets of one frame and their (rule, GX expectation) pairs."""
    import great_expectations as gx

    E = gx.expectations
    df = _prepare(frame)
    features = _feature_columns(df)
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(df[c])]
    full: list[tuple[str, Any]] = [
        ("keys_not_null", E.ExpectColumnValuesToNotBeNull(column="symbol")),
        ("keys_not_null", E.ExpectColumnValuesToNotBeNull(column="date")),
        ("unique_keys", E.ExpectCompoundColumnsToBeUnique(column_list=list(KEYS))),
    ]
    if latest is not None:
        newest = datetime.combine(latest, datetime.min.time())
        oldest = newest - timedelta(days=config.label_lag_days) if view == LABELS else newest
        full.append(
            ("freshness", E.ExpectColumnMaxToBeBetween(column="date", min_value=oldest, max_value=newest))
        )
    for col in features:
        full.append(("numeric", E.ExpectColumnValuesToBeInTypeList(column=col, type_list=["float64"])))
    for col in numeric:
        full.append(
            (
                "finite",
                E.ExpectColumnValuesToBeBetween(column=col, min_value=-_FLOAT_MAX, max_value=_FLOAT_MAX),
            )
        )
    warm = [
        ("null_rate", E.ExpectColumnValuesToNotBeNull(column=col, mostly=1.0 - config.null_rate(view)))
        for col in numeric
    ]
    sample = (
        df if len(df) <= config.sample_rows else df.sample(n=config.sample_rows, random_state=config.seed)
    )
    dist: list[tuple[str, Any]] = []
    for col in numeric:
        stats = robust_stats(df[col])
        if stats is None:  # all null: the null-rate rule says so
            continue
        lo, hi, s = stats["q_lo"], stats["q_hi"], stats["spread"]
        dist += [
            (
                "plausible_range",
                E.ExpectColumnValuesToBeBetween(
                    column=col,
                    min_value=lo - config.range_k * s,
                    max_value=hi + config.range_k * s,
                    mostly=config.range_mostly,
                ),
            ),
            (
                "mean",
                E.ExpectColumnMeanToBeBetween(
                    column=col, min_value=lo - config.mean_k * s, max_value=hi + config.mean_k * s
                ),
            ),
            ("stdev", E.ExpectColumnStdevToBeBetween(column=col, max_value=config.stdev_k * s)),
            ("not_constant", E.ExpectColumnStdevToBeBetween(column=col, min_value=0.0, strict_min=True)),
        ]
    if sample is df:
        batches = [_Batch("all_rows", df, full + dist)]
    else:
        batches = [_Batch("all_rows", df, full), _Batch("sample", sample, dist)]
    return [*batches, _Batch("after_warmup", _after_warmup(df, config.warmup_rows), warm)]


# ------------------------------------------------------------------------------------------ run GX
def _gx_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def validate_frames(
    frames: dict[str, pd.DataFrame],
    latest: date | None,
    config: QualityConfig | None = None,
    run_id: str | None = None,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run the GX Checkpoints of every frame; return the summary (`RESULT_COLUMNS`), a row per expectation."""
    import great_expectations as gx
    from great_expectations.expectations.metadata_types import FailureSeverity

    config = config or QualityConfig()
    log = log or (lambda _m: None)
    run_id = run_id or new_run_id()
    run_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    context = _gx_context()
    source = context.data_sources.add_pandas("aurora_marts")
    rows: list[dict[str, Any]] = []
    for view, frame in frames.items():
        t0 = time.perf_counter()
        missing = [c for c in KEYS if c not in frame.columns]
        if missing:
            rows.append(
                _row(
                    run_id,
                    run_at,
                    view,
                    "schema",
                    "expect_column_to_exist",
                    ",".join(missing),
                    False,
                    f"missing key column(s) {missing}",
                    {"columns": list(frame.columns)},
                )
            )
            continue
        n_expectations = n_failed = 0
        for batch in plan_batches(view, frame, latest, config):
            if not batch.expectations:
                continue
            name = f"aurora_{view}_{batch.name}"
            for rule, expectation in batch.expectations:
                expectation.meta = {"rule": rule}
                expectation.severity = FailureSeverity(RULE_SEVERITY[rule])
            # the whole suite at once: suite.add_expectation re-serializes the suite on every call
            suite = context.suites.add(
                gx.ExpectationSuite(name=name, expectations=[e for _, e in batch.expectations])
            )
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=name,
                    data=source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(
                        batch.name
                    ),
                    suite=suite,
                )
            )
            checkpoint = context.checkpoints.add(
                gx.Checkpoint(
                    name=name,
                    validation_definitions=[definition],
                    result_format={"result_format": "BASIC", "partial_unexpected_count": 5},
                )
            )
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = checkpoint.run(batch_parameters={"dataframe": batch.frame})
            for suite_result in result.run_results.values():
                for r in suite_result.results:
                    cfg = r.expectation_config
                    rule = (cfg.meta or {}).get("rule", "?")
                    column = cfg.kwargs.get("column") or ",".join(cfg.kwargs.get("column_list") or [])
                    observed, details = _describe(r, cfg)
                    details["rows"] = f"{batch.name} ({len(batch.frame)})"
                    n_expectations += 1
                    n_failed += not r.success
                    rows.append(
                        _row(run_id, run_at, view, rule, cfg.type, column, bool(r.success), observed, details)
                    )
        log(
            f"quality {view}: {n_expectations} expectations on {len(frame)} rows, "
            f"{n_failed} failed ({time.perf_counter() - t0:.1f}s)"
        )
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _row(run_id, run_at, view, rule, expectation, column, success, observed, details) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "run_at": run_at,
        "view": view,
        "rule": rule,
        "severity": RULE_SEVERITY.get(rule, CRITICAL),
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
    head = "data quality failed" if severity == CRITICAL else "data quality warnings"
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


def write_results(paths: DataPaths, results: pd.DataFrame) -> None:
    """Append the results to `quality.gx_results` in the warehouse, in one transaction."""
    import duckdb

    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    frame = results[list(RESULT_COLUMNS)].copy()
    frame["run_at"] = pd.to_datetime(frame["run_at"])
    frame["success"] = frame["success"].astype(bool)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("begin transaction")
        try:
            con.execute("create schema if not exists quality")
            con.execute(
                f"""create table if not exists {RESULTS_TABLE} (
                    run_id varchar, run_at timestamp, "view" varchar, rule varchar, severity varchar,
                    expectation varchar, column_name varchar, success boolean, observed_value varchar,
                    details varchar)"""
            )
            have = {
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'quality' and table_name = 'gx_results'"
                ).fetchall()
            }
            for col in [c for c in RESULT_COLUMNS if c not in have]:  # a table from an older version
                con.execute(f'alter table {RESULTS_TABLE} add column "{col}" varchar')
            con.register("gx_results_new", frame)
            con.execute(f"insert into {RESULTS_TABLE} by name select * from gx_results_new")
            con.unregister("gx_results_new")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise


def new_run_id() -> str:
    return f"gx-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def check_features(
    paths: DataPaths,
    frames: dict[str, pd.DataFrame] | None = None,
    latest: date | None = None,
    config: QualityConfig | None = None,
    run_id: str | None = None,
    log: Callable[[str], None] | None = print,
    raise_on_failure: bool = True,
) -> pd.DataFrame:
    """Validate the feature and label marts, record the results in the warehouse, stop on failure.

    `frames` default to the marts in `paths.features`; `latest` to the last raw price date (when there
    are no raw prices, to the newest date among the frames, logged). Raises `DataQualityError` (after
    the results are written) when a critical expectation fails and `raise_on_failure`; failed
    warnings are logged.
    """
    log = log or (lambda _m: None)
    t0 = time.perf_counter()
    frames = load_marts(paths) if frames is None else frames
    if not frames:
        raise DataQualityError(f"data quality: no feature marts found in {paths.features}")
    if latest is None:
        latest = latest_price_date(paths)
        if latest is None:
            latest = max(pd.to_datetime(f["date"]).max() for f in frames.values() if "date" in f).date()
            log(
                f"quality: no raw prices in {paths.raw}; freshness measured against the newest mart date {latest}"
            )
    results = validate_frames(frames, latest, config, run_id, log)
    write_results(paths, results)
    failed = results[~results["success"]]
    n_critical = int((failed["severity"] == CRITICAL).sum())
    log(
        f"quality: {len(results)} expectations on {len(frames)} frames, {n_critical} critical and "
        f"{len(failed) - n_critical} warning failures, run {results['run_id'].iloc[0]} "
        f"({time.perf_counter() - t0:.1f}s)"
    )
    if len(failed) > n_critical:
        log(render_failures(results, WARNING))
    if n_critical and raise_on_failure:
        raise DataQualityError(render_failures(results, CRITICAL), results)
    return results
