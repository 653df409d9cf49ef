"""The real-panel ceiling bench (bench/bench_panel_ceiling.py): its price families use the past only, and its
fits score what they were asked to."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_panel_ceiling as bpc  # noqa: E402

from ml.backtest import market_panel  # noqa: E402

N_DAYS, N_NAMES = 1400, 12  # more than five years: the seasonal families are defined at the end


def _market(returns: np.ndarray):
    dates = pd.bdate_range("2010-01-04", periods=returns.shape[0])
    symbols = [f"S{i:02d}" for i in range(returns.shape[1])]
    close = 100 * np.cumprod(1 + returns, axis=0)
    prices = pd.DataFrame({"date": np.repeat(dates, len(symbols)), "symbol": np.tile(symbols, len(dates)),
                           "close": close.ravel(), "volume": 1e6})
    securities = pd.DataFrame({"symbol": symbols, "sector": ["A", "B", "C"] * (len(symbols) // 3)})
    return market_panel(prices, securities)


def _returns(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.02, (N_DAYS, N_NAMES))


def test_price_families_at_t_do_not_move_when_the_future_changes():
    base = _returns(0)
    changed = base.copy()
    cut = 1000  # more than a year before the end: the seasonal families see the change too
    changed[cut + 1:] = _returns(1)[cut + 1:]  # every return after the close of `cut` is different
    before, after = bpc.price_families(_market(base)), bpc.price_families(_market(changed))
    for name in before:
        np.testing.assert_array_equal(before[name][: cut + 1], after[name][: cut + 1], err_msg=name)
        assert not np.allclose(np.nan_to_num(before[name][cut + 1:]), np.nan_to_num(after[name][cut + 1:])), name


def test_seasonal_family_is_the_mean_of_the_same_days_in_the_last_five_years():
    market = _market(_returns(2))
    seasonal = bpc.price_families(market)["seasonal_5d"]
    log = np.log1p(np.nan_to_num(market.returns))
    t, name = 1390, 4
    # the 5 returns ending 252k - 5 days before t, for k = 1..5: the same week a year, two years ... earlier
    expected = np.mean([log[t - 252 * k + 1: t - 252 * k + 6, name].sum() for k in range(1, 6)])
    assert np.isclose(seasonal[t, name], expected, rtol=1e-12)
    assert np.isnan(seasonal[252 * 5 - 10, name])  # not five years of history yet


def test_the_fit_recovers_a_label_that_one_regressor_explains_and_ignores_the_others():
    rng = np.random.default_rng(3)
    signal, noise = rng.normal(size=(300, 20)), rng.normal(size=(300, 20))
    label_rank = bpc.per_date_rank(signal)
    ranks = {"signal": bpc.per_date_rank(signal), "noise": bpc.per_date_rank(noise)}
    rows = np.arange(300)
    fit = bpc.fitted(ranks, ["signal", "noise"], label_rank, rows[:150], rows[150:])
    np.testing.assert_allclose(fit, label_rank[150:], atol=1e-9)  # scored on dates it never saw
