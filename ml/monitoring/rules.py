"""The lifecycle's rules, one small class each. Each reads only the `State` known at date t and returns
the moves it wants (`Decision`s); the loop in `ml.monitoring.lifecycle` applies them.

- `Activation`: a candidate with `min_days` known out-of-sample IC days whose mean IC > `min_ic` and
  Newey-West t >= `min_t` becomes active; one still short of that after `max_days` is retired. The
  same class with the `requalification` settings judges a retired spec's successor on its own fresh
  evidence only (a stricter t: the spec has evidence against it).
- `NegativeEdge`: a live model whose trailing known daily IC has a Newey-West t <= -z is retired: the
  evidence says it now loses money, measured against its own noise. A run of negative months is not
  evidence: a model with IC 0.02 has one month in four negative. With `peers` on, its IC minus its
  peers' (`ml.monitoring.peers`) must also have t <= -z: a lull every model shares retires no one.
- `ChangePoint`: the CUSUM alarm (`ml.monitoring.changepoint`) of the model's current generation.
- `ViewDecay`: when most live models of one view were retired by the change point within a window,
  the view's alpha is gone; its weaker models, which would need far longer to show it, go too.
- `Promotion`: the top fraction of live models by what they add to the ensemble (`contribution`), or
  by stand-alone trailing ICIR (`icir`), is promoted (weight x `multiplier`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.monitoring.contribution import ContributionStats, contributions
from ml.monitoring.ic import known_dates, nw_t_stat

LIVE = ("active", "promoted")


@dataclass
class Decision:
    model_id: str
    to: str
    event: str
    rule: str
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Generation:
    """One trained lineage member of a (family, view) spec: generation 1 is the original model, each
    later one the spec retrained on data after its predecessor's retirement."""

    model_id: str
    generation: int
    born: pd.Timestamp
    status: str = "candidate"
    activated_at: pd.Timestamp | None = None
    retired_at: pd.Timestamp | None = None
    rule: str | None = None
    reason: str | None = None


class Evidence:
    """Each model's daily IC with the date it becomes known (`known_lag` trading days later)."""

    def __init__(self, daily: pd.DataFrame, calendar: pd.DatetimeIndex, lag: int):
        self.series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for m, g in daily.sort_values(["model_id", "date"]).groupby("model_id", sort=False):
            dates = pd.to_datetime(g["date"]).to_numpy(dtype="datetime64[ns]")
            known = known_dates(dates, calendar, lag)
            known = np.where(np.isnat(known), np.datetime64("2262-01-01"), known)
            self.series[str(m)] = (dates, known, g["ic"].to_numpy(dtype=float))

    def window(self, model: str, t: pd.Timestamp, since: pd.Timestamp, last: int | None = None) -> np.ndarray:
        """IC values dated >= `since` and known by `t` (oldest first), the last `last` of them."""
        if model not in self.series:
            return np.zeros(0)
        dates, known, ic = self.series[model]
        lo = int(np.searchsorted(dates, np.datetime64(since), side="left"))
        hi = int(np.searchsorted(known, np.datetime64(t), side="right"))
        if last is not None:
            lo = max(lo, hi - int(last))
        return ic[lo:hi] if hi > lo else np.zeros(0)


@dataclass
class State:
    """What the loop knows at date t: every spec's current generation and the evidence."""

    calendar: pd.DatetimeIndex
    evidence: Evidence
    current: dict[str, Generation]
    views: dict[str, str | None]
    lag: int
    horizon: int
    pending: dict[str, tuple] = field(default_factory=dict)
    relative: Evidence | None = None  # each IC minus its peers' (ml.monitoring.peers); None: peers off
    cp_retired: list[tuple[int, str]] = field(default_factory=list)
    contribution: ContributionStats | None = None
    trailing_icir: dict[str, float] = field(default_factory=dict)  # the latest known monthly table's

    def position(self, t: pd.Timestamp) -> int:
        return int(self.calendar.searchsorted(t))

    def live(self) -> list[str]:
        return sorted(m for m, g in self.current.items() if g.status in LIVE)


def _r(x: Any, nd: int = 4) -> Any:
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), nd)


