"""The target-tracking policy, kept for comparison (the configured policy is the held-book optimizer,
`ml.portfolio.held_book`): small composable pieces, each with its parameters in config/policy.yaml
(`ml.policy.TARGET_POLICY`).

    policy = CostAwarePolicy(
        costs=HalfSpread() + Commission(1.0) + SquareRootImpact(1.0),
        abstention=Abstention(z=1.0),          # no position where the signal is not distinguishable from 0
        threshold=CostThreshold(multiple=1.0), # trade only where the edge beats the round-trip cost
        risk=RiskBudget(...),                  # size, cap, lever and neutralize the targets
        turnover=TurnoverBudget(...),          # move slowly, most valuable trades first
    )
    result = policy.run(signals, market)      # weights, trades, costs and a reason per name and date

The plan (targets, abstentions, threshold) is vectorized over dates and names; only the walk from
yesterday's weights to today's (turnover budget, partial moves, hysteresis, delistings) loops over
dates, vectorized across names, because each day's trades depend on the previous day's holdings.
Decisions at the close of t use signals and market data of t and earlier only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from ml.backtest import TRADING_DAYS, MarketPanel
from ml.costs import CostModel, fill_row_median
from ml.portfolio.signals import (
    AB_NOSIGNAL,
    CAPPED,
    CAPPED_NEUTRAL,
    CLOSED,
    HOLD_COST,
    HOLD_TARGET,
    NONE,
    REFUSED_COST,
    TRADE,
    Abstention,
    PolicyResult,
    SignalPanel,
)


# ================================================================================ components
@dataclass
class CostThreshold:
    """Enter only where the expected edge over the holding period beats the round-trip cost of the
    intended position: edge > multiple * 2 * one-way cost (bps), the one-way cost taken for trades of
    `trade_fraction` of the position at a time (a policy that moves part of the way each day pays
    impact on slices, not on the whole position).

    edge = |er| / horizon * sum_{d < holding_days} signal_decay ** d: the daily expected return of the
    horizon, carried over the holding period while the signal decays by `signal_decay` per day (its
    day-to-day autocorrelation; 1.0 = persistent, edge = |er| * holding_days / horizon)."""

    multiple: float = 1.0
    holding_days: float | None = None  # None: the signal's horizon
    trade_fraction: float = 1.0
    signal_decay: float = 1.0

    def edge_multiple(self, horizon: int) -> float:
        holding = int(round(self.holding_days or horizon))
        return float(np.sum(self.signal_decay ** np.arange(holding))) / horizon

    def passes(self, er_bps: np.ndarray, weight: np.ndarray, costs: CostModel, market: MarketPanel,
               capital: float, horizon: int) -> np.ndarray:
        edge = np.abs(np.nan_to_num(er_bps)) * self.edge_multiple(horizon)
        rt = costs.round_trip_bps(np.abs(weight) * self.trade_fraction, market.costs_at(slice(None)), capital)
        return edge > self.multiple * rt


def neutralize(w: np.ndarray, mask: np.ndarray, market: MarketPanel, neutral: tuple[str, ...]) -> np.ndarray:
    """Zero each row's dollar, sector and/or beta exposure (measured over every name) by the least
    change to the names in `mask` (vectorized over rows); names outside `mask` keep their weight.
    Sector neutrality implies dollar neutrality."""
    m = mask.astype(float)
    onehot = market.sector_onehot()
    with np.errstate(invalid="ignore", divide="ignore"):
        if "sector" in neutral:
            counts = m @ onehot
            excess = np.where(counts > 0, (w @ onehot) / counts, 0.0)
            w = w - excess[:, market.sector] * m
        elif "dollar" in neutral:
            n = m.sum(axis=1, keepdims=True)
            w = w - np.where(n > 0, w.sum(axis=1, keepdims=True) / np.maximum(n, 1), 0.0) * m
        if "beta" in neutral:
            beta = np.nan_to_num(market.beta, nan=1.0)
            b = beta * m
            if "sector" in neutral:
                counts = m @ onehot
                bm = np.where(counts > 0, (b @ onehot) / counts, 0.0)
                d = (b - bm[:, market.sector]) * m
            elif "dollar" in neutral:
                d = (b - b.sum(axis=1, keepdims=True) / np.maximum(m.sum(axis=1, keepdims=True), 1)) * m
            else:
                d = b
            exposure = (w * beta).sum(axis=1, keepdims=True)
            dd = (d * beta).sum(axis=1, keepdims=True)
            w = w - np.where(np.abs(dd) > 1e-12, exposure / np.where(np.abs(dd) > 1e-12, dd, 1.0), 0.0) * d
    return w


@dataclass
class RiskBudget:
    """Size by confidence-adjusted expected return over risk, then cap, lever and neutralize.

    raw_i = er_adj_i / sigma_i ** risk_exponent, with er_adj = er * er^2 / (er^2 + uncertainty^2)
    (a signal-to-noise shrinkage); each date is scaled to the gross leverage that gives `target_vol`
    of ex-ante (diagonal, specific) risk, at most `gross_leverage`; positions are capped at
    min(max_weight, max_adv_fraction * ADV / capital) and made neutral by alternating projections."""

    risk_exponent: float = 1.0
    max_weight: float = 0.03
    max_adv_fraction: float | None = 0.05
    gross_leverage: float = 2.0
    target_vol: float | None = 0.08
    neutral: tuple[str, ...] = ("dollar", "sector", "beta")
    n_iter: int = 20

    def adjusted(self, signals: SignalPanel) -> np.ndarray:
        er = np.nan_to_num(signals.expected_return)
        unc = np.nan_to_num(signals.uncertainty)
        with np.errstate(invalid="ignore", divide="ignore"):
            shrink = np.where(er * er + unc * unc > 0, er * er / (er * er + unc * unc), 0.0)
        return er * shrink

    def risk_price(self, er_adj: np.ndarray, target: np.ndarray, market: MarketPanel) -> np.ndarray:
        """rho[t, i] = c_t * sigma_i ** risk_exponent (bps per unit weight): the price of risk implied
        by the targets, c_t fitted per date so that er_adj ~ rho * target."""
        s = fill_row_median(market.sigma, 0.02) ** self.risk_exponent
        x = s * target
        with np.errstate(invalid="ignore", divide="ignore"):
            c = (er_adj * x).sum(axis=1, keepdims=True) / (x * x).sum(axis=1, keepdims=True)
        return np.where(np.isfinite(c) & (c > 0), c, 0.0) * s

    def caps(self, market: MarketPanel, capital: float) -> np.ndarray:
        cap = np.full(market.shape, float(self.max_weight))
        if self.max_adv_fraction is not None:
            adv = np.nan_to_num(market.adv_value, nan=0.0)
            cap = np.minimum(cap, self.max_adv_fraction * adv / capital)
        return cap

    def targets(self, er_adj: np.ndarray, eligible: np.ndarray, market: MarketPanel, capital: float) -> np.ndarray:
        sigma = market.sigma
        sig_ok = np.isfinite(sigma) & (sigma > 0)
        mask = eligible & sig_ok & (er_adj != 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = np.where(mask, er_adj / np.where(sig_ok, sigma, 1.0) ** self.risk_exponent, 0.0)
        w = neutralize(raw, mask, market, self.neutral)
        w = np.where(mask, w, 0.0)
        gross = np.abs(w).sum(axis=1, keepdims=True)
        w = np.where(gross > 0, w / np.where(gross > 0, gross, 1.0), 0.0)
        lever = np.full((len(w), 1), self.gross_leverage)
        if self.target_vol is not None:
            vol = np.sqrt((w * w * np.where(sig_ok, sigma, 0.0) ** 2).sum(axis=1, keepdims=True) * TRADING_DAYS)
            with np.errstate(invalid="ignore", divide="ignore"):
                lever = np.minimum(lever, np.where(vol > 0, self.target_vol / vol, 0.0))
        w = w * lever
        cap = np.where(mask, self.caps(market, capital), 0.0)
        for _ in range(self.n_iter):  # alternate: cap, then neutralize with the names under their cap
            w = np.clip(w, -cap, cap)
            w = neutralize(w, mask & (np.abs(w) < cap * (1 - 1e-9)), market, self.neutral)
        return w


@dataclass
class TurnoverBudget:
    """Trade slowly: move `speed` of the way to the target each day, skip trades under `min_trade`,
    and spend at most `max_daily_turnover` (sum |trade|, fraction of capital) per day on voluntary
    trades, most valuable first (value = signed expected return of the trade minus its cost, bps).
    `max_monthly_turnover` adds a budget relative to the book: one-sided monthly turnover (the share
    of the book replaced in a month, as `ml.backtest.performance` reports it) of at most this much,
    i.e. at most 2 x max_monthly_turnover / 21 x the target's gross exposure traded per day. It binds
    on small books, where a budget in fractions of capital alone would let the book churn.

    With `exposures` (names x factors, e.g. sector dummies and beta) the choice is a small linear
    program: maximize the value of the executed fractions f of each desired trade subject to the budget
    and to the executed trade having the same exposures as the uniformly scaled one (so a neutral
    book stays neutral); without, it is the greedy fill. Forced trades (delistings) are always done."""

    max_daily_turnover: float | None = 0.2
    speed: float = 0.3
    min_trade: float = 1e-4
    max_monthly_turnover: float | None = None
    days_per_month: float = 21.0

    def budget(self, book: float | None = None) -> float | None:
        """Today's budget for voluntary trades (sum |trade|, fraction of capital); None: unlimited."""
        caps = [] if self.max_daily_turnover is None else [float(self.max_daily_turnover)]
        if self.max_monthly_turnover is not None and book is not None:
            caps.append(2.0 * float(self.max_monthly_turnover) / float(self.days_per_month) * float(book))
        return min(caps) if caps else None

    def limit(self, desired: np.ndarray, value: np.ndarray, forced: np.ndarray,
              exposures: np.ndarray | None = None, book: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Executed trades and a mask of the voluntary trades the budget cut (`book`: the gross
        exposure the monthly budget is relative to)."""
        size = np.abs(desired)
        vol = ~forced & (size > 0)
        total = size[vol].sum()
        budget = self.budget(book)
        if budget is None or total <= budget:
            return desired, np.zeros(desired.shape, bool)
        if budget <= 0:
            return np.where(forced, desired, 0.0), vol
        frac = np.where(forced, 1.0, 0.0)
        idx = np.flatnonzero(vol)
        f = None
        if exposures is not None:
            f = _budget_lp(size[idx], value[idx], (exposures[idx] * desired[idx, None]).T, budget / total, budget)
        if f is None:  # greedy: fractional knapsack by value
            order = np.argsort(-value[idx], kind="stable")
            sz = size[idx][order]
            got = np.clip(budget - (np.cumsum(sz) - sz), 0.0, sz)
            f = np.empty(len(idx))
            f[order] = got / sz
        frac[idx] = f
        return desired * frac, vol & (frac < 1.0 - 1e-9)


def _budget_lp(size: np.ndarray, value: np.ndarray, exposure: np.ndarray, alpha: float,
               budget: float) -> np.ndarray | None:
    """max sum f*size*value  s.t.  sum f*size <= budget,  exposure @ f = alpha * exposure @ 1,  0<=f<=1."""
    keep = np.abs(exposure).sum(axis=1) > 1e-14
    res = linprog(-(size * value), A_ub=size[None, :], b_ub=[budget], A_eq=exposure[keep],
                  b_eq=alpha * exposure[keep].sum(axis=1), bounds=(0.0, 1.0), method="highs")
    return np.clip(res.x, 0.0, 1.0) if res.status == 0 else None


# ================================================================================ simulation
@dataclass
class Plan:
    """What the policy wants each date before it knows its holdings: targets (dates x names), a
    reason code per name, and where a held position may simply be kept (edge below cost)."""

    target: np.ndarray
    reason: np.ndarray
    keep_if_held: np.ndarray
    er: np.ndarray  # bps over the horizon
    risk_price: np.ndarray | None = None  # bps per unit of weight away from target (see `trade_value`)


def simulate(
    plan: Plan,
    market: MarketPanel,
    costs: CostModel,
    capital: float,
    turnover: TurnoverBudget | None,
    neutral: tuple[str, ...] = (),
    start: int = 0,
) -> PolicyResult:
    """Walk from each day's drifted holdings toward the plan's targets (loop over dates, vectorized
    over names). Names that stopped trading are closed at their last price (cost at their last known
    spread); `neutral` re-balances the day's trades so the book stays neutral."""
    T, N = market.shape
    weights, trades, cost = np.zeros((T, N)), np.zeros((T, N)), np.zeros((T, N))
    reasons = np.zeros((T, N), np.int8)
    w = np.zeros(N)
    r_all = np.nan_to_num(market.returns)
    onehot = market.sector_onehot()
    tb = turnover or TurnoverBudget(max_daily_turnover=None, speed=1.0, min_trade=0.0)
    exposures = _exposure_matrices(market, neutral) if neutral else None
    for t in range(start, T):
        r = r_all[t]
        grown = w * (1.0 + r)
        w_pre = grown / (1.0 + (w * r).sum())
        tradable = market.tradable[t]
        forced = (w_pre != 0) & ~tradable
        keep = plan.keep_if_held[t] & (np.sign(w_pre) == np.sign(plan.er[t])) & (w_pre != 0)
        target = np.where(keep, w_pre, plan.target[t])
        target = np.where(tradable, target, 0.0)
        gap = target - w_pre
        desired = np.where(forced, gap, tb.speed * gap)
        dust = (target == 0) & (np.abs(w_pre) < max(tb.min_trade, 1e-12) * 2)
        desired = np.where(dust & tradable, gap, desired)
        small = (np.abs(desired) < tb.min_trade) & ~forced & ~dust
        desired = np.where(small, 0.0, desired)
        inputs = market.costs_at(t)
        value = trade_value(plan, t, gap, desired) - costs.bps(np.abs(desired) * capital, inputs)
        held, wanted = np.abs(w_pre).sum(), np.abs(target).sum()
        book = max(held, 0.1 * wanted)  # the book held (a tenth of the target's to start from flat)
        executed, capped = tb.limit(desired, value, forced, exposures[t] if exposures is not None else None,
                                    book=book)
        budget = tb.budget(book)  # the labels only: did the budget bind (was it spent)?
        spent = budget is not None and np.abs(executed[~forced]).sum() >= budget * (1 - 1e-6)
        if neutral:
            allowed = tradable & ~forced & ((plan.target[t] != 0) | (w_pre != 0))
            executed = _neutral_trades(w_pre, executed, allowed, market.beta[t], onehot, neutral)
        executed = np.where(np.abs(executed) < 1e-12, 0.0, executed)
        w = w_pre + executed
        w = np.where(np.abs(w) < 1e-12, 0.0, w)
        weights[t], trades[t] = w, executed
        cost[t] = costs.cost(executed, inputs, capital)
        code = np.where(keep, HOLD_COST, plan.reason[t])
        active = code == NONE
        code = np.where(active, np.where(executed != 0, TRADE, HOLD_TARGET), code)
        code = np.where(capped, cut_reasons(value, spent), code)
        code = np.where(forced, CLOSED, code)
        code = np.where(~tradable & ~forced, NONE, code)
        reasons[t] = code
    return PolicyResult(weights=weights, trades=trades, costs=cost, reasons=reasons, target=plan.target,
                        start=start)


def cut_reasons(value: np.ndarray, spent: bool) -> np.ndarray:
    """The reason code of each trade the turnover budget's fill cut (a label, never a decision): worth
    no more than its cost (value <= 0 bps after costs) -> refused; else capped by the budget when it
    was spent that day, by the fill's exposure constraints when it was not."""
    return np.where(value <= 0, REFUSED_COST, CAPPED if spent else CAPPED_NEUTRAL).astype(np.int8)


def trade_value(plan: Plan, t: int, gap: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """Expected value (bps of the traded amount, before costs) of each desired trade.

    With a risk price rho_i (the plan's targets solve er_i = rho_i * w_i, so rho_i * (target_i - w_i)
    is the marginal risk-adjusted return of holding w_i), moving |d| along a gap g earns
    rho * (|g| - |d| / 2) per unit traded: catching up on under-held names and trimming over-held
    ones both count. Without one, the trade's signed expected return."""
    if plan.risk_price is None:
        return np.sign(desired) * plan.er[t]
    return plan.risk_price[t] * (np.abs(gap) - 0.5 * np.abs(desired))


def _exposure_matrices(market: MarketPanel, neutral: tuple[str, ...]) -> np.ndarray:
    """Per date, the names x factors matrix of the exposures kept neutral (sector dummies or a dollar
    column, then beta)."""
    T, N = market.shape
    cols = []
    if "sector" in neutral:
        cols.append(np.broadcast_to(market.sector_onehot()[None], (T, N, len(market.sectors))))
    elif "dollar" in neutral:
        cols.append(np.ones((T, N, 1)))
    if "beta" in neutral:
        cols.append(np.nan_to_num(market.beta, nan=1.0)[:, :, None])
    return np.concatenate(cols, axis=2) if cols else np.zeros((T, N, 0))


def _neutral_trades(w_pre: np.ndarray, trade: np.ndarray, movable: np.ndarray, beta: np.ndarray,
                    onehot: np.ndarray, neutral: tuple[str, ...]) -> np.ndarray:
    """Add the least-norm correction, spread over the names trading today (or, where a constraint has
    none, over every movable name), that zeroes the book's dollar/sector/beta exposures."""
    cols = []
    if "sector" in neutral:
        cols.append(onehot)
    elif "dollar" in neutral:
        cols.append(np.ones((len(w_pre), 1)))
    if "beta" in neutral:
        cols.append(np.nan_to_num(beta, nan=1.0)[:, None])
    if not cols:
        return trade
    X = np.hstack(cols)
    w_new = w_pre + trade
    exposure = X.T @ w_new
    if np.abs(exposure).max() < 1e-10:
        return trade
    for active in ((np.abs(trade) > 0) & movable, movable):
        Xa = X * active[:, None]
        lam, *_ = np.linalg.lstsq(Xa.T @ Xa, exposure, rcond=None)
        corr = -(Xa @ lam)
        if np.abs(X.T @ (w_new + corr)).max() < 1e-8:
            return trade + corr
    return trade + corr


# ================================================================================ policies
@dataclass
class CostAwarePolicy:
    """Abstain, threshold on cost, size within the risk budget, then trade slowly under a turnover
    budget. Any component set to None is skipped."""

    costs: CostModel
    risk: RiskBudget = field(default_factory=RiskBudget)
    abstention: Abstention | None = field(default_factory=Abstention)
    threshold: CostThreshold | None = field(default_factory=CostThreshold)
    turnover: TurnoverBudget | None = field(default_factory=TurnoverBudget)
    capital: float = 5e7
    horizon: int = 5

    def plan(self, signals: SignalPanel, market: MarketPanel) -> Plan:
        reason = (self.abstention.reasons(signals) if self.abstention is not None
                  else np.where(np.isfinite(signals.expected_return), NONE, AB_NOSIGNAL).astype(np.int8))
        eligible = (reason == NONE) & market.tradable
        er_adj = self.risk.adjusted(signals)
        target = self.risk.targets(er_adj, eligible, market, self.capital)
        keep = np.zeros(market.shape, bool)
        if self.threshold is not None:
            ok = self.threshold.passes(signals.expected_return, target, self.costs, market, self.capital,
                                       self.horizon)
            below = eligible & ~ok
            reason = np.where(below, HOLD_COST, reason).astype(np.int8)
            keep = below
            target = self.risk.targets(er_adj, eligible & ok, market, self.capital)
        return Plan(target=target, reason=reason, keep_if_held=keep, er=np.nan_to_num(signals.expected_return),
                    risk_price=self.risk.risk_price(er_adj, target, market))

    def run(self, signals: SignalPanel, market: MarketPanel, start: int | None = None) -> PolicyResult:
        start = signals.first_date() if start is None else start
        return simulate(self.plan(signals, market), market, self.costs, self.capital, self.turnover,
                        neutral=tuple(self.risk.neutral), start=start)


@dataclass
class DecilePolicy:
    """The naive comparison: every day, long the top and short the bottom score decile, equal weight,
    `gross_leverage` in total, full rebalance, no cost awareness (costs are still charged)."""

    costs: CostModel
    n_bins: int = 10
    gross_leverage: float = 2.0
    capital: float = 5e7

    def plan(self, signals: SignalPanel, market: MarketPanel) -> Plan:
        er = signals.expected_return
        ok = np.isfinite(er) & market.tradable
        ranks = pd.DataFrame(np.where(ok, er, np.nan)).rank(axis=1, pct=True, method="first").to_numpy()
        top, bottom = ranks > 1 - 1.0 / self.n_bins, ranks <= 1.0 / self.n_bins
        n_top = top.sum(axis=1, keepdims=True)
        n_bot = bottom.sum(axis=1, keepdims=True)
        half = self.gross_leverage / 2.0
        target = np.where(top, half / np.maximum(n_top, 1), 0.0) - np.where(bottom, half / np.maximum(n_bot, 1), 0.0)
        reason = np.where(np.isfinite(er), NONE, AB_NOSIGNAL).astype(np.int8)
        return Plan(target=target, reason=reason, keep_if_held=np.zeros(market.shape, bool), er=np.nan_to_num(er))

    def run(self, signals: SignalPanel, market: MarketPanel, start: int | None = None) -> PolicyResult:
        start = signals.first_date() if start is None else start
        return simulate(self.plan(signals, market), market, self.costs, self.capital, None, start=start)
