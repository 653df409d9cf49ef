"""The held-book policy: limits hold on the book actually held, stale positions are unwound, the
measured constants use no future data, and a market without alpha is not traded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from policy_fixtures import toy_market

from ml import policy as pol
from ml.backtest import backtest_daily, market_panel, performance
from ml.costs import Commission, HalfSpread, SquareRootImpact
from ml.portfolio.constraints import (
    AdvCap,
    BetaNeutral,
    Day,
    GrossLeverage,
    MaxWeight,
    SectorNeutral,
    TurnoverLimit,
    VolTarget,
)
from ml.portfolio.from_config import held_book_from_config
from ml.portfolio.held_book import HeldBookPolicy, measured_spread
from ml.portfolio.measured import abdi_ranaldo_spread, measure_edge
from ml.portfolio.optimizer import Borrow, optimize

COSTS = HalfSpread() + Commission(1.0) + SquareRootImpact(1.0)


def _limits(max_weight=0.02, gross=0.6, vol=0.06):
    return [SectorNeutral(), BetaNeutral(), MaxWeight(max_weight), AdvCap(0.05), GrossLeverage(gross),
            VolTarget(vol), TurnoverLimit(0.1, 1.2)]


def _signal_frame(toy, scale=10.0, uncertainty=2.0) -> pd.DataFrame:
    st = toy.state.assign(date=pd.to_datetime(toy.state["date"])).set_index(["date", "symbol"])
    return pd.DataFrame({"expected_return": st["s"] * scale, "uncertainty": uncertainty})


def _signals(toy, mp, scale=10.0, uncertainty=2.0):
    return pol.SignalPanel.from_frame(_signal_frame(toy, scale, uncertainty), mp)


@pytest.fixture(scope="module")
def strong_toy():
    return toy_market(n_symbols=40, n_days=400, edge=0.003)


@pytest.fixture(scope="module")
def strong(strong_toy):
    toy = strong_toy
    mp = market_panel(toy.prices, toy.securities)
    constraints = _limits()
    policy = HeldBookPolicy(costs=COSTS, constraints=constraints, capital=1e7)
    return mp, policy, policy.run(_signals(toy, mp), mp)


def _day(mp, res, t, policy) -> Day:
    w = res.weights[t]
    return Day(w0=w, alpha=np.zeros_like(w), sigma=np.nan_to_num(mp.sigma[t], nan=0.02), beta=mp.beta[t],
               sector=mp.sector, n_sectors=len(mp.sectors), adv_value=mp.adv_value[t],
               spread_bps=np.full(len(w), 10.0), horizon=policy.min_risk_horizon_days, nav=policy.capital, book=float(np.abs(w).sum()))


def test_every_limit_holds_on_the_book_held_every_day(strong):
    mp, policy, res = strong
    traded_days = np.flatnonzero(np.abs(res.weights).sum(axis=1) > 0)
    assert len(traded_days) > 200, "the strong signal should be traded"
    nav = res.constants[res.constants["constant"] == "nav"].set_index("date")["value"].reindex(mp.dates).to_numpy()
    for t in traded_days:
        w = res.weights[t]
        assert np.abs(w).max() <= 0.02 + 1e-9
        assert np.abs(w).sum() <= 0.6 + 1e-9
        vol = np.sqrt(np.sum((w * np.nan_to_num(mp.sigma[t], nan=0.02)) ** 2) * 252)
        assert vol <= 0.06 * 2.0 + 1e-9  # the target, scaled by realized/ex-ante risk (at most x2)
        sector_net = np.abs(w @ np.eye(len(mp.sectors))[mp.sector]).max()
        assert sector_net <= 1e-6
        assert abs(w @ np.nan_to_num(mp.beta[t], nan=1.0)) <= 1e-6
        adv = mp.adv_value[t]
        ok = np.isfinite(adv) & (adv > 0)
        assert np.all(np.abs(w[ok]) * policy.capital * nav[t] <= 0.05 * adv[ok] * (1 + 1e-6) + 1e-6)
        assert np.all(w[~ok] == 0)


def test_a_book_that_drifted_above_its_limits_is_brought_back_within_them_at_once(strong):
    """Prices move the book: a held book above its caps is cut the same day, the turnover budget
    notwithstanding (the budget yields to the risk limits)."""
    mp, policy, res = strong
    t = int(np.flatnonzero(np.abs(res.weights).sum(axis=1) > 0)[-1])
    day = _day(mp, res, t, policy)
    day.w0 = day.w0 * 3.0  # as if prices had tripled the positions
    assert np.abs(day.w0).sum() > 0.6 and np.abs(day.w0).max() > 0.02
    limits = [c for c in _limits() if not isinstance(c, VolTarget)] + [VolTarget(0.06)]
    sol = optimize(day, policy.gamma(), COSTS, limits, Borrow())
    assert sol.status in ("solved", "relaxed")
    for c in limits:
        if not isinstance(c, TurnoverLimit):
            assert c.holds(sol.w, day), type(c).__name__


def test_a_stalled_but_feasible_solve_keeps_the_turnover_budget(strong, monkeypatch):
    """Clarabel sometimes stops with InsufficientProgress at a feasible point. That point is kept (within
    the feasibility tolerance AlmostSolved already meets) instead of dropping the turnover budget, which
    let the objective rebuild the whole book; a stalled point far from feasible is still refused."""
    import ml.portfolio.optimizer as opt

    mp, policy, res = strong
    t = int(np.flatnonzero(np.abs(res.weights).sum(axis=1) > 0)[-1])
    day = _day(mp, res, t, policy)
    day.alpha = np.random.default_rng(1).normal(size=day.n) * 1e-2
    real = opt.clarabel.DefaultSolver

    def stalled(r_prim):
        class Solver:
            def __init__(self, *args):
                self.inner = real(*args)

            def solve(self):
                sol = self.inner.solve()
                return type("Sol", (), {"status": "InsufficientProgress", "r_prim": r_prim, "x": sol.x})()
        return Solver

    monkeypatch.setattr(opt.clarabel, "DefaultSolver", stalled(1e-6))
    kept = optimize(day, policy.gamma(), COSTS, _limits(), Borrow())
    assert kept.status == "solved"
    budget = TurnoverLimit(0.1, 1.2).budget(day)
    assert float(np.abs(kept.w - day.w0).sum()) <= budget * (1 + 1e-4)
    monkeypatch.setattr(opt.clarabel, "DefaultSolver", stalled(1e-2))
    assert optimize(day, policy.gamma(), COSTS, _limits(), Borrow()).status == "fallback"


def test_a_stale_position_is_unwound_once_its_alpha_is_gone(strong):
    """With no alpha left, holding still costs risk (and borrow on a short): day after day the optimizer
    sells, as fast as the turnover budget allows, down to its no-trade band, whose width is
    cost / (gamma * horizon * sigma^2) in weight units; no position ever grows."""
    mp, policy, res = strong
    t = int(np.flatnonzero(np.abs(res.weights).sum(axis=1) > 0)[-1])
    day = _day(mp, res, t, policy)
    w0 = day.w0.copy()
    assert np.abs(w0).max() > 0.01
    gross = [np.abs(w0).sum()]
    for _ in range(30):
        sol = optimize(day, policy.gamma(), COSTS, _limits(), Borrow())
        assert np.all(np.abs(sol.w) <= np.abs(day.w0) + 1e-9), "no position grows without alpha"
        assert np.all(np.sign(sol.w) * np.sign(day.w0) >= 0), "an unwind never flips a position"
        day.w0, day.book = sol.w, float(np.abs(sol.w).sum())
        gross.append(day.book)
    assert gross[1] < gross[0] - 0.01, "the unwind starts at once"
    cost = (10.0 / 2 + 1.0) / 1e4
    band = cost / (policy.gamma() * day.horizon * day.sigma ** 2)
    assert gross[-1] < 0.25 * gross[0]
    assert np.median(np.abs(day.w0[day.w0 != 0]) / band[day.w0 != 0]) <= 1.0 + 1e-3
    # without the neutrality constraints (which keep some hedges a little wider), the turnover budget (which
    # sets the pace) and impact (which splits a trade over days), every position is cut to its band at once
    day.w0, day.book = w0, float(np.abs(w0).sum())
    free = [c for c in _limits() if not isinstance(c, SectorNeutral | BetaNeutral | TurnoverLimit)]
    sol = optimize(day, policy.gamma(), HalfSpread() + Commission(1.0), free, None)
    assert np.all(np.abs(sol.w) <= band * (1 + 1e-3) + 1e-6)
    kept = np.abs(sol.w - day.w0) < 1e-6
    assert np.all(kept | (np.abs(sol.w) >= band * (1 - 1e-3) - 1e-6)), "and no further"


def test_the_measured_edge_uses_no_future_data():
    """Changing every return after day k leaves the edge, its horizon and t-stat at days <= k unchanged."""
    rng = np.random.default_rng(3)
    T, N, k = 300, 30, 180
    er = rng.standard_normal((T, N))
    returns = 0.002 * np.vstack([np.zeros((1, N)), er[:-1]]) + 0.01 * rng.standard_normal((T, N))
    base = measure_edge(er, returns, min_dates=20)
    poisoned = returns.copy()
    poisoned[k + 1:] = 0.05 * rng.standard_normal((T - k - 1, N))
    other = measure_edge(er, poisoned, min_dates=20)
    np.testing.assert_array_equal(base.edge[: k + 1], other.edge[: k + 1])
    np.testing.assert_array_equal(base.horizon[: k + 1], other.horizon[: k + 1])
    np.testing.assert_array_equal(base.tstat[: k + 1], other.tstat[: k + 1])
    assert not np.array_equal(base.edge, other.edge)
    assert base.edge[-1] > 0 and base.horizon[-1] >= 1, "a planted one-day edge is measured"


def test_the_edge_of_a_signal_without_alpha_is_zero_and_the_book_abstains():
    toy = toy_market(n_symbols=40, n_days=400, edge=0.0)
    mp = market_panel(toy.prices, toy.securities)
    res = HeldBookPolicy(costs=COSTS, constraints=_limits(), capital=1e7).run(_signals(toy, mp), mp)
    daily = backtest_daily(res.weights, res.trades, res.costs, mp, start=res.start)
    assert np.abs(res.weights).sum(axis=1).max() < 0.05
    assert performance(daily)["ann_return_net"] > -0.0025
    reasons = pd.Series(res.reasons[res.start:].ravel()).map(pol.REASONS)
    assert reasons.value_counts().idxmax() == "abstain: no measurable edge"
    const = res.constants.pivot_table(index="date", columns="constant", values="value")
    assert (const["edge_per_bp"] == 0).mean() > 0.9


def test_constants_are_written_per_date_and_spreads_say_where_they_come_from(strong):
    mp, _, res = strong
    names = set(res.constants["constant"])
    assert {"edge_per_bp", "holding_horizon_days", "edge_tstat", "spread_median_bps", "spread_share_quoted",
            "spread_share_estimated", "spread_share_fallback", "realized_risk_scale", "risk_aversion"} <= names
    assert res.constants["date"].min() >= mp.dates[res.start]
    spread, source, _ = measured_spread(mp, 10.0)
    assert np.all(spread > 0)
    assert set(np.unique(source)) <= {0, 1, 2}


def _bid_ask_days(spreads: np.ndarray, T: int = 600, seed: int = 0) -> np.ndarray:
    """Intraday trades bouncing between bid and ask around a random walk: (T days, 20 trades, names)."""
    rng = np.random.default_rng(seed)
    N = len(spreads)
    mid = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal((T * 20, N)), axis=0) / np.sqrt(20))
    trade = mid * (1 + spreads / 2 * rng.choice([-1, 1], size=mid.shape))
    return trade.reshape(T, 20, N)


def test_abdi_ranaldo_recovers_planted_spreads_and_refuses_ranges_without_bid_ask_bounce():
    """Where names have spreads of their own, the close/mid-range estimator finds them (estimates are
    reliable: the two halves of the window agree); where highs and lows carry no bid-ask bounce (random
    ranges, as in the synthetic markets), it estimates nothing and the fallback is used; a closes-only
    panel gives no estimate, not zero."""
    spreads = np.linspace(0.001, 0.008, 30)
    days = _bid_ask_days(spreads)
    est, reliability = abdi_ranaldo_spread(days[:, -1, :], days.max(axis=1), days.min(axis=1))
    assert np.nanmedian(reliability[300:]) > 0.6
    level = np.nanmean(est[300:], axis=0)
    assert np.corrcoef(level, spreads)[0, 1] > 0.9
    assert 0.7 < np.median(level / (spreads * 1e4)) < 1.4  # small spreads are the noisiest
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal((600, 30)), axis=0))
    high, low = close * np.exp(np.abs(rng.normal(0, 0.01, close.shape))), close * np.exp(-np.abs(rng.normal(0, 0.01, close.shape)))
    noise, noise_rel = abdi_ranaldo_spread(close, high, low)
    assert np.isnan(noise).all() and np.nanmedian(noise_rel) < 0.3
    closes_only, _ = abdi_ranaldo_spread(close, close, close)
    assert np.isnan(closes_only).all()


def test_borrow_is_charged_on_the_short_side_only():
    b = Borrow(annual_bps=50.0)
    cost = b.cost(np.array([0.02, -0.02, 0.0]))
    assert cost[0] == 0 and cost[2] == 0 and cost[1] == pytest.approx(0.02 * 50 / 1e4 / 252)


def test_the_configured_policy_is_the_held_book_optimizer():
    policy = pol.policy_from_config(pol.load_config())
    assert isinstance(policy, HeldBookPolicy)
    kinds = {type(c) for c in policy.constraints}
    assert {SectorNeutral, BetaNeutral, MaxWeight, AdvCap, GrossLeverage, VolTarget, TurnoverLimit} <= kinds
    with pytest.raises(ValueError, match="unknown constraint"):
        held_book_from_config({"optimizer": {}, "constraints": {"max_wieght": {}}})


def test_the_held_book_up_to_a_date_ignores_everything_after_it():
    """Prices, highs and lows after day k changed: every decision, cost and measured constant up to k is
    unchanged (the edge, the spread estimate and the realized-risk scale all use data known at t)."""
    toy = toy_market(n_symbols=30, n_days=320, edge=0.003)
    k = 250
    prices = toy.prices.copy()
    late = pd.to_datetime(prices["date"]) > pd.bdate_range("2020-01-01", periods=320)[k]
    rng = np.random.default_rng(9)
    for col in ("close", "high", "low", "open"):
        if col in prices:
            prices.loc[late, col] = prices.loc[late, col] * np.exp(rng.normal(0, 0.05, late.sum()))
    base_mp = market_panel(toy.prices, toy.securities)
    other_mp = market_panel(prices, toy.securities)
    policy = HeldBookPolicy(costs=COSTS, constraints=_limits(), capital=1e7, min_edge_dates=40)
    a = policy.run(_signals(toy, base_mp), base_mp)
    b = policy.run(_signals(toy, other_mp), other_mp)
    assert np.abs(a.weights[:k]).sum() > 0
    np.testing.assert_array_equal(a.weights[: k + 1], b.weights[: k + 1])
    np.testing.assert_array_equal(a.costs[: k + 1], b.costs[: k + 1])
    cut = base_mp.dates[k]
    ca, cb = (r.constants[r.constants["date"] <= cut].reset_index(drop=True) for r in (a, b))
    pd.testing.assert_frame_equal(ca, cb)
    assert not np.array_equal(a.weights[k + 1:], b.weights[k + 1:])


def test_the_book_is_the_same_whether_or_not_the_signals_publish_the_calibrations_track_record(strong, strong_toy):
    """The calibration may scale each date's published expected returns by its own track record
    (`calibration.track_record`, kept per row in `track_record_scale`, floored above 0). The policy reads
    the curve's own values back (`ml.calibration.unscale`), because it measures its own edge per bp of
    expected return: the book is the one the unscaled signals give. Read as plain numbers instead, the
    scaled signals give another book, so the check can fail."""
    from ml.calibration import TRACK_RECORD_FLOOR, rescale

    mp, policy, res = strong
    plain = _signal_frame(strong_toy)  # the signals the `strong` book was run on, with an interval
    plain = plain.assign(lower=plain["expected_return"] - 30.0, upper=plain["expected_return"] + 30.0)
    dates = plain.index.get_level_values("date")
    # a scale that decays over the dates, at the floor for a stretch (nothing delivered so far)
    position = dates.map({d: i for i, d in enumerate(dates.unique().sort_values())}).to_numpy()
    b = np.where((position > 150) & (position < 200), TRACK_RECORD_FLOOR, np.linspace(1.0, 0.2, len(plain)))
    published = rescale(plain, b)
    assert (published["expected_return"].abs() < plain["expected_return"].abs() * 0.99).mean() > 0.9
    read = policy.run(pol.SignalPanel.from_frame(published, mp), mp)
    np.testing.assert_allclose(read.weights, res.weights, atol=1e-5)  # the optimizer iterates: rounding
    naive = policy.run(pol.SignalPanel.from_frame(published.drop(columns="track_record_scale"), mp), mp)
    assert np.abs(naive.weights - res.weights).max() > 1e-3
