"""Zoo families: one interface, cross-sectional PIT preprocessing, closed forms equal the references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import BayesianRidge, ElasticNet, Lasso, Ridge

from ml.zoo import (
    FAMILIES,
    STATE_PREFIX,
    CrossSectionalModel,
    DateMoments,
    FamaMacBethModel,
    RegimeRidgeModel,
    RidgeModel,
    cross_sectional_normalize,
    cross_sectional_target,
    date_codes,
    make_model,
    market_state,
    state_source_columns,
)


def small_panel(n_dates: int = 60, n_symbols: int = 50, p: int = 4, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-01", periods=n_dates)
    idx = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(n_symbols)]], names=["date", "symbol"])
    X = pd.DataFrame(rng.standard_normal((len(idx), p)), index=idx, columns=[f"v__f{j}" for j in range(p)])
    beta = np.array([1.0, -0.5] + [0.0] * (p - 2))
    y = pd.Series(X.to_numpy() @ beta + noise * rng.standard_normal(len(idx)), index=idx)
    return X, y


# ------------------------------------------------------------------------------ preprocessing
def test_rank_gauss_is_per_date_monotone_invariant_and_fills_missing_with_zero():
    X, _ = small_panel(10, 30, 3)
    X.iloc[::7, 0] = np.nan
    Z = cross_sectional_normalize(X)
    assert np.isfinite(Z.to_numpy()).all()
    assert (Z.iloc[::7, 0] == 0).all()
    by_date = Z.groupby(level="date").mean()
    assert np.abs(by_date.to_numpy()).max() < 0.05
    # a per-date monotone rescaling of the raw values changes nothing
    scale = pd.Series(1.0 + np.arange(10), index=X.index.levels[0])
    warped = np.exp(X.mul(scale.reindex(X.index.get_level_values("date")).to_numpy(), axis=0) / 10)
    pd.testing.assert_frame_equal(cross_sectional_normalize(warped), Z)


def test_preprocessing_is_point_in_time():
    X, _ = small_panel(10, 30, 3)
    Z = cross_sectional_normalize(X, "zscore")
    later = X.index.get_level_values("date") > X.index.levels[0][5]
    X2 = X.copy()
    X2.loc[later] = X2.loc[later] * 1000 + 5
    Z2 = cross_sectional_normalize(X2, "zscore")
    pd.testing.assert_frame_equal(Z[~later], Z2[~later])
    assert np.abs(Z.to_numpy()).max() <= 3.0


def test_target_transforms():
    _, y = small_panel(5, 20, 2)
    r = cross_sectional_target(y, "rank")
    assert r.between(-0.5, 0.5).all()
    assert np.allclose(r.groupby(level="date").mean(), 0)
    d = cross_sectional_target(y, "demean")
    assert np.allclose(d.groupby(level="date").mean(), 0)
    pd.testing.assert_series_equal(cross_sectional_target(y, "raw"), y.astype(float))
    with pytest.raises(ValueError):
        cross_sectional_target(y, "bogus")


def test_market_state_columns_and_fallback():
    cols, stat = state_source_columns(["pm__vol_21d", "pm__ret_5d", "ms__parkinson_vol_21d"])
    assert cols == ["pm__vol_21d", "ms__parkinson_vol_21d"] and stat == "median"
    cols, stat = state_source_columns(["a__x", "a__y"])
    assert cols == ["a__x", "a__y"] and stat == "iqr"
    X, _ = small_panel(6, 10, 2)
    st = market_state(X, ["v__f0"], "median")
    assert st.columns.tolist() == [f"{STATE_PREFIX}0"]
    per_date = st.groupby(level="date")[f"{STATE_PREFIX}0"].nunique()
    assert (per_date == 1).all()


# ------------------------------------------------------------------------------ closed forms
def test_moment_solvers_match_sklearn():
    X, y = small_panel(40, 40, 5, noise=2.0)
    n = len(y)
    ridge = RidgeModel(alpha=0.5).fit(X, y)
    ref = Ridge(alpha=0.5 * n).fit(X.to_numpy(), y.to_numpy())
    np.testing.assert_allclose(ridge.coef_, ref.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ridge.predict(X), ref.predict(X.to_numpy()), atol=1e-8)

    lasso = make_model("lasso", alpha_ratio=0.2).fit(X, y)
    ref = Lasso(alpha=lasso.alpha_, tol=1e-10, max_iter=100000).fit(X.to_numpy(), y.to_numpy())
    np.testing.assert_allclose(lasso.coef_, ref.coef_, atol=1e-5)
    assert (lasso.coef_ == 0).sum() >= 1

    enet = make_model("elastic_net", alpha_ratio=0.1, l1_ratio=0.3).fit(X, y)
    ref = ElasticNet(alpha=enet.alpha_, l1_ratio=0.3, tol=1e-10, max_iter=100000).fit(X.to_numpy(), y.to_numpy())
    np.testing.assert_allclose(enet.coef_, ref.coef_, atol=1e-5)

    bayes = make_model("bayes_ridge").fit(X, y)
    ref = BayesianRidge(tol=1e-8, max_iter=1000).fit(X.to_numpy(), y.to_numpy())
    np.testing.assert_allclose(bayes.coef_, ref.coef_, rtol=1e-3, atol=1e-5)
    mean, std = bayes.predict(X.iloc[:10], return_std=True)
    ref_mean, ref_std = ref.predict(X.iloc[:10].to_numpy(), return_std=True)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-4)
    np.testing.assert_allclose(std, ref_std, rtol=1e-3)


def test_fama_macbeth_averages_per_date_regressions():
    X, y = small_panel(30, 40, 3)
    fm = FamaMacBethModel(ridge=1e-9, shrinkage="none").fit(X, y)
    slopes = [np.linalg.lstsq(np.c_[np.ones(40), X.xs(d).to_numpy()], y.xs(d).to_numpy(), rcond=None)[0][1:]
              for d in X.index.levels[0]]
    np.testing.assert_allclose(fm.coef_, np.mean(slopes, axis=0), atol=1e-6)
    shrunk = FamaMacBethModel(ridge=1e-9, shrinkage="eb").fit(X, y)
    assert np.all(np.abs(shrunk.coef_) <= np.abs(fm.coef_) + 1e-12)


def test_moments_subset_equals_fit_on_those_dates():
    X, y = small_panel(20, 30, 3)
    codes, dates = date_codes(X.index)
    m = DateMoments.from_arrays(X.to_numpy(), y.to_numpy(), codes, len(dates))
    keep = X.index.get_level_values("date").isin(dates[5:12])
    direct = RidgeModel(0.1).fit(X[keep], y[keep])
    via = RidgeModel(0.1).fit_moments(m.subset(np.arange(5, 12)), X.columns)
    np.testing.assert_allclose(direct.coef_, via.coef_)
    fm_direct = FamaMacBethModel(0.3).fit(X[keep], y[keep])
    m.per_date_coef(0.3)  # fill the parent's cache first
    fm_via = FamaMacBethModel(0.3).fit_moments(m.subset(np.arange(5, 12)), X.columns)
    np.testing.assert_allclose(fm_direct.coef_, fm_via.coef_)


def test_regime_ridge_learns_regime_specific_slopes():
    rng = np.random.default_rng(3)
    X, _ = small_panel(120, 40, 2)
    dates = X.index.get_level_values("date")
    stressed_dates = X.index.levels[0][rng.random(120) < 0.3]
    stressed = dates.isin(stressed_dates)
    state = np.where(stressed, 2.0, 0.0) + 0.1 * rng.standard_normal(120)[np.searchsorted(X.index.levels[0], dates)]
    y = pd.Series(np.where(stressed, -1.0, 1.0) * X["v__f0"].to_numpy() + rng.standard_normal(len(X)), index=X.index)
    Xs = X.assign(**{f"{STATE_PREFIX}0": state})
    model = RegimeRidgeModel(alpha=0.01, shrink=0.01, quantile=0.75, min_dates=10).fit(Xs, y)
    assert model.coef_regime_[0][0] > 0.5 and model.coef_regime_[1][0] < -0.5
    pooled = RidgeModel(0.01).fit(X, y)
    err_regime = np.mean((model.predict(Xs) - y) ** 2)
    err_pooled = np.mean((pooled.predict(X) - y) ** 2)
    assert err_regime < err_pooled
    with pytest.raises(ValueError):
        RegimeRidgeModel().fit(X, y)


# ------------------------------------------------------------------------------ every family
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_interface_signal_determinism_and_persistence(family, tmp_path):
    X, y = small_panel(80, 40, 4, noise=1.0)
    cls = FAMILIES[family]
    params = {"random_state": 0} if "random_state" in cls().get_params() else {}
    if family in ("lightgbm", "xgboost", "extra_trees"):
        params["n_estimators"] = 30
    model = make_model(family, **params)
    Xf = X.assign(**{f"{STATE_PREFIX}0": market_state(X, ["v__f2"], "iqr").iloc[:, 0]}) if cls.needs_state else X
    assert isinstance(cls.grid, dict)
    for key, values in cls.grid.items():
        assert key in model.get_params() and len(values) >= 1
    clone(model).set_params(**{k: v[0] for k, v in cls.grid.items()})
    y_missing = y.copy()
    y_missing.iloc[::11] = np.nan  # missing targets are ignored
    fitted = model.fit(Xf, y_missing)
    pred = fitted.predict(Xf)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    truth = X["v__f0"] - 0.5 * X["v__f1"]
    assert np.corrcoef(pred, truth)[0, 1] > 0.5
    again = clone(model).fit(Xf, y_missing).predict(Xf)
    np.testing.assert_array_equal(pred, again)
    wrapped = CrossSectionalModel.from_fitted(fitted, list(X.columns))
    directory = tmp_path / family
    directory.mkdir()
    name = fitted.save(directory)
    assert (directory / name).exists()
    if cls.artifact_format in ("lightgbm-text", "xgboost-json"):
        loaded = cls.load_native(directory / name, fitted.get_params(), list(X.columns))
    else:
        loaded = cls.load(directory / name)
    np.testing.assert_allclose(loaded.predict(Xf), pred, rtol=1e-5, atol=1e-7)
    assert wrapped.layout()["features"] == list(X.columns)


def test_cross_sectional_model_serves_raw_rows_one_day_at_a_time():
    X, y = small_panel(60, 40, 3)
    raw = X * 100 + 7  # any scale
    model = CrossSectionalModel(make_model("regime_ridge"), preprocess="rank_gauss").fit(raw, y)
    assert model.state_columns_  # regime families get a market state, here from dispersion
    full = model.predict(raw)
    last = raw.index.levels[0][-1]
    one_day = raw.xs(last, level="date", drop_level=False)
    np.testing.assert_allclose(model.predict(one_day), full[-40:])
    frame = raw.reset_index()
    np.testing.assert_allclose(model.predict(frame), full)


def test_make_model_rejects_unknown_things():
    with pytest.raises(ValueError):
        make_model("nope")
    with pytest.raises(ValueError):
        make_model("ridge", bogus=1)


def test_screened_ridge_keeps_the_reliable_features_of_its_training_window_only():
    """Two weak real features among 30; a third becomes informative only after the training window."""
    rng = np.random.default_rng(5)
    T, N, p = 400, 60, 30
    dates = pd.bdate_range("2020-01-01", periods=T)
    idx = pd.MultiIndex.from_product([dates, [f"S{i}" for i in range(N)]], names=["date", "symbol"])
    X = pd.DataFrame(rng.normal(size=(T * N, p)), index=idx, columns=[f"f{j}" for j in range(p)])
    late = (idx.get_level_values("date") >= dates[200]).astype(float)
    y = pd.Series(0.1 * X["f0"] - 0.08 * X["f1"] + 0.3 * late * X["f2"] + rng.normal(size=T * N), index=idx)
    train = idx.get_level_values("date") < dates[200]
    model = make_model("screened_ridge", t_min=3.0).fit(X[train], y[train])
    assert list(np.flatnonzero(model.selected_)) == [0, 1]
    assert model.coef_[0] > 0 > model.coef_[1] and np.count_nonzero(model.coef_) == 2
    everything = make_model("screened_ridge", t_min=3.0).fit(X, y)
    assert everything.selected_[2] == 1.0  # the late feature is found once its dates are in the window


def test_screened_ridge_abstains_when_nothing_passes_the_screen():
    rng = np.random.default_rng(6)
    dates = pd.bdate_range("2020-01-01", periods=200)
    idx = pd.MultiIndex.from_product([dates, [f"S{i}" for i in range(40)]], names=["date", "symbol"])
    X = pd.DataFrame(rng.normal(size=(len(idx), 10)), index=idx, columns=[f"f{j}" for j in range(10)])
    y = pd.Series(rng.normal(size=len(idx)), index=idx)
    model = make_model("screened_ridge", t_min=6.0).fit(X, y)
    assert not model.coef_.any() and np.ptp(model.predict(X)) == 0.0


# ------------------------------------------------------------------------------ training-window half-life
def test_decay_weights_halve_every_halflife_dates_and_none_means_the_expanding_window():
    from ml.models.base import decay_weights

    w = decay_weights(11, 5)
    np.testing.assert_allclose(w[[-1, -6, 0]], [1.0, 0.5, 0.25])
    assert decay_weights(11, None) is None
    with pytest.raises(ValueError, match="halflife"):
        decay_weights(11, 0)


def test_ridge_with_a_halflife_is_weighted_least_squares_by_date_age():
    X, y = small_panel(40, 30, 4, noise=2.0)
    codes, dates = date_codes(X.index)
    age = (len(dates) - 1 - codes).astype(float)
    weights = 0.5 ** (age / 10.0)
    decayed = RidgeModel(alpha=0.5, halflife=10).fit(X, y)
    n_eff = weights.sum()
    ref = Ridge(alpha=0.5 * n_eff).fit(X.to_numpy(), y.to_numpy(), sample_weight=weights)
    np.testing.assert_allclose(decayed.coef_, ref.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(decayed.intercept_, ref.intercept_, atol=1e-9)
    assert not np.allclose(decayed.coef_, RidgeModel(alpha=0.5).fit(X, y).coef_)


def test_a_halflife_follows_a_change_of_slopes_the_expanding_window_averages_away():
    X, y = small_panel(200, 40, 2, noise=0.5)
    dates = X.index.get_level_values("date")
    late = dates >= X.index.levels[0][150]
    flipped = y.copy()
    flipped[late] = -X.loc[late, "v__f0"] + 0.5 * rng_noise(late.sum())
    expanding = RidgeModel(alpha=0.01).fit(X, flipped)
    recent = RidgeModel(alpha=0.01, halflife=10).fit(X, flipped)
    assert expanding.coef_[0] > 0 > recent.coef_[0]


def rng_noise(n: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal(n)


@pytest.mark.parametrize("family", ["ridge", "lasso", "elastic_net", "bayes_ridge", "regime_ridge", "screened_ridge"])
def test_every_pooled_linear_family_takes_a_halflife_and_none_changes_nothing(family):
    X, y = small_panel(60, 30, 4)
    if FAMILIES[family].needs_state:
        X = X.join(market_state(X, ["v__f0"], "median"))
    plain = make_model(family).fit(X, y)
    same = make_model(family, halflife=None).fit(X, y)
    np.testing.assert_array_equal(plain.predict(X), same.predict(X))
    decayed = make_model(family, halflife=5).fit(X, y)
    assert np.isfinite(decayed.predict(X)).all()


def test_a_training_window_of_moments_is_a_read_only_view_not_a_copy():
    X, y = small_panel(20, 30, 3)
    codes, dates = date_codes(X.index)
    m = DateMoments.from_arrays(X.to_numpy(), y.to_numpy(), codes, len(dates))
    window = m.subset(np.arange(5, 12))
    assert np.shares_memory(window.sxx, m.sxx)  # consecutive dates: a slice of the per-date arrays
    with pytest.raises(ValueError):
        window.sxx[0, 0, 0] = 1.0  # shared by every window of the view: never written in place
    scattered = m.subset(np.array([1, 4, 9]))
    np.testing.assert_array_equal(scattered.sxx, m.sxx[[1, 4, 9]])
    keep = X.index.get_level_values("date").isin(dates[[1, 4, 9]])
    np.testing.assert_allclose(RidgeModel(0.1).fit_moments(scattered, X.columns).coef_,
                               RidgeModel(0.1).fit(X[keep], y[keep]).coef_)
