"""Constraints on the post-trade book, one small class each (cvxportfolio's constraints style), combined
by the caller into one list the optimizer stacks:

    constraints = [DollarNeutral(), SectorNeutral(), BetaNeutral(), MaxWeight(0.03), AdvCap(0.05),
                   GrossLeverage(2.0), NetLeverage(0.05), VolTarget(0.08), TurnoverLimit(0.1, 1.2)]

Each turns one day's `Day` into conic rows over the optimizer's variables x = [w, t, g, s] (post-trade
weights, |trade|, |weight|, impact epigraph; see `ml.portfolio.optimizer`), in Clarabel's form
`A x + slack = b, slack in cone`, and says whether a book satisfies it (`holds`), so tests and the
guardrails check the book actually held with the same definition. Neutrality is stated once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import clarabel
import numpy as np
import scipy.sparse as sp

from ml.backtest import TRADING_DAYS


@dataclass
class Day:
    """One decision date, restricted to the names the optimizer may hold (arrays of length n)."""

    w0: np.ndarray  # pre-trade weights (yesterday's book drifted with today's returns), fraction of capital
    alpha: np.ndarray  # expected return of holding one unit of weight over the horizon (fraction)
    sigma: np.ndarray  # daily volatility
    beta: np.ndarray
    sector: np.ndarray  # (n,) integer codes
    n_sectors: int
    adv_value: np.ndarray  # currency, NaN unknown
    spread_bps: np.ndarray  # full spread, bps
    horizon: float  # days the alpha is held over
    nav: float  # capital x (1 + cumulative net return): the money actually managed
    book: float  # gross of the book held (|w0| summed)

    @property
    def n(self) -> int:
        return len(self.w0)


@dataclass
class Rows:
    A: sp.csc_matrix
    b: np.ndarray
    cones: list


def _w(day: Day, coef: np.ndarray | sp.spmatrix) -> sp.csc_matrix:
    """Rows over w only (the other three blocks zero)."""
    c = sp.csc_matrix(coef)
    return sp.hstack([c, sp.csc_matrix((c.shape[0], 3 * day.n))], format="csc")


def _g(day: Day, coef: np.ndarray | sp.spmatrix) -> sp.csc_matrix:
    c = sp.csc_matrix(coef)
    z = sp.csc_matrix((c.shape[0], day.n))
    return sp.hstack([z, z, c, z], format="csc")


def _t(day: Day, coef: np.ndarray | sp.spmatrix) -> sp.csc_matrix:
    c = sp.csc_matrix(coef)
    z = sp.csc_matrix((c.shape[0], day.n))
    return sp.hstack([z, c, z, z], format="csc")


class Constraint:
    """Base: rows for the optimizer and a check on a held book."""

    def rows(self, day: Day) -> Rows | None:
        raise NotImplementedError

    def holds(self, w: np.ndarray, day: Day, tol: float = 1e-6) -> bool:
        raise NotImplementedError


class _Exposure(Constraint):
    """Zero exposure (w @ X = 0) for a names x factors matrix X."""

    def matrix(self, day: Day) -> np.ndarray:
        raise NotImplementedError

    def rows(self, day: Day) -> Rows | None:
        X = self.matrix(day)
        keep = np.abs(X).sum(axis=0) > 0
        if not keep.any():
            return None
        X = X[:, keep]
        return Rows(_w(day, X.T), np.zeros(X.shape[1]), [clarabel.ZeroConeT(X.shape[1])])

    def holds(self, w: np.ndarray, day: Day, tol: float = 1e-6) -> bool:
        return bool(np.all(np.abs(w @ self.matrix(day)) <= tol * max(1.0, np.abs(w).sum())))


class DollarNeutral(_Exposure):
    def matrix(self, day: Day) -> np.ndarray:
        return np.ones((day.n, 1))


class SectorNeutral(_Exposure):
    """Zero net weight in every sector (implies dollar neutrality)."""

    def matrix(self, day: Day) -> np.ndarray:
        return np.eye(day.n_sectors)[day.sector]


class BetaNeutral(_Exposure):
    def matrix(self, day: Day) -> np.ndarray:
        return np.nan_to_num(day.beta, nan=1.0)[:, None]


@dataclass
class MaxWeight(Constraint):
    """|w_i| <= limit (fraction of capital)."""

    limit: float = 0.03

    def caps(self, day: Day) -> np.ndarray:
        return np.full(day.n, float(self.limit))

    def rows(self, day: Day) -> Rows:
        return Rows(_g(day, sp.identity(day.n)), self.caps(day), [clarabel.NonnegativeConeT(day.n)])

    def holds(self, w: np.ndarray, day: Day, tol: float = 1e-6) -> bool:
        return bool(np.all(np.abs(w) <= self.caps(day) + tol))


@dataclass
class AdvCap(MaxWeight):
    """|w_i| * NAV <= fraction * ADV_i: a position the market can absorb (no position where ADV is unknown
    unless `unknown_adv_weight` allows one)."""

    fraction: float = 0.05
    unknown_adv_weight: float = 0.0

    def caps(self, day: Day) -> np.ndarray:
        adv = np.asarray(day.adv_value, dtype=float)
        return np.where(np.isfinite(adv) & (adv > 0), self.fraction * np.nan_to_num(adv) / day.nav,
                        self.unknown_adv_weight)


@dataclass
class GrossLeverage(Constraint):
    limit: float = 2.0

    def rows(self, day: Day) -> Rows:
        return Rows(_g(day, np.ones((1, day.n))), np.array([self.limit]),
                    [clarabel.NonnegativeConeT(1)])

    def holds(self, w: np.ndarray, day: Day, tol: float = 1e-6) -> bool:
        return bool(np.abs(w).sum() <= self.limit + tol)


@dataclass
class NetLeverage(Constraint):
    """|sum w| <= limit."""

    limit: float = 0.05

    def rows(self, day: Day) -> Rows:
        ones = np.ones((1, day.n))
        return Rows(_w(day, np.vstack([ones, -ones])), np.array([self.limit, self.limit]),
                    [clarabel.NonnegativeConeT(2)])

    def holds(self, w: np.ndarray, day: Day, tol: float = 1e-6) -> bool:
        return bool(abs(w.sum()) <= self.limit + tol)


@dataclass
class VolTarget(Constraint):
    """Ex-ante (diagonal, specific) annual volatility of the book at most `annual` (second-order cone)."""

    annual: float = 0.08
    scale: float = 1.0  # realized over ex-ante risk, measured by the caller (1: trust the model)

    def daily(self) -> float:
        return float(self.annual) / np.sqrt(TRADING_DAYS) / max(float(self.scale), 1e-9)

    def rows(self, day: Day) -> Rows:
        n = day.n
        head = sp.csc_matrix((1, 4 * n))
        body = _w(day, -sp.diags(day.sigma))
        b = np.concatenate([[self.daily()], np.zeros(n)])
        return Rows(sp.vstack([head, body], format="csc"), b, [clarabel.SecondOrderConeT(n + 1)])

    def holds(self, w: np.ndarray, day: Day, tol: float = 1e-6) -> bool:
        return bool(np.sqrt(np.sum((w * day.sigma) ** 2)) <= self.daily() * (1 + 1e-4) + tol)


@dataclass
class TurnoverLimit(Constraint):
    """sum |trade| per day at most `max_daily` (fraction of capital) and at most 2 x `max_monthly` / 21 of
    the book held (one-sided monthly turnover relative to the book; binds on small books). `floor` keeps a
    small budget when the book is empty, so a flat book can start."""

    max_daily: float | None = 0.1
    max_monthly: float | None = 1.2
    days_per_month: float = 21.0
    floor: float = 0.01

    def budget(self, day: Day) -> float | None:
        caps = [] if self.max_daily is None else [float(self.max_daily)]
        if self.max_monthly is not None:
            caps.append(max(2.0 * float(self.max_monthly) / self.days_per_month * day.book, self.floor))
        return min(caps) if caps else None

    def rows(self, day: Day) -> Rows | None:
        budget = self.budget(day)
        if budget is None:
            return None
        return Rows(_t(day, np.ones((1, day.n))), np.array([budget]), [clarabel.NonnegativeConeT(1)])

    def holds(self, w: np.ndarray, day: Day, tol: float = 1e-6) -> bool:
        budget = self.budget(day)
        return budget is None or float(np.abs(w - day.w0).sum()) <= budget + tol


RISK_LIMITS = (MaxWeight, AdvCap, GrossLeverage, NetLeverage, VolTarget, SectorNeutral, DollarNeutral,
               BetaNeutral)


def is_risk_limit(c: Constraint) -> bool:
    """Risk limits hold on the book every day; the turnover budget yields to them when both cannot."""
    return isinstance(c, RISK_LIMITS)
