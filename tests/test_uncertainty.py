"""Bootstrap ensembles of zoo families and intervals from a score std (ml/uncertainty.py): resampling
whole dates, deterministic, a std that shrinks with more data, and walk-forward intervals that cover
near the nominal rate, sharper than volatility-only intervals where the std knows which rows are noisy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.calibration import BPS
from ml.uncertainty import (
    BootstrapEnsemble,
    StdIntervals,
    apply_intervals,
    date_block_resample,
    ensemble_score_std,
    interval_score,
    interval_width,
)
from ml.zoo import LightGBMModel, RidgeModel, make_model


def _panel(n_dates: int, n_names: int = 30, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_dates)
    index = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(n_names)]], names=["date", "symbol"])
    X = pd.DataFrame(rng.standard_normal((len(index), 3)), index=index, columns=["a", "b", "c"])
    y = pd.Series(0.3 * X["a"] - 0.1 * X["b"] + noise * rng.standard_normal(len(index)), index=index)
    return X, y


def test_date_block_resample_draws_whole_dates_and_runs_of_dates():
    rng = np.random.default_rng(0)
    pos = date_block_resample(100, "date", rng)
    assert len(pos) == 100 and pos.min() >= 0 and pos.max() < 100 and len(np.unique(pos)) < 100
    runs = date_block_resample(100, 5, rng)
    assert len(runs) == 100 and (np.diff(runs.reshape(20, 5), axis=1) == 1).all()
    with pytest.raises(ValueError):
        date_block_resample(10, 0, rng)


def test_bootstrap_is_deterministic_and_its_mean_is_close_to_the_single_fit():
    X, y = _panel(60)
    a = BootstrapEnsemble(RidgeModel(alpha=0.01), n_boot=6, seed=3).fit(X, y)
    b = BootstrapEnsemble(RidgeModel(alpha=0.01), n_boot=6, seed=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_members(X), b.predict_members(X))
    single = RidgeModel(alpha=0.01).fit(X, y).predict(X)
    assert np.corrcoef(a.predict(X), single)[0, 1] > 0.99
    assert (a.predict_std(X) > 0).all()
    other = BootstrapEnsemble(RidgeModel(alpha=0.01), n_boot=6, seed=4).fit(X, y)
    assert not np.allclose(a.predict_std(X), other.predict_std(X))


def test_bootstrap_std_shrinks_with_more_training_dates():
    small_X, small_y = _panel(20, seed=1)
    big_X, big_y = _panel(320, seed=1)
    test_X, _ = _panel(5, seed=9)
    std = {n: BootstrapEnsemble(RidgeModel(alpha=0.01), n_boot=12, seed=0).fit(X, y).predict_std(test_X).mean()
           for n, (X, y) in {"small": (small_X, small_y), "big": (big_X, big_y)}.items()}
    assert std["big"] < 0.5 * std["small"]  # ~ 1 / sqrt(16) in theory


def test_bootstrap_works_for_a_tree_family_and_on_moments():
    X, y = _panel(40)
    lgb = BootstrapEnsemble(LightGBMModel(n_estimators=20, num_leaves=4, min_child_samples=20), n_boot=3, seed=0)
    mean, std = lgb.fit(X, y).predict_mean_std(X)
    assert mean.shape == std.shape == (len(X),) and np.isfinite(std).all() and std.mean() > 0
    # moments families: resampled per-date moments give the same members as resampled rows
    from ml.models.base import DateMoments, date_codes

    codes, dates = date_codes(X.index)
    moments = DateMoments.from_arrays(X.to_numpy(), y.to_numpy(), codes, len(dates), dates=dates)
    by_rows = BootstrapEnsemble(make_model("ridge", alpha=0.01), n_boot=4, seed=2).fit(X, y)
    by_moments = BootstrapEnsemble(make_model("ridge", alpha=0.01), n_boot=4, seed=2).fit_moments(moments, list(X.columns))
    np.testing.assert_allclose(by_rows.predict_members(X), by_moments.predict_members(X), rtol=1e-6, atol=1e-9)


# ================================================================================ intervals
def _heteroskedastic(n_dates: int = 400, n_names: int = 40, seed: int = 0):
    """Realized return = er + noise whose size (known to the 'std') differs 4x across names."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2018-01-01", periods=n_dates)
    index = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(n_names)]], names=["date", "symbol"])
    er = rng.normal(0, 5, len(index))  # bps
    noisy = rng.uniform(0.5, 2.0, len(index))
    y = (er + 100.0 * noisy * rng.standard_normal(len(index))) / BPS
    return pd.Series(er, index=index), pd.Series(noisy, index=index), pd.Series(y, index=index)


