"""The monitoring stage: reads predictions and labels, runs the lifecycle, drift and regimes, writes
`ml.model_ic_daily`, `ml.model_metrics_monthly`, `ml.model_status_daily`, `ml.model_cusum`, `ml.lifecycle_events`,
`ml.model_lineage`, `ml.feature_drift` and `ml.regimes` and the lifecycle's rows of `ml.model_events`
in one transaction, then moves registry statuses with `ml.registry.transition`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from ml.data.predictions import read_score_panel, table_exists
from ml.metrics import daily_rank_ic
from ml.monitoring.config import LifecycleError, load_config
from ml.monitoring.contribution import ContributionStats, contribution_stats
from ml.monitoring.drift import feature_drift
from ml.monitoring.ic import long_ic
from ml.monitoring.lifecycle import LifecycleResult, merge_results, run_lifecycle
from ml.monitoring.regimes import detect_regimes, market_returns
from ml.paths import DataPaths
from ml.tables import write_tables

Log = Callable[[str], None]
SCHEMA = "ml"
REGISTRY_STATUS = {"candidate": "candidate", "active": "active", "promoted": "active", "retired": "retired"}
EVENT_PREFIX = "[lifecycle] "
# the tables the stage writes (schema `ml`), with their column types
TABLE_SCHEMAS: dict[str, dict[str, str]] = {
    "model_ic_daily": {"model_id": "varchar", "date": "date", "label": "varchar", "ic": "double"},
    "model_metrics_monthly": {
        "model_id": "varchar", "month": "date", "month_end": "date", "known_at": "date", "ic": "double",
        "ic_sd": "double", "n_days": "integer", "hit_rate": "double", "valid": "boolean", "negative_run": "integer",
        "trailing_ic": "double", "trailing_icir": "double", "status": "varchar", "multiplier": "double"},
    "model_status_daily": {"date": "date", "model_id": "varchar", "generation": "integer", "status": "varchar",
                           "multiplier": "double"},
    "model_cusum": {
        "model_id": "varchar", "generation": "integer", "block_end": "date", "known_at": "date", "block_ic": "double",
        "z": "double", "cusum": "double", "threshold": "double", "k": "double", "reference_ic": "double",
        "reference_sd": "double", "alarm": "boolean"},
    "lifecycle_events": {
        "event_seq": "integer", "date": "date", "model_id": "varchar", "generation": "integer", "event": "varchar",
        "from_status": "varchar", "to_status": "varchar", "rule": "varchar", "reason": "varchar",
        "monthly_ic": "double", "trailing_icir": "double", "cusum": "double", "cusum_threshold": "double",
        "reference_ic": "double", "negative_months": "integer", "metrics": "varchar"},
    "model_lineage": {
        "model_id": "varchar", "generation": "integer", "lineage_id": "varchar", "parent_id": "varchar",
        "born_at": "date", "activated_at": "date", "retired_at": "date", "status": "varchar", "rule": "varchar",
        "reason": "varchar"},
    "feature_drift": {
        "view": "varchar", "feature": "varchar", "month": "date", "psi": "double", "null_share": "double",
        "n_rows": "integer", "level": "varchar", "reference_start": "date", "reference_end": "date"},
    "regimes": {
        "date": "date", "market_ret": "double", "market_vol": "double", "vol_enter": "double", "vol_exit": "double",
        "regime": "varchar", "dispersion": "double", "dispersion_z": "double", "dispersion_regime": "varchar",
        "source": "varchar"},
}
TABLES = tuple(TABLE_SCHEMAS)


def _sql_path(path: Path) -> str:
    return "read_parquet('" + str(path).replace("'", "''") + "')"


@dataclass
class LabelGroup:
    """The models trained on one label, judged on that label: a 1-day model by 1-day returns known two
    days later, a 21-day model by 21-day returns known 22 days later (each horizon has its own ensemble,
    ml/horizon_signals.py). `daily`: their IC on it; `detector`: on the change-point label."""

    label: str
    horizon: int
    models: list[str]
    daily: pd.DataFrame
    detector: pd.DataFrame | None
    contribution: ContributionStats | None


@dataclass
class MonitorInputs:
    """What the lifecycle reads from the warehouse: daily ICs per label group (the primary label first),
    the trading calendar, each model's first date, view and refit cadence."""

    groups: list[LabelGroup]
    calendar: pd.DatetimeIndex
    first: dict[str, Any]
    views: dict[str, str]
    cadences: dict[str, str]


