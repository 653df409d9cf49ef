"""Textbook baselines (ml/baselines.py): each signal at date t uses only data known at t, and each
carries what its name says on the embedded market."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.backtest import market_panel
from ml.baselines import earnings_drift, textbook_signals
from ml.market import MarketConfig, generate_market
from ml.metrics import daily_ic


@pytest.fixture(scope="module")
def small():
    m = generate_market(MarketConfig(n_symbols=40, n_days=500, seed=5))
    return m, market_panel(m.tables["prices"], m.tables["securities"])


def test_every_textbook_signal_is_point_in_time(small):
    """Prices after day t changed at random: no signal on or before t moves."""
    m, panel = small
    t = 400
    prices = m.tables["prices"].copy()
    later = pd.to_datetime(prices["date"]) > panel.dates[t]
    prices.loc[later, "close"] *= np.exp(np.random.default_rng(0).normal(0, 0.05, int(later.sum())))
    changed = market_panel(prices, m.tables["securities"])
    fundamentals = m.tables["fundamentals"]
    a, b = textbook_signals(panel, fundamentals), textbook_signals(changed, fundamentals)
    assert set(a) == {"reversal_5d", "residual_reversal_5d", "momentum_12_1", "earnings_drift"}
    for name in a:
        np.testing.assert_array_equal(a[name][: t + 1], b[name][: t + 1], err_msg=name)
        assert not np.array_equal(a[name], b[name], equal_nan=True) or name == "earnings_drift"


def test_earnings_drift_uses_reports_only_from_the_day_after_they_are_published(small):
    """Reports published after day t changed: nothing on or before t moves. Each report's value
    appears on the first trading day after its report date, never on the date itself."""
    m, panel = small
    f = m.tables["fundamentals"].copy()
    t = 350
    late = pd.to_datetime(f["report_date"]) >= panel.dates[t]
    f2 = f.copy()
    f2.loc[late, "eps"] = f2.loc[late, "eps"] * 3 + 1
    a, b = earnings_drift(panel, f, hold_days=63), earnings_drift(panel, f2, hold_days=63)
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])
    assert not np.array_equal(a, b, equal_nan=True)
    # on each report date the value is still the previous report's (or none); it changes the day after
    reports = f.assign(report_date=pd.to_datetime(f["report_date"]))
    moved = 0
    for _, r in reports[(reports["report_date"] > panel.dates[0]) & (reports["report_date"] < panel.dates[-2])].iterrows():
        j = panel.symbols.get_loc(str(r["symbol"]))
        day = panel.dates.searchsorted(r["report_date"], side="right")  # first trading day after
        on_date, next_day = a[day - 1, j], a[day, j]
        if np.isfinite(next_day) and not (np.isfinite(on_date) and on_date == next_day):
            moved += 1
    assert moved > 20


def test_residual_reversal_is_sector_neutral(small):
    _, panel = small
    rr = textbook_signals(panel)["residual_reversal_5d"]
    onehot = panel.sector_onehot()
    ok = np.isfinite(rr)
    sums = np.nan_to_num(rr) @ onehot
    counts = ok.astype(float) @ onehot
    assert np.allclose(sums[counts > 0], 0.0, atol=1e-9)


def test_reversal_carries_the_planted_reversal_on_the_embedded_market(small):
    m, panel = small
    sig = textbook_signals(panel)["residual_reversal_5d"]
    fwd = pd.DataFrame(panel.close).shift(-5) / pd.DataFrame(panel.close) - 1
    frame = pd.DataFrame({"date": np.repeat(panel.dates, len(panel.symbols)), "s": sig.ravel(),
                          "y": fwd.to_numpy().ravel()})
    assert daily_ic(frame, "s", "y").mean() > 0.01
