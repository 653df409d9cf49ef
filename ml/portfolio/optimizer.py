"""One day's single-period optimization of the book actually held (cvxportfolio's SPO, with
Garleanu-Pedersen's point that the trade, not a target, is the decision).

Choose post-trade weights w that maximize

    alpha @ w  -  gamma/2 * sum(horizon * sigma^2 * w^2)  -  trading cost(w - w0)  -  borrow(w)

subject to the caller's constraints (`ml.portfolio.constraints`). Costs are objects too (`terms`):
half-spread and commission are linear in |trade| (they make the no-trade band, in weight units:
inside it the alpha gained is worth less than the cost), square-root impact is |trade|^1.5 (a power
cone: a trade is split over days), borrow is linear in the short side over the horizon. Unwinds carry
their value: with no alpha left, holding still costs risk (and borrow), so a stale position is sold as
soon as the risk released beats the cost of selling it.

Variables x = [w, t, g, s] (n names each): weights, t >= |w - w0|, g >= |w|, s >= t^1.5. Solved with
Clarabel (an interior-point conic solver); everything is scaled to bps for conditioning.
"""

from __future__ import annotations

from dataclasses import dataclass

import clarabel
import numpy as np
import scipy.sparse as sp

from ml.costs import BPS, Commission, CostInputs, CostModel, HalfSpread, SquareRootImpact, fill_row_median
from ml.portfolio.constraints import (
    Constraint,
    Day,
    GrossLeverage,
    MaxWeight,
    Rows,
    TurnoverLimit,
    VolTarget,
    is_risk_limit,
)


@dataclass
class Objective:
    """The objective's pieces in the variables x = [w, t, g, s] (minimized: P/2 quadratic, q linear)."""

    P: np.ndarray  # diagonal, length 4n
    q: np.ndarray
    impact: bool


@dataclass
class Borrow:
    """The cost of borrowing the shares sold short: `annual_bps` of the short value a year (HoldingCost)."""

    annual_bps: float = 50.0

    def daily(self) -> float:
        return float(self.annual_bps) / BPS / 252.0

    def cost(self, w: np.ndarray) -> np.ndarray:
        """Per name and day, fraction of capital (>= 0)."""
        return np.maximum(-np.asarray(w, dtype=float), 0.0) * self.daily()


def objective(day: Day, gamma: float, costs: CostModel, borrow: Borrow | None) -> Objective:
    n = day.n
    P, q = np.zeros(4 * n), np.zeros(4 * n)
    q[:n] -= day.alpha
    P[:n] += gamma * day.horizon * day.sigma ** 2
    linear = np.zeros(n)
    impact = np.zeros(n)
    for comp in costs.components:
        if isinstance(comp, HalfSpread | Commission):
            linear += comp.bps(np.zeros(n), _inputs(day)) / BPS
        elif isinstance(comp, SquareRootImpact):
            adv = np.asarray(day.adv_value, dtype=float)
            known = np.isfinite(adv) & (adv > 0)
            coef = comp.k * day.sigma * np.sqrt(day.nav / np.where(known, adv, 1.0))
            impact += np.where(known, coef, 0.0)
            linear += np.where(known, 0.0, comp.k * day.sigma * np.sqrt(comp.missing_adv_participation))
        else:  # any other component: its cost at a typical slice (1% of capital), charged linearly
            linear += comp.bps(np.full(n, 0.01 * day.nav), _inputs(day)) / BPS
    q[n:2 * n] += linear
    q[3 * n:] += impact
    if borrow is not None:
        rate = borrow.daily() * day.horizon  # short value = (g - w) / 2
        q[2 * n:3 * n] += rate / 2.0
        q[:n] -= rate / 2.0
    return Objective(P=P * BPS, q=q * BPS, impact=bool(np.any(impact > 0)))


def _inputs(day: Day) -> CostInputs:
    return CostInputs(spread_bps=day.spread_bps, adv_value=day.adv_value, sigma=day.sigma)


