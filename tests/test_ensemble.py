"""Ensembles of out-of-sample predictions: standardization, equal / IC-weighted / stacked weights, no
look-ahead in any weight, multipliers and the allowed-models list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from policy_fixtures import toy_market

from ml import ensemble as ens
from ml.backtest import forward_label, market_panel
from ml.evaluation import score_metrics

H = 5


@pytest.fixture(scope="module")
def toy():
    market = toy_market()
    panel_market = market_panel(market.prices, market.securities)
    label = forward_label(panel_market, H, "sector")
    panel = ens.standardize(ens.score_panel(market.predictions))
    return market, label, panel


def test_score_panel_is_wide_and_sorted_by_date(toy):
    market, _, _ = toy
    panel = ens.score_panel(market.predictions)
    assert list(panel.index.names) == ["date", "symbol"]
    assert panel.index.is_monotonic_increasing
    assert set(panel.columns) == set(market.predictions["model_id"])


def test_standardize_gives_zero_mean_unit_sd_per_date_and_clips_outliers():
    idx = pd.MultiIndex.from_product([pd.bdate_range("2021-01-01", periods=3), [f"S{i}" for i in range(50)]],
                                     names=["date", "symbol"])
    raw = pd.DataFrame({"m": np.random.default_rng(0).standard_normal(len(idx)) * 7 + 3}, index=idx)
    raw.iloc[0, 0] = 1e6  # an outlier score
    z = ens.standardize(raw, clip=3.0)
    assert z["m"].max() <= 3.0 and z["m"].min() >= -3.0
    day2 = z.xs(idx.levels[0][1], level="date")["m"]
    assert abs(day2.mean()) < 1e-12 and abs(day2.std() - 1) < 1e-9


def test_equal_weight_gives_every_model_the_same_weight(toy):
    _, label, panel = toy
    w = ens.EqualWeight().weights(panel, label)
    assert np.allclose(w.to_numpy(), 1.0 / panel.shape[1])


def test_ic_weights_use_only_labels_known_at_the_date(toy):
    """Weights at t may use labels of dates <= t - h - 1 only: changing any later label leaves them."""
    _, label, panel = toy
    weighter = ens.ICWeighted(horizon=H, window=60, min_periods=20)
    base = weighter.weights(panel, label)
    calendar = base.index
    t = 150
    cutoff = calendar[t - H - 1]
    dates = label.index.get_level_values("date")
    later = label.where(dates <= cutoff, label * -5 + 0.01)
    assert base.iloc[: t + 1].equals(weighter.weights(panel, later).iloc[: t + 1])
    # ... and the label of t - h - 1 itself does inform the weights of t
    at_cutoff = label.where(dates != cutoff, -label)
    assert not np.allclose(base.iloc[t], weighter.weights(panel, at_cutoff).iloc[t])


def test_ic_weighted_puts_zero_on_negative_ic_models_and_most_on_the_best(toy):
    _, label, panel = toy
    w = ens.ICWeighted(horizon=H, window=60, min_periods=20, shrinkage=0.0).weights(panel, label)
    late = w.iloc[-50:].mean()
    assert late["wrong-toy"] == 0.0
    assert late["good-toy"] == late.max()
    assert late["good-toy"] > late["weak-toy"]
    assert np.allclose(w.sum(axis=1), 1.0)


def test_ic_weights_are_shrunk_toward_equal(toy):
    _, label, panel = toy
    full = ens.ICWeighted(horizon=H, window=60, min_periods=20, shrinkage=1.0).weights(panel, label).iloc[-1]
    positive = full[full > 0]
    assert np.allclose(positive, 1.0 / len(positive))
    half = ens.ICWeighted(horizon=H, window=60, min_periods=20, shrinkage=0.5).weights(panel, label).iloc[-1]
    none = ens.ICWeighted(horizon=H, window=60, min_periods=20, shrinkage=0.0).weights(panel, label).iloc[-1]
    assert half.std() < none.std()


def test_ic_weights_are_equal_during_warm_up(toy):
    _, label, panel = toy
    w = ens.ICWeighted(horizon=H, window=60, min_periods=20).weights(panel, label)
    assert np.allclose(w.iloc[:20], 1.0 / panel.shape[1])


def test_stacked_weights_are_non_negative_and_fitted_on_known_labels_only(toy):
    _, label, panel = toy
    weighter = ens.Stacked(horizon=H, refit="M", alpha=0.1, min_train_days=40)
    base = weighter.weights(panel, label)
    assert (base.to_numpy() >= 0).all()
    assert np.allclose(base.sum(axis=1), 1.0)
    calendar = base.index
    t = 200
    dates = label.index.get_level_values("date")
    later = label.where(dates <= calendar[t - H - 1], label[::-1].to_numpy())
    assert base.iloc[: t + 1].equals(weighter.weights(panel, later).iloc[: t + 1])
    late = base.iloc[-1]
    assert late["wrong-toy"] == 0.0 and late["good-toy"] == late.max()


def test_stacked_ridge_strength_is_chosen_walk_forward_on_a_purged_validation_tail(toy):
    """With a list of strengths, each refit picks one by the validation IC on the tail of its own
    training window: the choice, like the weights, never sees a label realized after the refit."""
    _, label, panel = toy
    weighter = ens.Stacked(horizon=H, refit="M", alpha=[0.01, 1.0, 100.0], min_train_days=40)
    base = weighter.weights(panel, label)
    chosen = dict(weighter.chosen_alpha)
    assert chosen and set(chosen.values()) <= {0.01, 1.0, 100.0}
    assert (base.to_numpy() >= 0).all() and np.allclose(base.sum(axis=1), 1.0)
    calendar = base.index
    t = 200
    dates = label.index.get_level_values("date")
    later = label.where(dates <= calendar[t - H - 1], label[::-1].to_numpy())
    again = ens.Stacked(horizon=H, refit="M", alpha=[0.01, 1.0, 100.0], min_train_days=40)
    assert base.iloc[: t + 1].equals(again.weights(panel, later).iloc[: t + 1])
    assert {d: a for d, a in again.chosen_alpha if d <= calendar[t]} == {d: a for d, a in chosen.items()
                                                                         if d <= calendar[t]}
    # one strength: the fixed-alpha fit, unchanged
    fixed = ens.Stacked(horizon=H, refit="M", alpha=1.0, min_train_days=40)
    assert fixed.weights(panel, label).equals(ens.Stacked(horizon=H, refit="M", alpha=[1.0],
                                                          min_train_days=40).weights(panel, label))


def test_nonneg_ridge_recovers_positive_least_squares_weights():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 3))
    y = x @ np.array([0.5, 0.3, 0.0]) + 0.1 * rng.standard_normal(2000)
    w = ens.nonneg_ridge(x.T @ x, x.T @ y, alpha=1e-6)
    assert np.allclose(w, [0.5 / 0.8, 0.3 / 0.8, 0.0], atol=0.02)
    wrong = -x @ np.array([0.5, 0.3, 0.1])  # every model wrong: no weight is positive, fall back to equal
    assert ens.nonneg_ridge(x.T @ x, x.T @ wrong, alpha=1e-6).tolist() == pytest.approx([1 / 3] * 3)


def test_informed_ensembles_beat_equal_weight_when_models_differ_in_quality(toy):
    _, label, panel = toy
    ics = {}
    for name, weighter in {"equal": ens.EqualWeight(),
                           "ic": ens.ICWeighted(horizon=H, window=60, min_periods=20),
                           "stacked": ens.Stacked(horizon=H, min_train_days=40)}.items():
        res = ens.build_ensemble(panel, label, weighter)
        ics[name] = score_metrics(res.score, label, H)["rank_ic"]
    assert ics["ic"] > ics["equal"] and ics["stacked"] > ics["equal"]


def test_combined_score_is_standardized_and_dispersion_measures_disagreement(toy):
    _, label, panel = toy
    res = ens.build_ensemble(panel, label, ens.EqualWeight())
    day = res.score.xs(res.score.index.levels[0][10], level="date")
    assert abs(day.mean()) < 1e-9 and abs(day.std() - 1) < 1e-6
    agree = ens.combine(pd.concat([panel[["good-toy"]]] * 2, axis=1).set_axis(["a", "b"], axis=1),
                        pd.DataFrame(0.5, index=ens.date_bounds(panel.index)[0], columns=["a", "b"]))[1]
    assert np.nanmax(agree.to_numpy()) < 1e-12
    assert res.dispersion.mean() > 0.5


def test_multipliers_scale_a_model_or_family_and_keep_the_total(toy):
    _, label, panel = toy
    w = ens.EqualWeight().weights(panel, label)
    scaled = ens.apply_multipliers(w, {"good-toy": 3.0})
    assert np.allclose(scaled.sum(axis=1), 1.0)
    assert np.allclose(scaled["good-toy"] / scaled["fair-toy"], 3.0)
    by_family = ens.apply_multipliers(w, {"linear": 2.0}, families={"weak-toy": "linear"})
    assert np.allclose(by_family["weak-toy"] / by_family["fair-toy"], 2.0)


def test_allowed_models_and_active_list_restrict_the_ensemble(toy):
    market, label, _ = toy
    cfg = ens.load_config({"allowed_models": ["good-toy", "fair-toy", "noise-toy"]})
    panel, results = ens.ensembles_from_config(market.predictions, label, cfg, methods=["equal"],
                                               active=["good-toy", "noise-toy", "wrong-toy"])
    assert list(panel.columns) == ["good-toy", "noise-toy"]
    assert results["equal"].version.startswith("equal-")


def test_config_chooses_the_method_and_rejects_unknown_ones():
    assert ens.load_config({"method": "ic_weighted"})["method"] == "ic_weighted"
    assert ens.load_config()["method"] in ens.METHODS
    with pytest.raises(ValueError):
        ens.load_config({"method": "magic"})


def test_promoted_models_weigh_more_from_the_date_they_are_promoted():
    from ml.ensemble import apply_date_multipliers

    dates = pd.bdate_range("2024-01-01", periods=4)
    weights = pd.DataFrame(1 / 3, index=dates, columns=["a", "b", "c"])
    # the lifecycle promotes `a` on the third day; `c` is not in its table (keeps its weight)
    status = pd.DataFrame({"a": [1.0, 1.0, 2.0, 2.0], "b": [1.0, 1.0, 1.0, 1.0]}, index=dates)
    out = apply_date_multipliers(weights, status)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    np.testing.assert_allclose(out.iloc[:2].to_numpy(), 1 / 3)
    assert out.loc[dates[2], "a"] == pytest.approx(2 * out.loc[dates[2], "b"])
    assert out.loc[dates[2], "c"] == pytest.approx(out.loc[dates[2], "b"])
    assert apply_date_multipliers(weights, None) is weights


@pytest.mark.parametrize("missing", ["label", "scores"])
def test_stacked_warm_up_counts_dates_with_a_label_and_a_model_score(missing):
    """200 dates without a label (or without any model score), then data: the stacker keeps equal
    weights until 63 dates with data lie before the refit's cutoff (refit - h - 1)."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-01", periods=420)
    idx = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(30)]], names=["date", "symbol"])
    signal = rng.normal(size=len(idx))
    label = pd.Series(0.01 * signal + 0.01 * rng.normal(size=len(idx)), index=idx)
    panel = pd.DataFrame({"good": signal + 0.5 * rng.normal(size=len(idx)), "noise": rng.normal(size=len(idx)),
                          "bad": -signal + rng.normal(size=len(idx))}, index=idx)
    early = idx.get_level_values("date") < dates[200]
    if missing == "label":
        label[early] = np.nan
    else:
        panel[early] = np.nan
    w = ens.Stacked(horizon=H, refit="M", min_train_days=63).weights(panel, label)
    fitted = w.index[~np.isclose(w, 1.0 / 3).all(axis=1)]
    periods = dates.to_period("M")
    refits = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
    assert fitted[0] == dates[refits[refits >= 200 + 63 + H][0]]
    assert (fitted >= fitted[0]).all() and w.loc[fitted[0], "good"] == w.loc[fitted[0]].max()


