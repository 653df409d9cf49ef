"""The policy layer: cost components, abstention, the cost threshold, the risk budget (caps, leverage,
neutrality), the turnover budget, reasons, the naive comparison policy and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from policy_fixtures import toy_market

from ml import policy as pol
from ml.backtest import market_panel
from ml.costs import Commission, CostInputs, CostModel, HalfSpread, SquareRootImpact, cost_model_from_config

CAPITAL = 1e7


@pytest.fixture(scope="module")
def market():
    toy = toy_market(n_symbols=40, n_days=300)
    return market_panel(toy.prices, toy.securities), toy


def _signals(mp, er, unc=None, lower=None, upper=None) -> pol.SignalPanel:
    shape = mp.shape
    er = np.broadcast_to(er, shape).astype(float)
    unc = np.zeros(shape) if unc is None else np.broadcast_to(unc, shape).astype(float)
    lower = er - 500 if lower is None else np.broadcast_to(lower, shape).astype(float)
    upper = er + 500 if upper is None else np.broadcast_to(upper, shape).astype(float)
    return pol.SignalPanel(er.copy(), lower.copy(), upper.copy(), unc.copy())


def _true_signals(mp, toy, scale_bps=40.0, unc=2.0) -> pol.SignalPanel:
    state = toy.state.set_index(["date", "symbol"])["s"]
    er = mp.grid(state) * scale_bps
    return _signals(mp, er, unc=np.where(np.isfinite(er), unc, np.nan))


def _policy(**kw) -> pol.CostAwarePolicy:
    costs = HalfSpread() + Commission(1.0) + SquareRootImpact(1.0)
    return pol.CostAwarePolicy(costs=costs, capital=CAPITAL, **kw)


# ---------------------------------------------------------------------------------------- costs
def test_cost_components_follow_their_formulas():
    inputs = CostInputs(spread_bps=np.array([10.0, np.nan]), adv_value=np.array([1e6, 4e6]),
                        sigma=np.array([0.02, 0.01]))
    value = np.array([1e4, 4e4])
    assert HalfSpread(fallback_bps=8.0).bps(value, inputs).tolist() == [5.0, 4.0]
    assert Commission(rate_bps=1.5).bps(value, inputs).tolist() == [1.5, 1.5]
    impact = SquareRootImpact(k=0.5).bps(value, inputs)
    assert impact == pytest.approx([0.5 * 0.02 * np.sqrt(0.01) * 1e4, 0.5 * 0.01 * np.sqrt(0.01) * 1e4])


def test_cost_models_compose_by_addition_and_from_config():
    model = HalfSpread() + Commission(2.0) + SquareRootImpact(1.0)
    assert isinstance(model, CostModel) and len(model.components) == 3
    inputs = CostInputs(np.array([10.0]), np.array([1e6]), np.array([0.02]))
    bps = model.bps(np.array([1e4]), inputs)[0]
    assert bps == pytest.approx(5 + 2 + 0.02 * 0.1 * 1e4)
    cost = model.cost(np.array([-0.001]), inputs, capital=1e7)  # a 1e4 sale
    assert cost[0] == pytest.approx(0.001 * bps / 1e4)
    assert model.cost(np.array([0.0]), inputs, 1e7)[0] == 0.0
    cfg = cost_model_from_config({"half_spread": {}, "commission": {"rate_bps": 2.0}, "sqrt_impact": False})
    assert [type(c).__name__ for c in cfg.components] == ["HalfSpread", "Commission"]


def test_impact_grows_with_the_square_root_of_participation():
    inputs = CostInputs(np.array([0.0]), np.array([1e6]), np.array([0.02]))
    small, big = (SquareRootImpact(1.0).bps(np.array([v]), inputs)[0] for v in (1e4, 4e4))
    assert big == pytest.approx(2 * small)


# ---------------------------------------------------------------------------------------- abstention
def test_abstains_when_interval_straddles_zero(market):
    mp, _ = market
    sig = _signals(mp, er=np.tile([10.0, -10.0, 3.0, -3.0], 10), unc=4.0)
    reasons = pol.Abstention(interval="expected", z=1.0, max_uncertainty_ratio=None).reasons(sig)
    assert (reasons[:, 2::4] == pol.AB_STRADDLE).all() and (reasons[:, 0::4] == pol.NONE).all()
    pred = _signals(mp, er=np.tile([10.0, -10.0], 20), lower=np.tile([2.0, -400.0], 20),
                    upper=np.tile([50.0, 300.0], 20))
    reasons = pol.Abstention(interval="prediction", max_uncertainty_ratio=None).reasons(pred)
    assert (reasons[:, 0::2] == pol.NONE).all() and (reasons[:, 1::2] == pol.AB_STRADDLE).all()


def test_abstains_when_uncertainty_exceeds_signal(market):
    mp, _ = market
    sig = _signals(mp, er=np.tile([10.0, 10.0], 20), unc=np.tile([5.0, 12.0], 20))
    reasons = pol.Abstention(interval=None, max_uncertainty_ratio=1.0).reasons(sig)
    assert (reasons[:, 1::2] == pol.AB_UNCERTAIN).all() and (reasons[:, 0::2] == pol.NONE).all()


def test_abstained_names_get_no_position_and_say_why(market):
    mp, toy = market
    sig = _true_signals(mp, toy)
    sig.uncertainty[:, :10] = 1e4  # names 0..9: hopeless signals
    res = _policy(turnover=None).run(sig, mp)
    assert np.abs(res.weights[:, :10]).max() == 0.0
    frame = res.positions_frame(mp)
    assert set(frame.loc[frame["symbol"].isin(mp.symbols[:10]), "reason"]) <= {
        "abstain: interval straddles zero", "flat"}


# ---------------------------------------------------------------------------------------- threshold
def test_no_position_where_edge_below_round_trip_cost(market):
    mp, toy = market
    sig = _true_signals(mp, toy, scale_bps=4.0, unc=0.0)  # ~4 bps edges vs spreads of 2-30 bps
    res = _policy(turnover=None, threshold=pol.CostThreshold(multiple=1.0)).run(sig, mp)
    spread = np.nanmean(mp.spread_bps, axis=0)
    wide = spread > 12  # round trip > 12 bps + commission: no 4-bp edge pays for it
    assert np.abs(res.weights[:, wide]).max() == 0.0
    assert (res.reasons[:, wide][mp.tradable[:, wide]] != pol.TRADE).all()
    assert (res.reasons == pol.HOLD_COST).any()
    free = _policy(turnover=None, threshold=None).run(sig, mp)
    assert np.abs(free.weights[:, wide]).max() > 0.0


# ---------------------------------------------------------------------------------------- risk budget
def test_targets_are_dollar_sector_and_beta_neutral_within_caps_and_leverage(market):
    mp, toy = market
    sig = _true_signals(mp, toy)
    risk = pol.RiskBudget(max_weight=0.05, max_adv_fraction=None, gross_leverage=1.5, target_vol=None)
    eligible = np.isfinite(sig.expected_return) & mp.tradable
    w = risk.targets(risk.adjusted(sig), eligible, mp, CAPITAL)[70:]
    assert np.abs(w.sum(axis=1)).max() < 1e-6
    assert np.abs(w @ mp.sector_onehot()).max() < 1e-6
    assert np.abs((w * mp.beta[70:]).sum(axis=1)).max() < 1e-6
    assert np.abs(w).max() <= 0.05 + 1e-9
    assert np.abs(w).sum(axis=1).max() <= 1.5 + 1e-9
    assert np.corrcoef(w[eligible[70:]], sig.expected_return[70:][eligible[70:]])[0, 1] > 0.5


def test_positions_are_capped_by_liquidity(market):
    mp, toy = market
    sig = _true_signals(mp, toy)
    risk = pol.RiskBudget(max_weight=0.05, max_adv_fraction=0.01, target_vol=None)
    eligible = np.isfinite(sig.expected_return) & mp.tradable
    w = risk.targets(risk.adjusted(sig), eligible, mp, CAPITAL)
    cap = 0.01 * np.nan_to_num(mp.adv_value) / CAPITAL
    assert (np.abs(w) <= np.minimum(cap, 0.05) + 1e-12).all()


def test_vol_target_sets_the_gross_leverage(market):
    mp, toy = market
    sig = _true_signals(mp, toy)
    eligible = np.isfinite(sig.expected_return) & mp.tradable
    low = pol.RiskBudget(target_vol=0.02, max_adv_fraction=None, max_weight=1.0)
    high = pol.RiskBudget(target_vol=0.04, max_adv_fraction=None, max_weight=1.0)
    g_low = np.abs(low.targets(low.adjusted(sig), eligible, mp, CAPITAL)).sum(axis=1)[100:]
    g_high = np.abs(high.targets(high.adjusted(sig), eligible, mp, CAPITAL)).sum(axis=1)[100:]
    assert np.allclose(g_high, 2 * g_low, rtol=1e-6)


def test_confidence_adjustment_shrinks_uncertain_signals():
    sig = pol.SignalPanel(np.array([[10.0, 10.0]]), np.zeros((1, 2)), np.zeros((1, 2)), np.array([[0.0, 10.0]]))
    adj = pol.RiskBudget().adjusted(sig)
    assert adj.tolist() == [[10.0, 5.0]]


# ---------------------------------------------------------------------------------------- turnover
def test_turnover_budget_caps_daily_turnover_and_takes_most_valuable_trades_first():
    budget = pol.TurnoverBudget(max_daily_turnover=0.1, speed=1.0)
    desired = np.array([0.05, -0.05, 0.05, 0.02])
    value = np.array([1.0, 30.0, 10.0, -5.0])
    executed, capped = budget.limit(desired, value, np.zeros(4, bool))
    assert np.abs(executed).sum() == pytest.approx(0.1)
    assert executed.tolist() == pytest.approx([0.0, -0.05, 0.05, 0.0])
    assert capped.tolist() == [True, False, False, True]
    forced = np.array([False, False, False, True])  # a delisted name is closed whatever the budget
    executed, capped = budget.limit(desired, value, forced)
    assert executed[3] == 0.02 and np.abs(executed[:3]).sum() == pytest.approx(0.1)
    assert not capped[3]


def test_turnover_budget_keeps_the_trade_neutral_when_given_exposures():
    rng = np.random.default_rng(3)
    n = 30
    exposures = np.c_[np.eye(3)[np.arange(n) % 3], rng.uniform(0.5, 1.5, n)]  # 3 sectors + beta
    desired = rng.normal(0, 0.01, n)
    desired -= exposures[:, :3] @ np.linalg.lstsq(exposures[:, :3], desired, rcond=None)[0]  # sector-neutral
    value = rng.normal(5, 10, n)
    budget = pol.TurnoverBudget(max_daily_turnover=0.3 * np.abs(desired).sum(), speed=1.0)
    executed, capped = budget.limit(desired, value, np.zeros(n, bool), exposures)
    assert np.abs(executed).sum() <= budget.max_daily_turnover + 1e-9
    alpha = budget.max_daily_turnover / np.abs(desired).sum()
    assert np.allclose(exposures.T @ executed, alpha * exposures.T @ desired, atol=1e-9)
    assert value[np.abs(executed) > 0].mean() > value.mean()  # the valuable trades are the ones done
    assert capped.any()


def test_partial_moves_toward_target_and_the_daily_budget_hold_in_a_run(market):
    mp, toy = market
    sig = _true_signals(mp, toy)
    warm = 100  # after the trailing betas exist (before, a beta jump forces a re-hedge)
    slow = _policy(threshold=None, turnover=pol.TurnoverBudget(max_daily_turnover=0.05, speed=0.25)).run(
        sig, mp, start=warm)
    fast = _policy(threshold=None, turnover=None).run(sig, mp, start=warm)
    start = slow.start
    ordinary = ~(slow.reasons == pol.CLOSED).any(axis=1)  # a delisting forces its close and a re-hedge
    assert np.abs(slow.trades[start:][ordinary[start:]]).sum(axis=1).max() <= 0.05 + 0.02  # + touch-ups
    assert np.abs(slow.trades).sum() < 0.5 * np.abs(fast.trades).sum()
    first = slow.trades[start]
    quarter = 0.25 * np.abs(slow.target[start]).sum()  # from flat: a quarter of the way, within the budget
    assert np.abs(first).sum() == pytest.approx(min(quarter, 0.05), rel=0.05)
    assert (slow.reasons == pol.CAPPED).any()


def test_monthly_budget_is_relative_to_the_book_and_holds_on_a_small_book(market):
    budget = pol.TurnoverBudget(max_daily_turnover=0.5, max_monthly_turnover=1.05, speed=1.0)
    assert budget.budget(book=0.2) == pytest.approx(2 * 1.05 / 21 * 0.2)  # = 0.02: the book binds
    assert budget.budget(book=10.0) == 0.5  # the capital budget binds on a big book
    assert pol.TurnoverBudget(max_daily_turnover=None).budget(book=1.0) is None

    from ml.backtest import backtest_daily, performance

    mp, toy = market
    sig = _true_signals(mp, toy)
    warm = 100
    # a small book (2% a name) with a noisy signal: the capital budget alone lets it churn
    er = sig.expected_return
    noisy = _signals(mp, er + np.random.default_rng(3).normal(0, 40, mp.shape) * np.isfinite(er),
                     unc=np.where(np.isfinite(er), 2.0, np.nan))

    def monthly_turnover(turnover):
        res = _policy(threshold=None, risk=pol.RiskBudget(max_weight=0.02, gross_leverage=0.4, target_vol=None),
                      turnover=turnover).run(noisy, mp, start=warm)
        daily = backtest_daily(res.weights, res.trades, res.costs, mp, start=res.start)
        return performance(daily, mp, res.weights)["turnover_monthly"]

    free = monthly_turnover(pol.TurnoverBudget(max_daily_turnover=0.5, speed=0.5))
    capped = monthly_turnover(pol.TurnoverBudget(max_daily_turnover=0.5, speed=0.5, max_monthly_turnover=1.0))
    assert free > 2.0 and capped <= 1.0 * 1.25  # within the budget, but for the neutrality re-hedges


# ---------------------------------------------------------------------------------------- reasons & runs
def test_every_row_of_positions_has_a_known_reason(market):
    mp, toy = market
    sig = _true_signals(mp, toy)
    sig.expected_return[150:, 5] = np.nan  # a name that loses its signal
    res = _policy().run(sig, mp)
    frame = res.positions_frame(mp)
    assert list(frame.columns) == ["date", "symbol", "target_weight", "trade", "cost_estimate", "reason"]
    assert set(frame["reason"]) <= set(pol.REASONS.values())
    assert {"trade", "abstain: no signal"} <= set(frame["reason"])
    traded = frame["trade"].abs() > 0
    assert (frame.loc[traded, "cost_estimate"] > 0).all()
    assert (frame.loc[~traded, "cost_estimate"] == 0).all()


def test_book_stays_neutral_while_trading_slowly(market):
    mp, toy = market
    res = _policy().run(_true_signals(mp, toy), mp)
    w = res.weights[res.start:]
    assert np.abs(w.sum(axis=1)).max() < 1e-6
    assert np.abs(w @ mp.sector_onehot()).max() < 1e-6
    assert np.abs((w * mp.beta[res.start:]).sum(axis=1)).max() < 1e-6


def test_decisions_at_t_ignore_returns_after_t(market):
    """Perturbing every price after t leaves every decision up to t unchanged."""
    mp, toy = market
    t = 200
    cut = mp.dates[t]
    prices = toy.prices.copy()
    after = pd.to_datetime(prices["date"]) > cut
    rng = np.random.default_rng(5)
    prices.loc[after, "close"] *= np.exp(rng.normal(0, 0.1, after.sum()))
    prices.loc[after, "volume"] *= 3.0
    prices.loc[after, "spread_bps"] *= 2.0
    other = market_panel(prices, toy.securities)
    sig = _true_signals(mp, toy)
    base = _policy().run(sig, mp)
    moved = _policy().run(sig, other)
    assert np.array_equal(base.weights[: t + 1], moved.weights[: t + 1])
    assert np.array_equal(base.costs[: t + 1], moved.costs[: t + 1])
    assert not np.array_equal(base.weights[t + 1:], moved.weights[t + 1:])


def test_naive_policy_holds_top_and_bottom_deciles_equal_weight(market):
    mp, toy = market
    sig = _true_signals(mp, toy)
    naive = pol.DecilePolicy(costs=HalfSpread(), n_bins=10, gross_leverage=1.0, capital=CAPITAL)
    res = naive.run(sig, mp)
    w = res.weights[150]
    assert w.sum() == pytest.approx(0.0) and np.abs(w).sum() == pytest.approx(1.0)
    assert (w > 0).sum() == (w < 0).sum() >= 3
    assert np.allclose(np.abs(w[w != 0]), np.abs(w[w != 0])[0])
    er = sig.expected_return[150]
    assert er[w > 0].min() > er[w < 0].max()


def test_policy_from_config_builds_each_piece_and_switches_pieces_off():
    cfg = pol.load_config({"abstention": None, "turnover": {"speed": 0.5}, "threshold": {"trade_fraction": None}})
    policy = pol.policy_from_config(cfg)
    assert policy.abstention is None
    assert policy.turnover.speed == 0.5 and policy.threshold.trade_fraction == 0.5
    assert isinstance(pol.naive_from_config(pol.load_config()), pol.DecilePolicy)