def _structure(day: Day, impact: bool) -> Rows:
    """t >= |w - w0|, g >= |w|, and s >= t^1.5 (power cones) or s = 0."""
    n = day.n
    eye = sp.identity(n, format="csc")
    z = sp.csc_matrix((n, n))
    A = sp.vstack([
        sp.hstack([eye, -eye, z, z]), sp.hstack([-eye, -eye, z, z]),
        sp.hstack([eye, z, -eye, z]), sp.hstack([-eye, z, -eye, z]),
    ], format="csc")
    b = np.concatenate([day.w0, -day.w0, np.zeros(2 * n)])
    cones: list = [clarabel.NonnegativeConeT(4 * n)]
    if impact:  # (s_i, 1, t_i) in the power cone K(2/3): s^(2/3) >= |t|, i.e. s >= |t|^1.5
        r = np.arange(n)
        rows = np.concatenate([3 * r, 3 * r + 2])
        cols = np.concatenate([3 * n + r, n + r])
        P = sp.csc_matrix((-np.ones(2 * n), (rows, cols)), shape=(3 * n, 4 * n))
        pb = np.tile([0.0, 1.0, 0.0], n)
        A = sp.vstack([A, P], format="csc")
        b = np.concatenate([b, pb])
        cones += [clarabel.PowerConeT(2.0 / 3.0)] * n
    else:
        A = sp.vstack([A, sp.hstack([z, z, z, eye])], format="csc")
        b = np.concatenate([b, np.zeros(n)])
        cones.append(clarabel.ZeroConeT(n))
    return Rows(A, b, cones)


@dataclass
class Solution:
    w: np.ndarray
    status: str  # solved | relaxed (turnover budget dropped to keep the risk limits) | fallback | idle
    budget_binding: bool


STALLED_MAX_PRIMAL_RESIDUAL = 1e-4  # Clarabel's reduced feasibility tolerance: what AlmostSolved already meets


def _settings() -> clarabel.DefaultSettings:
    st = clarabel.DefaultSettings()
    st.verbose = False
    st.max_iter = 200
    return st


def _solve(day: Day, obj: Objective, constraints: list[Constraint]) -> np.ndarray | None:
    blocks = [_structure(day, obj.impact)]
    for c in constraints:
        rows = c.rows(day)
        if rows is not None:
            blocks.append(rows)
    A = sp.vstack([blk.A for blk in blocks], format="csc")
    b = np.concatenate([blk.b for blk in blocks])
    cones = [cone for blk in blocks for cone in blk.cones]
    P = sp.diags(obj.P, format="csc")
    sol = clarabel.DefaultSolver(sp.triu(P, format="csc"), obj.q, A, b, cones, _settings()).solve()
    status = str(sol.status)
    # a stalled solve whose point is feasible is kept (`enforce` then makes the limits exact): treating it
    # as infeasible dropped the turnover budget and rebuilt the whole book (BENCHMARKS.md, session 13)
    stalled_but_feasible = status == "InsufficientProgress" and float(sol.r_prim) <= STALLED_MAX_PRIMAL_RESIDUAL
    if status not in ("Solved", "AlmostSolved") and not stalled_but_feasible:
        return None
    return np.asarray(sol.x[: day.n], dtype=float)


def enforce(w: np.ndarray, day: Day, constraints: list[Constraint]) -> np.ndarray:
    """Solver tolerance aside, the limits hold exactly: clip to the per-name caps, scale the gross and
    the volatility down when they exceed their limits (scaling keeps the book neutral)."""
    for c in constraints:
        if isinstance(c, MaxWeight):
            cap = c.caps(day)
            w = np.clip(w, -cap, cap)
    for c in constraints:
        if isinstance(c, GrossLeverage) and np.abs(w).sum() > c.limit:
            w = w * (c.limit / np.abs(w).sum())
        if isinstance(c, VolTarget):
            vol = float(np.sqrt(np.sum((w * day.sigma) ** 2)))
            if vol > c.daily():
                w = w * (c.daily() / vol)
    return w


def optimize(day: Day, gamma: float, costs: CostModel, constraints: list[Constraint],
             borrow: Borrow | None = None) -> Solution:
    """The day's post-trade weights. The turnover budget yields to the risk limits when the held book
    cannot be brought inside them within it; if no solve succeeds the held book is scaled into its
    limits (status `fallback`)."""
    if day.n == 0:
        return Solution(np.zeros(0), "idle", False)
    if not np.any(day.alpha) and not np.any(day.w0):
        return Solution(np.zeros(day.n), "idle", False)
    obj = objective(day, gamma, costs, borrow)
    status = "solved"
    w = _solve(day, obj, constraints)
    if w is None:
        status = "relaxed"
        w = _solve(day, obj, [c for c in constraints if is_risk_limit(c)])
    if w is None:
        status = "fallback"
        w = day.w0.copy()
    w = enforce(w, day, constraints)
    w = np.where(np.abs(w) < 1e-9, 0.0, w)
    trade = np.abs(w - day.w0).sum()
    limits = [c.budget(day) for c in constraints if isinstance(c, TurnoverLimit)]
    binding = any(limit is not None and trade >= limit * (1 - 1e-4) for limit in limits)
    return Solution(w, status, binding)


def fill_sigma(sigma: np.ndarray) -> np.ndarray:
    """Missing volatilities: the day's cross-sectional median (never another date's)."""
    return fill_row_median(sigma, 0.02)