def _label_frame(path: Path, columns: list[str]) -> pd.DataFrame:
    """labels.parquet read once: the label columns indexed by (date, symbol), sorted."""
    frame = pd.read_parquet(path, columns=["date", "symbol", *dict.fromkeys(columns)])
    index = pd.MultiIndex.from_arrays([pd.to_datetime(frame["date"]), frame["symbol"].astype(str)],
                                      names=["date", "symbol"])
    return frame.drop(columns=["date", "symbol"]).set_axis(index).astype("float64").sort_index()


def label_groups(models, targets: Mapping[str, tuple[str, int]], cfg: Mapping,
                 available: set[str] | None = None) -> dict[tuple[str, int], list[str]]:
    """{(label, horizon): models}, the lifecycle's label first. A model's label is the one the registry
    says it was trained on (`targets`); without one, or when labels.parquet lacks it (`available`), the
    lifecycle's configured label."""
    primary = (str(cfg["label"]), int(cfg["horizon"]))
    out: dict[tuple[str, int], list[str]] = {primary: []}
    for m in models:
        key = targets.get(str(m), primary)
        if available is not None and key[0] not in available:
            key = primary
        out.setdefault(key, []).append(str(m))
    return {k: v for k, v in out.items() if v} or {primary: []}


def compute_ics(paths: DataPaths, cfg: Mapping, log: Log = print) -> MonitorInputs:
    """Every model's daily rank IC (the project's one definition, `ml.metrics.daily_rank_ic`) on the
    label it was trained on and on the detector label, from `ml.predictions` read as one score panel."""
    labels = paths.features / "labels.parquet"
    if not labels.exists():
        raise LifecycleError(f"no labels at {labels}: build the features first")
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        if not table_exists(con, "predictions"):
            raise LifecycleError(f"no {SCHEMA}.predictions in {paths.warehouse}: train the zoo first")
        panel = read_score_panel(con)
        first = dict(con.execute(f"select model_id, min(date) from {SCHEMA}.predictions group by 1").fetchall())
        views, cadences, targets = {}, {}, {}
        if table_exists(con, "model_registry"):
            for m, v, c, lab, h in con.execute(
                    f"select model_id, view, json_extract_string(cv, '$.cadence'), json_extract_string(target, "
                    f"'$.label'), json_extract_string(target, '$.horizon') from {SCHEMA}.model_registry").fetchall():
                if v is not None:
                    views[str(m)] = str(v)
                if c:
                    cadences[str(m)] = str(c)
                if lab and h:
                    targets[str(m)] = (str(lab), int(h))
    finally:
        con.close()
    groups = label_groups(panel.columns, targets, cfg, set(pq.read_schema(labels).names))
    det_label = cfg["changepoint"]["label"]
    frame = _label_frame(labels, [*(lab for lab, _ in groups), det_label])
    out = []
    for (lab, h), models in groups.items():
        y = frame[lab].dropna()
        sub = panel[models] if models else panel
        daily = long_ic(daily_rank_ic(sub, y, cfg["min_names"]))
        # the change-point detector reads every group on its configured label (and that label's known lag);
        # None: the group's own IC, when the two labels are the same
        det = None if det_label == lab else long_ic(daily_rank_ic(sub, frame[det_label].dropna(), cfg["min_names"]))
        stats = (contribution_stats(sub, y, cfg["min_names"])
                 if cfg["promotion"]["method"] == "contribution" and models else None)
        out.append(LabelGroup(lab, h, models, daily, det, stats))
    dates = frame.index.get_level_values("date").unique().union(panel.index.get_level_values("date").unique())
    calendar = pd.DatetimeIndex(dates).sort_values()
    return MonitorInputs(out, calendar, first, views, cadences)