@dataclass
class Activation:
    min_days: int = 126
    min_ic: float = 0.0
    min_t: float = 0.0
    max_days: int = 504
    successors: bool = False  # False: judges generation 1; True: the successors of retired specs

    def decide(self, t: pd.Timestamp, state: State) -> list[Decision]:
        out = []
        names = ("requalified", "requalification", "not_requalified") if self.successors else (
            "activated", "activation", "never_activated")
        for m, g in sorted(state.current.items()):
            if g.status != "candidate" or (g.generation > 1) != self.successors or g.born > t:
                continue
            x = state.evidence.window(m, t, g.born)
            if len(x) < int(self.min_days):
                continue
            mean, t_stat, n = nw_t_stat(x, state.horizon)
            t_stat = t_stat if np.isfinite(t_stat) else 0.0
            fresh = f"{n} fresh known OOS IC days since {g.born.date()}" if self.successors else f"{n} known OOS IC days"
            metrics = {"mean_ic": float(mean), "t_stat": float(t_stat), "n_days": n}
            if mean > float(self.min_ic) and t_stat >= float(self.min_t):
                out.append(Decision(m, "active", names[0], names[1],
                                    f"{fresh}, mean IC {mean:.4f} > {self.min_ic:g}, Newey-West t {t_stat:.2f} "
                                    f">= {self.min_t:g}", metrics))
            elif n >= int(self.max_days):
                out.append(Decision(m, "retired", "retired", names[2],
                                    f"still a candidate after {fresh} (mean IC {mean:.4f}, t {t_stat:.2f} < "
                                    f"{self.min_t:g})", metrics))
        return out


@dataclass
class NegativeEdge:
    window_days: int = 252
    min_days: int = 126
    z: float = 2.326

    def decide(self, t: pd.Timestamp, state: State) -> list[Decision]:
        out = []
        for m in state.live():
            g = state.current[m]
            if m in state.pending:
                continue
            x = state.evidence.window(m, t, g.born, last=self.window_days)
            if len(x) < int(self.min_days):
                continue
            mean, t_stat, n = nw_t_stat(x, state.horizon)
            if not (np.isfinite(t_stat) and t_stat <= -float(self.z)):
                continue
            reason = (f"the last {n} known daily ICs average {mean:+.4f} with Newey-West t {t_stat:.2f} "
                      f"<= -{self.z:g}: the model's edge is negative beyond its own noise")
            metrics = {"mean_ic": float(mean), "t_stat": float(t_stat), "n_days": n}
            if state.relative is not None:
                # a common lull is not the model's decay: it must also trail its peers beyond its noise
                rel, rel_t, _ = nw_t_stat(state.relative.window(m, t, g.born, last=self.window_days), state.horizon)
                if not (np.isfinite(rel_t) and rel_t <= -float(self.z)):
                    continue
                reason += f", and {rel:+.4f} below its peers' with t {rel_t:.2f}"
                metrics.update(relative_ic=float(rel), relative_t=float(rel_t))
            out.append(Decision(m, "retired", "retired", "negative_edge", reason, metrics))
        return out


@dataclass
class ChangePoint:
    alarms_at: dict[pd.Timestamp, list[tuple[str, int, pd.Series]]] = field(default_factory=dict)

    def add(self, frame: pd.DataFrame, generation: int) -> None:
        """Register a generation's alarm blocks by the date each is known."""
        if frame.empty:
            return
        alarms = frame[frame["alarm"].astype(bool) & frame["known_at"].notna()]
        for _, row in alarms.iterrows():
            self.alarms_at.setdefault(pd.Timestamp(row["known_at"]), []).append((row["model_id"], generation, row))

    def decide(self, t: pd.Timestamp, state: State) -> list[Decision]:
        out = []
        for m, gen, a in self.alarms_at.get(t, []):
            g = state.current.get(m)
            if g is None or g.generation != gen or g.status not in LIVE or m in state.pending:
                continue
            out.append(Decision(
                m, "retired", "retired", "changepoint",
                f"IC change point: CUSUM {a['cusum']:.2f} > threshold {a['threshold']:.2f} (block IC "
                f"{a['block_ic']:.4f} vs reference {a['reference_ic']:.4f}, block ending "
                f"{pd.Timestamp(a['block_end']).date()})",
                {"cusum": _r(a["cusum"], 3), "cusum_threshold": _r(a["threshold"], 3),
                 "reference_ic": _r(a["reference_ic"]), "block_ic": float(a["block_ic"]),
                 "block_end": str(pd.Timestamp(a["block_end"]).date()), "k": float(a["k"])}))
        return out


@dataclass
class ViewDecay:
    enabled: bool = True
    min_share: float = 0.5
    min_retired: int = 2
    window_days: int = 63
    exclude: tuple[str, ...] = ("all",)

    def decide(self, t: pd.Timestamp, state: State) -> list[Decision]:
        if not self.enabled:
            return []
        pos = state.position(t)
        recent: dict[str, list[str]] = {}
        for p, m in state.cp_retired:
            view = state.views.get(m)
            if pos - p < int(self.window_days) and view and view not in self.exclude:
                recent.setdefault(view, []).append(m)
        out = []
        for view, gone in sorted(recent.items()):
            gone = sorted(set(gone))
            live = [m for m in state.live() if state.views.get(m) == view and m not in state.pending]
            share = len(gone) / (len(gone) + len(live)) if live else 1.0
            if not live or len(gone) < int(self.min_retired) or share < float(self.min_share):
                continue
            for m in live:
                out.append(Decision(
                    m, "retired", "retired", "view_decay",
                    f"view {view}: {len(gone)} of its {len(gone) + len(live)} live models retired by the IC change "
                    f"point in the last {int(self.window_days)} trading days ({share:.0%} >= {self.min_share:.0%}): "
                    "its alpha has gone", {"view": view, "retired_by_changepoint": gone, "share": float(share)}))
        return out


