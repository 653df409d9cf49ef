"""The neural meta-model (NeuralStacked) and the walk-forward choice between ensemble methods
(WalkForwardChoice): point in time (changing labels the date could not know changes nothing),
deterministic, and they do what they are for on a market with a planted signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from policy_fixtures import toy_market

from ml import ensemble as ens
from ml.backtest import forward_label, market_panel
from ml.ensemble_neural import NeuralStacked, WalkForwardChoice, gate_weights
from ml.evaluation import score_metrics

H = 5
NEURAL = dict(horizon=H, refit="M", min_train_days=60, ic_window=40, ic_min_periods=10, steps=60, warm_steps=15)


@pytest.fixture(scope="module")
def toy():
    market = toy_market()
    label = forward_label(market_panel(market.prices, market.securities), H, "sector")
    panel = ens.standardize(ens.score_panel(market.predictions))
    return label, panel


@pytest.fixture(scope="module")
def neural(toy):
    label, panel = toy
    weighter = NeuralStacked(**NEURAL)
    return weighter, weighter.weights(panel, label)


def _tampered(label: pd.Series, cutoff) -> pd.Series:
    dates = label.index.get_level_values("date")
    return label.where(dates <= cutoff, -5 * label + 0.01)


def test_neural_weights_are_a_distribution_over_the_models_present(toy, neural):
    _, panel = toy
    _, w = neural
    assert (w.to_numpy() >= 0).all()
    assert np.allclose(w.sum(axis=1), 1.0)
    assert list(w.columns) == list(panel.columns)


def test_neural_weights_at_t_use_only_labels_known_at_t(toy, neural):
    """Weights of dates <= t are bit-identical when every label after t - h - 1 is changed."""
    label, panel = toy
    weighter, base = neural
    calendar = base.index
    t = 250
    again = NeuralStacked(**NEURAL).weights(panel, _tampered(label, calendar[t - H - 1]))
    np.testing.assert_array_equal(base.iloc[: t + 1].to_numpy(), again.iloc[: t + 1].to_numpy())
    assert not np.allclose(base.iloc[-1], again.iloc[-1])  # ... while later weights do see them
    assert all(d <= calendar[-1] for d, _ in weighter.fitted)


def test_neural_weights_are_deterministic(toy, neural):
    label, panel = toy
    _, base = neural
    pd.testing.assert_frame_equal(base, NeuralStacked(**NEURAL).weights(panel, label))


def test_neural_weights_are_equal_before_the_first_fit_and_learn_the_good_model(toy, neural):
    _, panel = toy
    weighter, w = neural
    first_fit = weighter.fitted[0][0]
    assert np.allclose(w.loc[w.index < first_fit], 1.0 / panel.shape[1])
    late = w.iloc[-40:].mean()
    assert late["good-toy"] == late.max()
    assert late["wrong-toy"] < 1.0 / panel.shape[1] < late["good-toy"]


def test_a_larger_penalty_keeps_the_neural_weights_closer_to_equal(toy, neural):
    label, panel = toy
    _, w = neural
    strong = NeuralStacked(**{**NEURAL, "l2": 5.0}).weights(panel, label)
    spread = lambda frame: float(frame.iloc[-40:].std(axis=1).mean())  # noqa: E731
    assert spread(strong) < spread(w)


def test_gate_weights_leave_absent_models_out():
    params = {"w1": np.ones((3, 2)), "b1": np.zeros(2), "w2": np.ones(2), "bias": np.array([0.0, 1.0, 2.0])}
    w = gate_weights(params, np.zeros((1, 3, 3)), np.array([[True, False, True]]))
    assert w[0, 1] == 0.0 and np.isclose(w.sum(), 1.0) and w[0, 2] > w[0, 0]


def test_neural_stacked_beats_equal_weights_with_a_wrong_model_in_the_zoo(toy, neural):
    label, panel = toy
    _, w = neural
    neural_ic = score_metrics(ens.combine(panel, w)[0], label, H)["rank_ic"]
    equal_ic = score_metrics(ens.combine(panel, ens.EqualWeight().weights(panel))[0], label, H)["rank_ic"]
    assert neural_ic > equal_ic


# ================================================================================ walk-forward choice
CHOICE_CFG = {"ic_weighted": {"window": 60, "min_periods": 20, "shrinkage": 0.0}}


def _choice(**kw) -> WalkForwardChoice:
    return WalkForwardChoice(horizon=H, candidates=("equal", "ic_weighted"), window=60, min_periods=20,
                             config=CHOICE_CFG, **kw)


def test_the_choice_picks_the_method_with_the_better_trailing_ic(toy):
    """With a wrong model in the zoo, IC-weighting (which drops it) beats equal weights, and the
    walk-forward choice moves to it once enough IC is known; its score is as good as the better one."""
    label, panel = toy
    chooser = _choice()
    w = chooser.weights(panel, label)
    assert (chooser.choice.iloc[:20] == "equal").all()  # warm-up: the first candidate
    assert (chooser.choice.iloc[-100:] == "ic_weighted").mean() > 0.9
    ics = {name: score_metrics(ens.combine(panel, frame)[0], label, H)["rank_ic"]
           for name, frame in {"choice": w, **chooser.candidate_weights}.items()}
    assert ics["ic_weighted"] > ics["equal"]
    assert ics["choice"] > ics["equal"]
    picked = chooser.candidate_weights["ic_weighted"].iloc[-1]
    pd.testing.assert_series_equal(w.iloc[-1], picked)


def test_the_choice_at_t_uses_only_labels_known_at_t(toy):
    label, panel = toy
    calendar = pd.DatetimeIndex(sorted(panel.index.get_level_values("date").unique()))
    t = 200
    a, b = _choice(), _choice()
    wa = a.weights(panel, label)
    wb = b.weights(panel, _tampered(label, calendar[t - H - 1]))
    np.testing.assert_array_equal(wa.iloc[: t + 1].to_numpy(), wb.iloc[: t + 1].to_numpy())
    assert a.choice.iloc[: t + 1].equals(b.choice.iloc[: t + 1])


def test_the_choice_cannot_choose_itself(toy):
    label, panel = toy
    with pytest.raises(ValueError, match="other methods"):
        WalkForwardChoice(horizon=H, candidates=("equal", "walk_forward_choice")).weights(panel, label)


def test_both_are_ensemble_methods_built_from_the_config(toy):
    label, panel = toy
    assert {"neural_stacked", "walk_forward_choice"} <= set(ens.METHODS)
    cfg = ens.load_config({"neural_stacked": {k: v for k, v in NEURAL.items() if k != "horizon"},
                           "walk_forward_choice": {"candidates": ["equal", "neural_stacked"], "window": 60,
                                                   "min_periods": 20},
                           "method": "walk_forward_choice"})
    weighter = ens.make_weighter("walk_forward_choice", cfg, H)
    assert isinstance(weighter, WalkForwardChoice) and weighter.candidates == ["equal", "neural_stacked"]
    assert isinstance(ens.make_weighter("neural_stacked", cfg, H), NeuralStacked)
    used, results = ens.ensembles_from_config(panel, label, cfg, methods=["equal", "neural_stacked",
                                                                        "walk_forward_choice"])
    alone = ens.make_weighter("walk_forward_choice", cfg, H).weights(used, label)  # nothing reused
    pd.testing.assert_frame_equal(results["walk_forward_choice"].weights, alone)