def daily_ics(inputs: MonitorInputs) -> pd.DataFrame:
    """Every model's daily rank IC on its own label (model_id, date, label, ic): what the lifecycle
    judged, stored so the monitoring marts aggregate it instead of ranking the predictions again."""
    frames = [g.daily.assign(label=g.label) for g in inputs.groups if len(g.daily)]
    if not frames:
        return pd.DataFrame({"model_id": pd.Series(dtype=str), "date": pd.Series(dtype="datetime64[ns]"),
                             "label": pd.Series(dtype=str), "ic": pd.Series(dtype=float)})
    return pd.concat(frames, ignore_index=True)[["model_id", "date", "label", "ic"]]


def group_config(cfg: Mapping, group: LabelGroup) -> dict[str, Any]:
    """The lifecycle configuration for one label group: its label and horizon, and a known lag of its
    horizon plus the same extra delay the configuration gives the primary label."""
    extra = int(cfg["known_lag"]) - int(cfg["horizon"]) - 1
    if group.label == cfg["label"] and group.horizon == int(cfg["horizon"]):
        return dict(cfg)
    return {**cfg, "label": group.label, "horizon": group.horizon, "known_lag": group.horizon + 1 + max(extra, 0)}


def run_lifecycle_groups(inputs: MonitorInputs, cfg: Mapping) -> LifecycleResult:
    """`run_lifecycle` once per label group (each with its own label, known lag, live-model floor and
    contribution to its own ensemble), merged into one result."""
    results = []
    for g in inputs.groups:
        results.append(run_lifecycle(g.daily, inputs.calendar, group_config(cfg, g), detector_daily=g.detector,
                                     first_dates={m: inputs.first[m] for m in g.models if m in inputs.first},
                                     views=inputs.views, contribution=g.contribution, cadences=inputs.cadences))
    return merge_results(results)


def drift_tables(paths: DataPaths, cfg: Mapping, log: Log = print) -> pd.DataFrame:
    """`feature_drift` over every view parquet under features/ (labels excluded)."""
    views = cfg["drift"]["views"]
    files = sorted(p for p in paths.features.glob("*.parquet") if p.stem != "labels")
    frames = []
    for f in files:
        if views and f.stem not in views:
            continue
        frames.append(feature_drift(pd.read_parquet(f), f.stem, cfg))
    return pd.concat(frames, ignore_index=True) if frames else feature_drift(pd.DataFrame(), "", cfg)


REGIME_COLUMNS = {"date": "datetime64[ns]", "market_ret": float, "market_vol": float, "vol_enter": float,
                  "vol_exit": float, "regime": object, "dispersion": float, "dispersion_z": float,
                  "dispersion_regime": object, "source": object}


def regime_table(paths: DataPaths, cfg: Mapping) -> pd.DataFrame:
    """`detect_regimes` on the raw prices (and the market ETF when etf_prices has it)."""
    prices_path = paths.raw_table("prices")
    if not prices_path.exists():
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in REGIME_COLUMNS.items()})
    prices = pd.read_parquet(prices_path, columns=["date", "symbol", "close"])
    etf_path = paths.raw_table("etf_prices")
    etf = pd.read_parquet(etf_path, columns=["date", "etf", "close"]) if etf_path.exists() else None
    from ml.contract import MARKET_ETF

    market = market_returns(prices, etf, MARKET_ETF)
    out = detect_regimes(market, cfg)
    out["source"] = market["source"].iloc[0] if len(market) else None
    return out


def _dated(frame: pd.DataFrame, *cols: str) -> pd.DataFrame:
    out = frame.copy()
    for c in cols:
        if c in out:
            out[c] = pd.to_datetime(out[c]).dt.date
    return out