def n_of(fraction: float, n: int) -> int:
    """round(fraction * n), halves up (top 20% of 3 models is 1, of 2 is 0)."""
    return int(math.floor(float(fraction) * n + 0.5))


def promoted_set(score: Mapping[str, float], promoted: set[str], top_fraction: float,
                 keep_fraction: float | None = None) -> set[str]:
    """The top `top_fraction` (rounded) of `score` (every live model) among those with a positive
    score; with `keep_fraction` a model already promoted also stays while within the top `keep_fraction`."""
    pool = list(score)
    ranked = sorted([m for m in pool if np.isfinite(score[m]) and score[m] > 0], key=lambda m: (-score[m], m))
    top = set(ranked[: n_of(top_fraction, len(pool))])
    keep_n = n_of(keep_fraction, len(pool)) if keep_fraction else 0
    return top | (set(ranked[:keep_n]) & set(promoted))


@dataclass
class Promotion:
    method: str = "contribution"
    top_fraction: float = 0.2
    keep_fraction: float | None = None
    multiplier: float = 2.0
    window_days: int = 252
    min_days: int = 63

    def scores(self, t: pd.Timestamp, state: State, pool: list[str]) -> tuple[dict[str, float], dict[str, float]]:
        """(ranking score, mean) per pool model: the t-statistic of its daily contribution to the live
        ensemble over the trailing window (method contribution), or its trailing ICIR (icir)."""
        if self.method == "icir":
            icir = {m: state.trailing_icir.get(m, np.nan) for m in pool}
            return icir, icir
        stats = state.contribution
        if stats is None:
            raise ValueError("promotion.method contribution needs the score panel's contribution stats")
        cutoff = state.calendar[max(state.position(t) - state.lag, 0)]
        hi = int(stats.dates.searchsorted(cutoff, side="right"))
        rows = np.arange(max(0, hi - int(self.window_days)), hi)
        frame = contributions(stats, pool, rows)
        score, mean = {}, {}
        for m in pool:
            if m not in frame:
                score[m] = mean[m] = np.nan
                continue
            col = frame[m][frame.index >= state.current[m].born].to_numpy()
            mu, t_stat, n = nw_t_stat(col, state.horizon)
            ok = n >= int(self.min_days) and np.isfinite(t_stat)
            score[m], mean[m] = (t_stat if ok else np.nan), (mu if ok else np.nan)
        return score, mean

    def decide(self, t: pd.Timestamp, state: State) -> list[Decision]:
        pool = state.live()
        if not pool:
            return []
        score, mean = self.scores(t, state, pool)
        eligible = {m: (score[m] if np.isfinite(mean[m]) and mean[m] > 0 else np.nan) for m in pool}
        promoted = {m for m in pool if state.current[m].status == "promoted"}
        top = promoted_set(eligible, promoted, self.top_fraction, self.keep_fraction)
        ranked = sorted([m for m in pool if np.isfinite(eligible[m]) and eligible[m] > 0],
                        key=lambda m: (-eligible[m], m))
        what = "contribution t" if self.method == "contribution" else "trailing ICIR"
        out = []
        for m in pool:
            want = "promoted" if m in top else "active"
            if want == state.current[m].status:
                continue
            rank = ranked.index(m) + 1 if m in ranked else None
            metrics = {"score": _r(score[m]), "mean": _r(mean[m]), "rank": rank, "n_active": len(pool),
                       "method": self.method}
            detail = (f"mean daily contribution to the live ensemble's IC {mean[m]:+.4f}, " if self.method ==
                      "contribution" and np.isfinite(mean[m]) else "")
            if want == "promoted":
                out.append(Decision(m, "promoted", "promoted", "promotion",
                                    f"{detail}{what} {score[m]:.2f} ranks {rank}/{len(pool)}: top "
                                    f"{self.top_fraction:.0%} of live models, weight x{self.multiplier:g}", metrics))
            else:
                out.append(Decision(m, "active", "demoted", "promotion",
                                    f"{detail}{what} {_r(score[m], 2)} ranks {rank or '-'}/{len(pool)}: out of the top "
                                    f"{max(self.keep_fraction or 0, self.top_fraction):.0%}", metrics))
        return out
