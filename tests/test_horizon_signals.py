"""Other label horizons: one ensemble each, and each used by the policy at its own measured speed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.horizon_signals import (
    component_grids,
    horizon_alphas,
    horizon_config,
    model_horizon,
    models_by_horizon,
    primary_candidates,
    residualize,
)


def test_a_models_horizon_is_read_from_its_id_and_the_primary_comes_first():
    ids = ["ridge@21d-all-abc", "ridge-all-def", "screened_ridge@1d-all-123", "lasso-price_momentum-9"]
    assert model_horizon("ridge@21d-all-abc", 5) == 21
    assert model_horizon("ridge-all-def", 5) == 5
    groups = models_by_horizon(ids, primary=5)
    assert list(groups) == [5, 1, 21]
    assert groups[5] == ["ridge-all-def", "lasso-price_momentum-9"]
    cfg = horizon_config({"method": "stacked", "horizon": 5, "label": {"demean": True}}, 21)
    assert cfg["horizon"] == 21 and cfg["label"] == {"demean": True, "column": "fwd_ret_sn_21d"}


def test_the_primary_ensemble_weighs_the_shorter_horizons_models_by_default():
    groups = models_by_horizon(["ridge-all-a", "ridge@21d-all-b", "ridge@1d-all-c", "lasso@2d-all-d"], primary=5)
    primary = groups.pop(5)
    from ml import ensemble as ens

    cfg = ens.load_config({"horizon": 5})  # the shipped default: shorter
    assert primary_candidates(primary, groups, cfg) == ["ridge-all-a", "ridge@1d-all-c", "lasso@2d-all-d"]
    assert primary_candidates(primary, groups, {**cfg, "other_horizons": "all"}) == [
        "ridge-all-a", "ridge@1d-all-c", "lasso@2d-all-d", "ridge@21d-all-b"]
    assert primary_candidates(primary, groups, {**cfg, "other_horizons": "none"}) == ["ridge-all-a"]
    assert primary_candidates(primary, groups, {"horizon": 21, "other_horizons": "shorter"}) == [
        "ridge-all-a", "ridge@1d-all-c", "lasso@2d-all-d"]
    assert primary_candidates(primary, {}, {**cfg, "other_horizons": "all"}) == ["ridge-all-a"]
    with pytest.raises(ValueError, match="other_horizons"):
        primary_candidates(primary, groups, {**cfg, "other_horizons": "longer"})


def test_an_other_horizon_model_earns_primary_weight_only_as_far_as_it_ranks_the_primary_label():
    """A 1-day model that knows a 5-day channel the 5-day model misses is weighed in; a 21-day model of
    noise much less: the stacker judges both walk-forward on the primary label."""
    from ml import ensemble as ens

    rng = np.random.default_rng(3)
    dates, names = pd.bdate_range("2020-01-01", periods=400), [f"S{i:02d}" for i in range(60)]
    idx = pd.MultiIndex.from_product([dates, names], names=["date", "symbol"])
    a, b = rng.normal(size=len(idx)), rng.normal(size=len(idx))
    label = pd.Series(0.3 * a + 0.3 * b + rng.normal(size=len(idx)), index=idx)
    panel = pd.DataFrame({"ridge-all-x": a + rng.normal(size=len(idx)),
                          "ridge@1d-all-y": b + rng.normal(size=len(idx)),
                          "ridge@21d-all-z": rng.normal(size=len(idx))}, index=idx)
    groups = models_by_horizon(list(panel.columns), primary=5)
    primary = groups.pop(5)
    cfg = ens.load_config({"method": "stacked", "stacked": {"min_train_days": 63}})
    ics = {}
    for switch in (False, True):
        models = primary_candidates(primary, groups, {"horizon": 5, "other_horizons": "all" if switch else "none"})
        _, results = ens.ensembles_from_config(panel[models], label, cfg, methods=["stacked"])
        result = results["stacked"]
        late = result.score.index.get_level_values("date") >= dates[200]
        ics[switch] = ens.daily_rank_ic(result.score[late].to_frame("s"), label)["s"].mean()
        if switch:
            weights = result.weights.iloc[200:].mean()
            assert weights["ridge@1d-all-y"] > 0.3  # the stacker shrinks toward equal weights, so noise keeps some
            assert weights["ridge@21d-all-z"] < 0.5 * weights["ridge@1d-all-y"]
    assert ics[True] > ics[False] + 0.05


def test_a_residual_is_orthogonal_to_its_bases_on_each_date_and_nan_where_any_input_is():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 50))
    target = 0.7 * base + rng.normal(size=(4, 50)) + 3.0
    base[0, :3] = np.nan
    res = residualize(target, [base])
    assert np.isnan(res[0, :3]).all() and np.isfinite(res[0, 3:]).all()
    for t in range(4):
        ok = np.isfinite(res[t])
        assert abs(res[t, ok].mean()) < 1e-9
        assert abs(np.dot(res[t, ok], base[t, ok] - base[t, ok].mean())) < 1e-6
    # a target that is the base itself leaves nothing
    assert np.nanmax(np.abs(residualize(2.0 * base, [base]))) < 1e-6


def _market(T=700, N=60, seed=1):
    """Daily returns driven by a slow signal (the primary, persistent) and a fast one (1-day life) that
    the primary does not know; a third 'horizon' is noise."""
    rng = np.random.default_rng(seed)
    slow = np.cumsum(rng.normal(size=(T, N)), axis=0) * 0.05
    slow = (slow - slow.mean(axis=1, keepdims=True)) / slow.std(axis=1, keepdims=True)
    fast = rng.normal(size=(T, N))
    noise = rng.normal(size=(T, N))
    ret = np.zeros((T, N))
    ret[1:] = 0.002 * slow[:-1] / 5 + 0.003 * fast[:-1] + 0.02 * rng.normal(size=(T - 1, N))  # r[t] is into t
    sigma = np.full((T, N), 0.02)
    return slow * 20.0, fast * 15.0, noise * 10.0, ret, sigma


def test_a_fast_horizon_adds_alpha_with_a_short_life_and_a_noise_horizon_adds_none():
    slow, fast, noise, ret, sigma = _market()
    extra, life, edges = horizon_alphas(slow, {1: fast, 21: noise}, ret, sigma, min_dates=63)
    late = slice(400, None)
    assert edges[1].edge[late].min() > 0, "the fast signal's edge is measured"
    assert np.median(edges[1].horizon[late]) <= 3, "its life is short"
    assert np.mean(edges[21].edge[late] > 0) < 0.1, "noise is shrunk to nothing almost always"
    corr = np.corrcoef(extra[late].ravel(), fast[late].ravel())[0, 1]
    assert corr > 0.8
    assert (life[late] >= edges[1].horizon[late]).all()


def test_the_added_alpha_at_t_uses_only_returns_known_at_t():
    slow, fast, noise, ret, sigma = _market(T=400)
    extra, _, _ = horizon_alphas(slow, {1: fast, 21: noise}, ret, sigma, min_dates=63)
    t = 300
    tampered = ret.copy()
    tampered[t + 1:] = np.random.default_rng(9).normal(size=tampered[t + 1:].shape)
    extra2, _, _ = horizon_alphas(slow, {1: fast, 21: noise}, tampered, sigma, min_dates=63)
    np.testing.assert_array_equal(extra[: t + 1], extra2[: t + 1])
    assert not np.allclose(extra[t + 30:], extra2[t + 30:])


def test_component_grids_place_each_horizon_on_the_market_grid():
    dates = pd.to_datetime(["2024-01-02", "2024-01-03"])
    frame = pd.DataFrame({"date": [dates[0], dates[1], dates[1]], "symbol": ["A", "B", "A"],
                          "horizon": [1, 1, 21], "expected_return": [1.0, 2.0, 3.0]})

    def grid(series: pd.Series) -> np.ndarray:
        return series.unstack("symbol").reindex(index=dates, columns=["A", "B"]).to_numpy()

    grids = component_grids(frame, grid)
    assert sorted(grids) == [1, 21]
    np.testing.assert_array_equal(grids[1], [[1.0, np.nan], [np.nan, 2.0]])
    assert component_grids(frame.iloc[:0], grid) == {}
    # published with the calibration's track record (scale per row): placed as the curve gave them
    scaled = frame.assign(expected_return=frame["expected_return"] * [0.5, 0.25, 0.1],
                          track_record_scale=[0.5, 0.25, 0.1])
    np.testing.assert_allclose(component_grids(scaled, grid)[1], grids[1])
    np.testing.assert_allclose(component_grids(scaled, grid)[21], grids[21])


@pytest.mark.parametrize("with_components", [False, True])
def test_the_held_book_policy_runs_with_and_without_other_horizons(with_components):
    from ml.backtest import market_panel
    from ml.policy import SignalPanel, load_config, policy_from_config

    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-01", periods=260)
    symbols = [f"S{i:02d}" for i in range(30)]
    closes = 100 * np.exp(np.cumsum(0.01 * rng.normal(size=(len(dates), len(symbols))), axis=0))
    prices = pd.DataFrame({"date": np.repeat(dates, len(symbols)), "symbol": np.tile(symbols, len(dates)),
                           "close": closes.ravel(), "volume": 1e6})
    securities = pd.DataFrame({"symbol": symbols, "sector": ["X", "Y", "Z"] * 10})
    market = market_panel(prices, securities)
    er = pd.Series(rng.normal(size=len(prices)) * 20.0,
                   index=pd.MultiIndex.from_arrays([prices["date"], prices["symbol"]], names=["date", "symbol"]))
    frame = er.rename("expected_return").to_frame().assign(uncertainty=1.0)
    hsig = None
    if with_components:
        hsig = er.rename("expected_return").reset_index().assign(horizon=1, expected_return=lambda f: f[
            "expected_return"] * 0.5 + rng.normal(size=len(f)))
    panel = SignalPanel.from_frame(frame, market, hsig)
    assert bool(panel.components) is with_components
    result = policy_from_config(load_config()).run(panel, market, start=10)
    gross = np.abs(result.weights).sum(axis=1)
    assert np.all(gross <= 2.0 + 1e-6)
    if with_components:
        assert result.constants["constant"].str.endswith("_h1d").any()