def model_event_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The lifecycle events in the registry's `ml.model_events` layout (event_at, model_id,
    from_status, to_status, reason), reasons prefixed `[lifecycle] ` and carrying the metrics."""
    if events.empty:
        return pd.DataFrame({"event_at": pd.Series(dtype="datetime64[us]"), "model_id": pd.Series(dtype=str),
                             "from_status": pd.Series(dtype=str), "to_status": pd.Series(dtype=str),
                             "reason": pd.Series(dtype=str)})
    reasons = [f"{EVENT_PREFIX}{e}: {r} | metrics {m}" for e, r, m in
               zip(events["event"], events["reason"], events["metrics"], strict=True)]
    return pd.DataFrame({"event_at": pd.to_datetime(events["date"]).astype("datetime64[us]"),
                         "model_id": events["model_id"].astype(str), "from_status": events["from_status"].astype(str),
                         "to_status": events["to_status"].astype(str), "reason": reasons})


def write_monitor_tables(paths: DataPaths, tables: Mapping[str, pd.DataFrame], events: pd.DataFrame) -> None:
    """Replace `ml.<name>` for each frame and the lifecycle's rows of `ml.model_events` in one
    transaction: on any failure every previous table is left as it was."""
    rows = model_event_rows(events)

    def lifecycle_events(con) -> None:
        # the registry's layout (ml/models/registry_store.py DDL); created here only when the registry never ran
        con.execute(f"""create table if not exists {SCHEMA}.model_events (
            event_at timestamp not null, model_id varchar not null, from_status varchar,
            to_status varchar not null, reason varchar)""")
        con.register("_incoming_model_events", rows)
        con.execute(f"delete from {SCHEMA}.model_events where starts_with(reason, ?)", [EVENT_PREFIX])
        con.execute(f"insert into {SCHEMA}.model_events (event_at, model_id, from_status, to_status, reason) "
                    "select event_at, model_id, from_status, to_status, reason from _incoming_model_events")

    write_tables(paths, tables, schemas=TABLE_SCHEMAS, also=lifecycle_events)


def sync_registry(paths: DataPaths, final: Mapping[str, str], events: pd.DataFrame, log: Log = print) -> dict[str, int]:
    """Move registry statuses to the lifecycle's final ones with `ml.registry.transition` (only the
    moves the registry allows: candidate -> active | retired, active -> retired); others are logged."""
    from ml import registry

    reg = registry.list_models(paths)
    if reg.empty:
        log("[lifecycle] no model registry: statuses kept in ml.model_status_daily only")
        return {"moved": 0, "kept": 0}
    current = dict(zip(reg["model_id"].astype(str), reg["status"].astype(str), strict=True))
    last_reason = {}
    for _, e in events.iterrows():
        # not EVENT_PREFIX: these registry rows stay when the stage rewrites its own rows
        last_reason[e["model_id"]] = f"lifecycle {e['event']} on {pd.Timestamp(e['date']).date()}: {e['reason']}"
    moved = kept = 0
    kept_ids: list[str] = []
    for m, status in sorted(final.items()):
        if m not in current:
            continue
        want = REGISTRY_STATUS[status]
        have = current[m]
        if want == have:
            continue
        path = {("candidate", "active"): ["active"], ("candidate", "retired"): ["retired"],
                ("active", "retired"): ["retired"]}.get((have, want))
        if path is None:
            kept_ids.append(f"{m} ({have} -> {status})")
            kept += 1
            continue
        for to in path:
            registry.transition(paths, m, to, last_reason.get(m, f"lifecycle {status}"))
        moved += 1
    if kept_ids:
        log(f"[lifecycle] registry kept for {kept} model(s) whose registry status cannot move to the lifecycle's "
            f"(a retired registry row stays retired; ml.model_lineage has the generations): "
            f"{', '.join(kept_ids[:5])}{' ...' if kept > 5 else ''}")
    return {"moved": moved, "kept": kept}


def run_monitor_stage(paths: DataPaths, config: str | Path | Mapping | None = None, log: Log = print,
                      ) -> dict[str, Any]:
    """Monitoring stage: lifecycle from `ml.predictions` + labels, feature drift, regimes; writes the
    monitoring tables atomically, updates registry statuses, returns report keys."""
    started = time.perf_counter()
    cfg = load_config(config)
    if not paths.warehouse.exists():
        log(f"[lifecycle] skipped: no warehouse at {paths.warehouse}")
        return {"n_models_active": None, "n_models_retired": None, "monitor_skipped": "no warehouse"}
    try:
        inputs = compute_ics(paths, cfg, log)
    except LifecycleError as exc:
        log(f"[lifecycle] skipped: {exc}")
        return {"n_models_active": None, "n_models_retired": None, "monitor_skipped": str(exc)}
    t_ic = time.perf_counter() - started
    daily = daily_ics(inputs)  # what the lifecycle judges, and ml.model_ic_daily
    on = ", ".join(f"{len(g.models)} on {g.label}" for g in inputs.groups if g.models)
    log(f"[lifecycle] daily IC of {daily['model_id'].nunique()} models over {daily['date'].nunique()} dates "
        f"({on or cfg['label']}) and their contributions to their ensembles in {t_ic:.1f}s")
    res = run_lifecycle_groups(inputs, cfg)
    drift = drift_tables(paths, cfg, log)
    regimes = regime_table(paths, cfg)
    tables = {
        "model_ic_daily": _dated(daily, "date"),
        "model_metrics_monthly": _dated(res.monthly, "month", "month_end", "known_at"),
        "model_status_daily": _dated(res.status_daily, "date"),
        "model_cusum": _dated(res.cusum, "block_end", "known_at"),
        "lifecycle_events": _dated(res.events, "date"),
        "model_lineage": _dated(res.lineage, "born_at", "activated_at", "retired_at"),
        "feature_drift": _dated(drift, "month", "reference_start", "reference_end"),
        "regimes": _dated(regimes, "date"),
    }
    write_monitor_tables(paths, tables, res.events)
    sync = sync_registry(paths, res.final, res.events, log)
    counts = pd.Series(res.final).value_counts().to_dict() if res.final else {}
    n_active = int(counts.get("active", 0) + counts.get("promoted", 0))
    latest = regimes.iloc[-1] if len(regimes) else None
    last_drift = drift[drift["month"] == drift["month"].max()] if len(drift) else drift
    report = {
        "n_models_active": n_active,
        "n_models_retired": int(counts.get("retired", 0)),
        "n_models_promoted": int(counts.get("promoted", 0)),
        "n_models_candidate": int(counts.get("candidate", 0)),
        "n_models_requalified": int((res.events["event"] == "requalified").sum()),
        "n_retirements": int((res.events["event"] == "retired").sum()),
        "share_models_live": n_active / max(len(res.final), 1),
        "retirements_by_rule": res.events.loc[res.events["event"] == "retired", "rule"].value_counts().to_dict(),
        "lifecycle_events": int(len(res.events)),
        "registry_moves": sync["moved"],
        "drift_significant_features": int((last_drift["level"] == "significant").sum()) if len(last_drift) else 0,
        "regime_latest": None if latest is None else str(latest["regime"]),
        "monitor_stage_s": time.perf_counter() - started,
    }
    log(f"[lifecycle] {n_active} active ({report['n_models_promoted']} promoted), {report['n_models_retired']} "
        f"retired, {report['n_models_candidate']} candidates; {len(res.events)} events; drift: "
        f"{report['drift_significant_features']} significant features last month; regime "
        f"{report['regime_latest']}; {report['monitor_stage_s']:.1f}s")
    return report


def read_weights_asof(paths: DataPaths, date) -> dict[str, float]:
    """`weights_asof` from the stored `ml.model_status_daily` (empty when the stage never ran)."""
    if not paths.warehouse.exists():
        return {}
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        if not table_exists(con, "model_status_daily"):
            return {}
        frame = con.execute(
            f"""select model_id, status, multiplier from {SCHEMA}.model_status_daily
                where date = (select max(date) from {SCHEMA}.model_status_daily where date <= ?)""",
            [pd.Timestamp(date).date()]).df()
    finally:
        con.close()
    frame = frame[frame["multiplier"] > 0]
    return dict(zip(frame["model_id"].astype(str), frame["multiplier"].astype(float), strict=True))
