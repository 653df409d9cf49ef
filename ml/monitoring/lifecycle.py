"""The walk-forward lifecycle loop: applies the rules of `ml.monitoring.rules` date by date.

Everything is decided walk-forward: the state at date t uses only out-of-sample ICs whose labels were
realized by t. The IC of a score dated s is known at the close of s+h; as in the ensemble, a decision
in force at t uses dates s <= t - `known_lag` (default h + 1 trading days).

Statuses: candidate -> active <-> promoted, and any of them -> retired. A retired model stays retired;
its (family, view) spec is suspended, and the spec's successor (the next generation), born at the
first refit whose training data include the days after the retirement, re-enters as a candidate and
must re-qualify on its own fresh out-of-sample evidence. `ml.model_lineage` keeps every generation.

With `peers` on, the change point watches each model's IC minus its peers' on the same dates and the
negative edge needs both (`ml.monitoring.peers`): a lull the whole zoo shares retires no one.

Order each day: successors born today, change-point alarms known today, view decay; then, at a
monthly review (a month's IC known), negative edge, activation, re-qualification, deferred
retirements and promotion. A retirement that would leave fewer than `retirement.min_active` live
models is deferred until others are live, so the ensemble always has something to trade.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.cv import period_codes
from ml.monitoring.changepoint import CUSUM_COLUMNS, cusum_frame
from ml.monitoring.config import load_config
from ml.monitoring.contribution import ContributionStats
from ml.monitoring.ic import known_dates, monthly_ic
from ml.monitoring.peers import peer_relative
from ml.monitoring.rules import (
    LIVE,
    Activation,
    ChangePoint,
    Decision,
    Evidence,
    Generation,
    NegativeEdge,
    Promotion,
    State,
    ViewDecay,
)

STATUSES = ("candidate", "active", "promoted", "retired")
EVENT_COLUMNS = ["event_seq", "date", "model_id", "generation", "event", "from_status", "to_status", "rule", "reason",
                 "monthly_ic", "trailing_icir", "cusum", "cusum_threshold", "reference_ic", "negative_months",
                 "metrics"]
EVENT_FLOATS = ("monthly_ic", "trailing_icir", "cusum", "cusum_threshold", "reference_ic")
LINEAGE_COLUMNS = ["model_id", "generation", "lineage_id", "parent_id", "born_at", "activated_at", "retired_at",
                   "status", "rule", "reason"]


@dataclass
class LifecycleResult:
    """What the walk-forward lifecycle decided: events, statuses over time, lineage and the evidence."""

    events: pd.DataFrame          # event_seq, date, model_id, generation, event, from/to status, rule, reason...
    status_daily: pd.DataFrame    # date, model_id, generation, status, multiplier
    monthly: pd.DataFrame         # monthly_ic() plus status and multiplier in force at known_at
    cusum: pd.DataFrame           # the detector's path of every generation
    final: dict[str, str]         # model_id -> status of its current generation at the last date
    lineage: pd.DataFrame | None = None

    def weights_asof(self, date) -> dict[str, float]:
        return weights_asof(self.status_daily, date)


def model_view(model_id: str) -> str | None:
    """The feature view in a zoo model id (`<family>-<view>-<digest>`), else None."""
    parts = str(model_id).split("-")
    return parts[1] if len(parts) == 3 else None


def _round(x: Any, nd: int = 4) -> Any:
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), nd)


def successor_birth(calendar: pd.DatetimeIndex, retired_at: pd.Timestamp, cadence: str, purge_days: int) -> pd.Timestamp | None:
    """The first refit date (first trading day of a `cadence` period) at least `purge_days` trading
    days after the retirement: the first fit whose training labels include days after it."""
    earliest = int(calendar.searchsorted(retired_at)) + int(purge_days)
    periods = period_codes(calendar, cadence)
    starts = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
    after = starts[starts >= earliest]
    return pd.Timestamp(calendar[after[0]]) if len(after) else None


def run_lifecycle(daily: pd.DataFrame, calendar: pd.DatetimeIndex, config: Mapping | None = None,
                  detector_daily: pd.DataFrame | None = None, first_dates: Mapping[str, Any] | None = None,
                  views: Mapping[str, str] | None = None, contribution: ContributionStats | None = None,
                  cadences: Mapping[str, str] | None = None) -> LifecycleResult:
    """Walk the calendar and decide every model's status from what is known at each date.

    `daily`: per (model_id, date) IC on the models' label; `detector_daily`: the same on the
    change-point label (default `daily`); `first_dates`: each model's first prediction date (default
    its first IC date); `views`: model -> feature view (default parsed from zoo ids); `contribution`:
    the score panel's `contribution_stats` (needed by promotion method `contribution`); `cadences`:
    model -> refit cadence (pandas period alias, default M), which dates a successor's birth."""
    cfg = load_config(config)
    act, ret, prom, cp, req = (cfg["activation"], cfg["retirement"], cfg["promotion"], cfg["changepoint"],
                               cfg["requalification"])
    lag, horizon = int(cfg["known_lag"]), int(cfg["horizon"])
    calendar = pd.DatetimeIndex(calendar).sort_values()
    daily = daily.assign(date=pd.to_datetime(daily["date"])).sort_values(["model_id", "date"])
    models = sorted(set(daily["model_id"]) | set(first_dates or {}))
    mon = cfg["monthly"]
    monthly = monthly_ic(daily, calendar, lag, mon["min_days"], 0.0, mon["window_months"], mon["min_months"])
    det = daily if detector_daily is None else detector_daily.assign(date=pd.to_datetime(detector_daily["date"]))
    views = {m: (views or {}).get(m) or model_view(m) for m in models}
    peers = cfg["peers"]

    def relative(frame: pd.DataFrame) -> pd.DataFrame:
        return peer_relative(frame, int(peers["min_peers"]), views, str(peers["exclude"]))

    relative_daily = relative(daily) if peers["enabled"] else None
    if peers["enabled"]:  # the change point watches each IC against its peers'; negative edge reads both
        det = relative_daily if detector_daily is None else relative(det)
    det_series = {str(m): (g["date"].to_numpy(), g["ic"].to_numpy(dtype=float))
                  for m, g in det.sort_values(["model_id", "date"]).groupby("model_id", sort=False)}
    first = {m: pd.Timestamp((first_dates or {}).get(m) or daily.loc[daily["model_id"] == m, "date"].min())
             for m in models}
    state = State(calendar=calendar, evidence=Evidence(daily, calendar, lag),
                  current={m: Generation(m, 1, first[m]) for m in models},
                  views=views, lag=lag, horizon=horizon, contribution=contribution,
                  relative=None if relative_daily is None else Evidence(relative_daily, calendar, lag))
    lineage: list[Generation] = [state.current[m] for m in models]
    changepoint = ChangePoint()
    cusum_frames: list[pd.DataFrame] = []

    def watch(g: Generation) -> None:
        """Start the change-point detector on a generation's own IC from its birth."""
        if not cp.get("enabled", True) or g.model_id not in det_series:
            return
        dates, ic = det_series[g.model_id]
        keep = dates >= np.datetime64(g.born)
        frame = cusum_frame(g.model_id, dates[keep], ic[keep], calendar, cp)
        if len(frame):
            cusum_frames.append(frame.assign(generation=g.generation))
            changepoint.add(frame, g.generation)

    for m in models:
        watch(state.current[m])
    month_rows = {pd.Timestamp(t): grp for t, grp in monthly[monthly["known_at"].notna()].groupby("known_at")}
    last_month: dict[str, pd.Series] = {}
    activation = Activation(int(act["min_days"]), float(act["min_ic"]), float(act["min_t"]), int(act["max_days"]))
    requalify = Activation(int(req["min_days"]), float(act["min_ic"]), float(req["min_t"]), int(req["max_days"]),
                           successors=True)
    negative = NegativeEdge(int(ret["window_days"]), int(ret["min_days"]), float(ret["z"]))
    vd = cfg["view_decay"]
    decay = ViewDecay(bool(vd.get("enabled", True)), float(vd["min_share"]), int(vd["min_retired"]),
                      int(vd["window_days"]), tuple(vd.get("exclude") or ()))
    promotion = Promotion(prom["method"], float(prom["top_fraction"]), prom.get("keep_fraction"),
                          float(prom["multiplier"]), int(prom["window_days"]), int(prom["min_days"]))
    min_active = int(ret.get("min_active") or 0)
    births: dict[pd.Timestamp, list[Generation]] = {}
    changes: list[tuple] = [(first[m], m, "candidate", 1) for m in models]
    events: list[dict[str, Any]] = []

    def record(t, m, gen, frm, to, event, rule, reason, metrics) -> None:
        lm = last_month.get(m)
        metrics = dict(metrics)
        events.append({
            "event_seq": len(events) + 1, "date": t, "model_id": m, "generation": gen, "event": event,
            "from_status": frm, "to_status": to, "rule": rule, "reason": reason,
            "monthly_ic": None if lm is None else _round(lm["ic"]),
            "trailing_icir": None if lm is None else _round(lm["trailing_icir"]),
            "cusum": metrics.get("cusum"), "cusum_threshold": metrics.get("cusum_threshold"),
            "reference_ic": metrics.get("reference_ic"),
            "negative_months": None if lm is None else int(lm["negative_run"]),
            "metrics": json.dumps({k: _round(v) if isinstance(v, float) else v for k, v in metrics.items()},
                                  sort_keys=True, default=str),
        })

    def apply(t: pd.Timestamp, d: Decision) -> None:
        g = state.current[d.model_id]
        if d.to == "retired" and g.status in LIVE and sum(x.status in LIVE for x in state.current.values()) - 1 < min_active:
            if d.model_id not in state.pending:
                state.pending[d.model_id] = (t, d)
                record(t, d.model_id, g.generation, g.status, g.status, "retirement_deferred", d.rule,
                       f"{d.reason}; deferred: it is one of the last {min_active} live model(s)", d.metrics)
            return
        frm = g.status
        g.status = d.to
        changes.append((t, d.model_id, d.to, g.generation))
        record(t, d.model_id, g.generation, frm, d.to, d.event, d.rule, d.reason, d.metrics)
        if d.to == "active" and g.activated_at is None:
            g.activated_at = t
        if d.to != "retired":
            return
        state.pending.pop(d.model_id, None)
        g.retired_at, g.rule, g.reason = t, d.rule, d.reason
        if d.rule == "changepoint":
            state.cp_retired.append((state.position(t), d.model_id))
        cap = req.get("max_generations")
        birth = successor_birth(calendar, t, (cadences or {}).get(d.model_id, "M"), int(req["purge_days"]))
        if not req.get("enabled", True) or (cap is not None and g.generation >= int(cap)) or birth is None:
            return
        nxt = Generation(d.model_id, g.generation + 1, birth)
        births.setdefault(birth, []).append(nxt)
        record(t, d.model_id, g.generation, "retired", "retired", "suspended", "requalification",
               f"spec suspended: its successor (generation {nxt.generation}), retrained on data after "
               f"{pd.Timestamp(t).date()}, enters as a candidate on {birth.date()} and must re-qualify on fresh "
               "out-of-sample evidence", {"successor_born": str(birth.date())})

    start = min(first.values()) if first else None
    for t in calendar[calendar >= start] if start is not None else []:
        for nxt in births.pop(t, []):
            state.current[nxt.model_id] = nxt
            lineage.append(nxt)
            changes.append((t, nxt.model_id, "candidate", nxt.generation))
            record(t, nxt.model_id, nxt.generation, "retired", "candidate", "successor_born", "requalification",
                   f"generation {nxt.generation} of the spec, retrained on data after its predecessor's retirement",
                   {})
            watch(nxt)
        for d in changepoint.decide(t, state):
            apply(t, d)
        for d in decay.decide(t, state):
            apply(t, d)
        rows = month_rows.get(t)
        if rows is None:
            continue
        for _, row in rows.iterrows():
            last_month[row["model_id"]] = row
        state.trailing_icir = {m: float(r["trailing_icir"]) for m, r in last_month.items()}
        for rule in (negative, activation, requalify):
            for d in rule.decide(t, state):
                apply(t, d)
        for m, (_, d) in list(state.pending.items()):
            if state.current[m].status not in LIVE:
                state.pending.pop(m)
            elif sum(x.status in LIVE for x in state.current.values()) - 1 >= min_active:
                since = pd.Timestamp(state.pending.pop(m)[0]).date()
                apply(t, Decision(d.model_id, d.to, d.event, d.rule, f"{d.reason} (deferred since {since})", d.metrics))
        for d in promotion.decide(t, state):
            apply(t, d)

    status_daily = _status_daily(changes, calendar, float(prom["multiplier"]))
    cusum = (pd.concat(cusum_frames, ignore_index=True) if cusum_frames
             else pd.DataFrame(columns=[*CUSUM_COLUMNS, "generation"]))
    return LifecycleResult(events=events_frame(events), status_daily=status_daily,
                           monthly=_attach_status(monthly, status_daily), cusum=cusum,
                           final={m: state.current[m].status for m in models}, lineage=lineage_frame(lineage))


