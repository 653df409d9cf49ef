"""The JAX tabular families (residual_mlp, ft_transformer): interface, determinism, .npz persistence,
MC-dropout uncertainty, early stopping by date, and no look-ahead through the walk-forward trainer.

Networks here are tiny (width 8, a few epochs) so that the file runs in seconds; each distinct
(network, feature count) compiles once per process, so the tests share two settings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lookahead import assert_past_unchanged, poison_after
from sklearn.base import clone
from test_training import small_config, synthetic_frames

from ml.models.artifacts import _load_estimator
from ml.models.neural import early_stopping_split
from ml.training import build_view_frames, prepare_view, train_spec
from ml.zoo import FAMILIES, make_model

NEURAL = ("residual_mlp", "ft_transformer")
TINY = {
    "residual_mlp": {"width": 8, "n_blocks": 1, "max_epochs": 6, "batch_size": 256},
    "ft_transformer": {"d_token": 8, "n_heads": 2, "n_layers": 1, "max_epochs": 6, "batch_size": 256},
}


def panel(n_dates: int = 60, n_symbols: int = 40, p: int = 3, seed: int = 0):
    """Panel with y = x0 - 0.5 x1 + x0 * x2 (an interaction) + noise, indexed by (date, symbol)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=n_dates)
    idx = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(n_symbols)]], names=["date", "symbol"])
    X = pd.DataFrame(rng.standard_normal((len(idx), p)).astype("float32"), index=idx,
                     columns=[f"v__f{j}" for j in range(p)])
    signal = X["v__f0"] - 0.5 * X["v__f1"] + X["v__f0"] * X["v__f2"]
    return X, pd.Series(signal.to_numpy() + 0.5 * rng.standard_normal(len(idx)), index=idx), signal


@pytest.fixture(scope="module")
def data():
    return panel()


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _ = data
    return {f: make_model(f, **TINY[f]).fit(X, y) for f in NEURAL}


@pytest.mark.parametrize("family", NEURAL)
def test_fit_predict_shapes_and_learns_the_signal(family, fitted, data):
    X, _, signal = data
    model = fitted[family]
    assert FAMILIES[family] is type(model) and model.artifact_format == "npz"
    pred = model.predict(X)
    assert pred.shape == (len(X),) and pred.dtype == np.float64 and np.isfinite(pred).all()
    assert np.corrcoef(pred, signal)[0, 1] > 0.6
    # any row count (padded chunks), and a row's score does not depend on the other rows scored with it
    np.testing.assert_allclose(model.predict(X.iloc[-7:]), pred[-7:], rtol=1e-6, atol=1e-7)
    assert 1 <= model.history_["best_epoch"] <= model.history_["epochs"] <= TINY[family]["max_epochs"]


@pytest.mark.parametrize("family", NEURAL)
def test_same_seed_same_predictions_other_seed_differs(family, fitted, data):
    X, y, _ = data
    again = clone(fitted[family]).fit(X, y)
    np.testing.assert_array_equal(again.predict(X), fitted[family].predict(X))
    other = clone(fitted[family]).set_params(random_state=1).fit(X, y)
    assert not np.array_equal(other.predict(X), fitted[family].predict(X))


@pytest.mark.parametrize("family", NEURAL)
def test_npz_round_trip_gives_identical_predictions_and_std(family, fitted, data, tmp_path):
    X, _, _ = data
    model = fitted[family]
    name = model.save(tmp_path)
    assert name == "model.npz"
    with np.load(tmp_path / name, allow_pickle=False) as npz:  # plain arrays, no pickled objects
        assert "header" in npz.files and all(npz[k].dtype != object for k in npz.files)
    loaded = _load_estimator(tmp_path / name, "npz", family, model.get_params(), list(model.feature_names_in_))
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_std(X, 5), model.predict_std(X, 5))


@pytest.mark.parametrize("family", NEURAL)
def test_mc_dropout_std_is_positive_and_deterministic_given_the_seed(family, fitted, data):
    X, _, _ = data
    model = fitted[family]
    std = model.predict_std(X, n_samples=8)
    assert std.shape == (len(X),) and (std > 0).all()
    np.testing.assert_array_equal(std, model.predict_std(X, n_samples=8))
    assert not np.array_equal(std, model.predict_std(X, n_samples=8, seed=7))
    # without dropout there is no spread: the deterministic prediction is the zero-rate forward
    assert clone(model).set_params(dropout=0.0).fit(X.iloc[:400], pd.Series(0.0, index=X.index[:400])) \
        .predict_std(X.iloc[:50], 4).max() == 0.0
    with pytest.raises(ValueError):
        model.predict_std(X, n_samples=1)


def test_early_stopping_holds_out_the_last_dates_after_a_purge():
    codes = np.repeat(np.arange(100), 3)
    fit_rows, val_rows = early_stopping_split(codes, 0.2, overlap=5)
    assert set(codes[val_rows]) == set(range(80, 100))
    assert set(codes[fit_rows]) == set(range(0, 75))  # 5 purged dates: no label overlaps the held-out days
    assert early_stopping_split(codes[:60], 0.2, overlap=5) is None  # too few dates: no early stopping


def neural_config():
    return small_config(views=["price_momentum"], families={
        f: {"params": TINY[f], "max_train_rows": 3000, "grid": {"dropout": [0.1, 0.3]}} for f in NEURAL})


@pytest.mark.parametrize("family", NEURAL)
def test_no_look_ahead_future_changes_leave_past_predictions_alone(family):
    """As tests/test_training.py's test of the same name: scramble every label after fold k's training
    window and every feature after its test period; no prediction up to the end of that test period
    may move (tuning, early stopping and row subsampling included), later ones must."""
    frames = synthetic_frames(n_symbols=30, n_days=300)
    cfg = neural_config()

    def run(fr):
        prep = prepare_view(build_view_frames(fr, cfg)["price_momentum"], "price_momentum", cfg)
        return train_spec(prep, family, cfg, fit_final=False)

    base = run(frames)
    fold = base.folds.iloc[3]
    other = run(poison_after(frames, fold))
    assert_past_unchanged(base, other, fold)
    assert base.metrics["rank_ic"] > 0.03  # and the walk-forward finds the toy market's signal