def test_std_intervals_cover_near_nominal_and_score_better_than_a_std_free_band():
    """Both cover ~80% overall; only the std-informed one covers ~80% among quiet and noisy names alike,
    and it has the better (lower) interval score."""
    er, std, y = _heteroskedastic()
    informed = StdIntervals(horizon=5, min_train_days=60).fit_predict(er, std, y)
    blind = StdIntervals(horizon=5, min_train_days=60, power=0.0).fit_predict(er, std, y)
    realized = y.reindex(er.index) * BPS
    noisy = std > 1.25
    cover = {}
    for name, bands in {"informed": informed, "blind": blind}.items():
        ok = bands["lower"].notna()
        inside = ((bands["lower"] <= realized) & (realized <= bands["upper"]))
        assert abs(inside[ok].mean() - 0.8) < 0.02
        cover[name] = (inside[ok & noisy].mean(), inside[ok & ~noisy].mean())
    assert all(abs(c - 0.8) < 0.03 for c in cover["informed"])
    assert cover["blind"][0] < 0.75 and cover["blind"][1] > 0.85
    assert interval_score(informed, y) < 0.97 * interval_score(blind, y)
    assert interval_width(informed) < interval_score(informed, y)  # the score is the width plus a miss penalty


def test_std_intervals_at_t_use_only_labels_known_at_t():
    er, std, y = _heteroskedastic(n_dates=250)
    dates = y.index.get_level_values("date")
    calendar = dates.unique()
    t = 180
    tampered = y.where(dates <= calendar[t - 5 - 1], y * 50)
    a = StdIntervals(horizon=5, min_train_days=60).fit_predict(er, std, y)
    b = StdIntervals(horizon=5, min_train_days=60).fit_predict(er, std, tampered)
    upto = a.index.get_level_values("date") <= calendar[t]
    pd.testing.assert_frame_equal(a[upto], b[upto])
    assert not a[~upto].equals(b[~upto])


def test_apply_intervals_follows_the_config_and_falls_back_to_conformal_without_a_std():
    er, std, y = _heteroskedastic(n_dates=200)
    signals = pd.DataFrame({"date": er.index.get_level_values("date"), "symbol": er.index.get_level_values("symbol"),
                            "expected_return": er.to_numpy(), "lower": -1.0, "upper": 1.0})
    cfg = {"horizon": 5, "calibration": {"min_train_days": 60}}
    assert apply_intervals(signals, std, y, None, {**cfg, "intervals": {"method": "conformal"}}) is signals
    said = []
    kept = apply_intervals(signals, None, y, None, {**cfg, "intervals": {"method": "bootstrap"}}, log=said.append)
    assert kept is signals and "keeping the conformal" in said[0]
    out = apply_intervals(signals, std, y, None, {**cfg, "intervals": {"method": "bootstrap"}})
    assert list(out.columns) == list(signals.columns) and out["upper"].iloc[-1] != 1.0
    with pytest.raises(ValueError, match="intervals.method"):
        apply_intervals(signals, std, y, None, {**cfg, "intervals": {"method": "gaussian"}})


def test_ensemble_score_std_is_the_weighted_std_in_standardized_units():
    dates = pd.bdate_range("2021-01-01", periods=2)
    index = pd.MultiIndex.from_product([dates, ["A", "B", "C"]], names=["date", "symbol"])
    raw = pd.DataFrame({"m1": [1.0, 2.0, 3.0] * 2, "m2": [10.0, 20.0, 30.0] * 2}, index=index)
    raw_std = pd.DataFrame({"m1": [0.5] * 6, "m2": [np.nan] * 3 + [5.0] * 3}, index=index)
    weights = pd.DataFrame({"m1": [0.5, 0.5], "m2": [0.5, 0.5]}, index=dates)
    out = ensemble_score_std(raw, raw_std, weights)
    sd = np.sqrt(2 / 3)  # population sd of 1, 2, 3 (and of 10, 20, 30 over 10)
    np.testing.assert_allclose(out.iloc[:3], 0.5 / sd)  # m2 has no std on day 1: m1 alone
    np.testing.assert_allclose(out.iloc[3:], 0.5 * (0.5 / sd) + 0.5 * (5.0 / (10 * sd)))