def test_weighters_in_one_stage_share_each_panels_daily_ic(monkeypatch):
    rng = np.random.default_rng(0)
    idx = pd.MultiIndex.from_product([pd.bdate_range("2021-01-01", periods=80), [f"S{i}" for i in range(30)]],
                                     names=["date", "symbol"])
    label = pd.Series(rng.standard_normal(len(idx)), index=idx)
    panel = pd.DataFrame({"a": label + rng.standard_normal(len(idx)), "b": rng.standard_normal(len(idx))}, index=idx)
    calls = []
    from ml.portfolio import score_panel

    real = score_panel.daily_rank_ic
    monkeypatch.setattr(score_panel, "daily_rank_ic", lambda *a, **k: calls.append(1) or real(*a, **k))
    weighters = [ens.ICWeighted(min_periods=10), ens.BestTrailing(min_periods=10)]
    alone = [w.weights(panel, label) for w in weighters]
    assert len(calls) == 2  # outside a block: computed each time
    with ens.shared_daily_ic():
        shared = [w.weights(panel, label) for w in weighters]
        ens.shared_daily_rank_ic(panel, label)
        ens.shared_daily_rank_ic(panel, label.copy())  # another label object: computed again
    assert len(calls) == 4
    for a, b in zip(alone, shared, strict=True):
        pd.testing.assert_frame_equal(a, b)
    ens.shared_daily_rank_ic(panel, label)
    assert len(calls) == 5  # the block's memo is gone with the block