def events_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The events as a frame of fixed column types (EVENT_COLUMNS), even without rows: a metric a group never
    recorded is a float column of NaN, not an untyped one, so stacking groups keeps every type."""
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"])
    for col in EVENT_FLOATS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame["negative_months"] = pd.to_numeric(frame["negative_months"], errors="coerce").astype("Int64")
    for col in ("event_seq", "generation"):
        frame[col] = frame[col].astype("int64")
    return frame


def merge_results(results: list[LifecycleResult]) -> LifecycleResult:
    """One result from lifecycles run on disjoint sets of models (one per label group): events in date
    order (a group's own order within a day) renumbered, the other tables stacked."""
    if len(results) == 1:
        return results[0]
    events = pd.concat([r.events for r in results], ignore_index=True)
    events = events.sort_values("date", kind="stable").reset_index(drop=True)
    events["event_seq"] = np.arange(1, len(events) + 1)
    status = pd.concat([r.status_daily for r in results], ignore_index=True)
    return LifecycleResult(
        events=events[EVENT_COLUMNS],
        status_daily=status.sort_values(["date", "model_id"]).reset_index(drop=True),
        monthly=pd.concat([r.monthly for r in results], ignore_index=True),
        cusum=pd.concat([r.cusum for r in results], ignore_index=True),
        final={m: s for r in results for m, s in r.final.items()},
        lineage=pd.concat([r.lineage.astype(object) for r in results], ignore_index=True).infer_objects()
        .sort_values(["model_id", "generation"]).reset_index(drop=True))


def lineage_frame(lineage: list[Generation]) -> pd.DataFrame:
    """One row per generation of every spec (LINEAGE_COLUMNS)."""
    rows = [{"model_id": g.model_id, "generation": g.generation, "lineage_id": f"{g.model_id}#g{g.generation}",
             "parent_id": f"{g.model_id}#g{g.generation - 1}" if g.generation > 1 else None, "born_at": g.born,
             "activated_at": g.activated_at, "retired_at": g.retired_at, "status": g.status, "rule": g.rule,
             "reason": g.reason} for g in lineage]
    return pd.DataFrame(rows, columns=LINEAGE_COLUMNS).sort_values(["model_id", "generation"]).reset_index(drop=True)


def multiplier_of(status: str, promoted_multiplier: float) -> float:
    return {"active": 1.0, "promoted": float(promoted_multiplier)}.get(status, 0.0)


def _status_daily(changes: list[tuple], calendar: pd.DatetimeIndex, promoted_multiplier: float) -> pd.DataFrame:
    cols = ["date", "model_id", "generation", "status", "multiplier"]
    if not changes or not len(calendar):
        return pd.DataFrame(columns=cols)
    ch = pd.DataFrame(changes, columns=["date", "model_id", "status", "generation"])
    # a change dated between calendar days takes effect on the next calendar day; the last move of a day stands
    ch["date"] = calendar[np.minimum(calendar.searchsorted(ch["date"]), len(calendar) - 1)]
    ch = ch.drop_duplicates(["date", "model_id"], keep="last")
    status = ch.pivot(index="date", columns="model_id", values="status").reindex(calendar).ffill()
    gen = ch.pivot(index="date", columns="model_id", values="generation").reindex(calendar).ffill()
    out = pd.DataFrame({"status": status.stack(), "generation": gen.stack()}).reset_index()
    out.columns = ["date", "model_id", "status", "generation"]
    out["generation"] = out["generation"].astype(int)
    out["multiplier"] = out["status"].map({"active": 1.0, "promoted": float(promoted_multiplier)}).fillna(0.0)
    return out[cols].sort_values(["date", "model_id"]).reset_index(drop=True)


def _attach_status(monthly: pd.DataFrame, status_daily: pd.DataFrame) -> pd.DataFrame:
    """The status and multiplier in force at each month's known date (NaN when not yet known)."""
    if monthly.empty or status_daily.empty:
        return monthly.assign(status=pd.Series(dtype=object), multiplier=pd.Series(dtype=float))
    sd = status_daily[["date", "model_id", "status", "multiplier"]].rename(columns={"date": "known_at"})
    return monthly.merge(sd, on=["known_at", "model_id"], how="left")


def weights_asof(status_daily: pd.DataFrame, date) -> dict[str, float]:
    """Models usable by an ensemble at `date` and their weight multipliers (active 1, promoted the
    configured multiplier): the state decided with what was known by then (last state at or before)."""
    if status_daily.empty:
        return {}
    frame = status_daily[pd.to_datetime(status_daily["date"]) <= pd.Timestamp(date)]
    if frame.empty:
        return {}
    last = frame.sort_values("date").groupby("model_id").tail(1)
    last = last[last["multiplier"] > 0]
    return {str(m): float(x) for m, x in zip(last["model_id"], last["multiplier"], strict=True)}


def multiplier_panel(status_daily: pd.DataFrame, dates=None, models=None) -> pd.DataFrame:
    """Dates x models table of weight multipliers (0: not usable at that date) for `ml.ensemble`."""
    wide = status_daily.pivot(index="date", columns="model_id", values="multiplier")
    wide.index = pd.DatetimeIndex(wide.index)
    if dates is not None:
        wide = wide.reindex(pd.DatetimeIndex(dates), method="ffill")
    if models is not None:
        wide = wide.reindex(columns=list(models))
    return wide.fillna(0.0)


__all__ = ["EVENT_COLUMNS", "LINEAGE_COLUMNS", "STATUSES", "LifecycleResult", "known_dates", "lineage_frame",
           "merge_results", "model_view", "multiplier_panel", "run_lifecycle", "successor_birth", "weights_asof"]
