"""The sequence family `gru` (ml/models/sequence.py): windows are the name's own past, never the future.

Every fit here uses one tiny configuration (few steps, small batch), so jax compiles the training loop
once for the whole module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lookahead import assert_past_unchanged, poison_after
from test_training import small_config, synthetic_frames

from ml.models.sequence import SequenceModel, history_design, history_scores, panel_codes, trailing_windows
from ml.paths import DataPaths
from ml.training import build_view_frames, prepare_view, train_spec
from ml.zoo import FAMILIES

TINY = {"window": 5, "hidden": 4, "n_inputs": 3, "steps": 20, "batch_size": 64}


def panel(n_dates: int = 30, n_symbols: int = 6, p: int = 4, seed: int = 0) -> pd.DataFrame:
    """Normalized-like features on a (date, symbol) index; one name missing on some dates."""
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product([pd.bdate_range("2021-01-04", periods=n_dates),
                                      [f"S{j}" for j in range(n_symbols)]], names=["date", "symbol"])
    X = pd.DataFrame(rng.standard_normal((len(idx), p)), index=idx, columns=[f"v__f{i}" for i in range(p)])
    gone = (idx.get_level_values("symbol") == "S2") & np.isin(np.arange(len(idx)) // n_symbols, [7, 8, 20])
    return X[~gone]


def target(X: pd.DataFrame, seed: int = 1) -> pd.Series:
    """A target driven by the name's feature 0 two dates ago (something a window can see)."""
    lagged = X["v__f0"].groupby(level="symbol").shift(2)
    noise = np.random.default_rng(seed).standard_normal(len(X))
    return (0.5 * lagged + 0.5 * noise).rename("y")


def test_registered_with_a_history_flag_and_npz_artifact():
    assert FAMILIES["gru"] is SequenceModel
    assert SequenceModel.needs_history and SequenceModel.artifact_format == "npz"
    assert SequenceModel(window=12).history_days == 11


def test_window_is_the_names_own_past_oldest_first_zero_where_absent():
    """Each feature value encodes (symbol, date): every window entry must be the row's own symbol at
    the L dates up to its own date, in order, and 0 before the panel or where the name has no row."""
    X = panel(n_dates=12, n_symbols=4, p=1)
    dcodes, scodes = panel_codes(X.index)
    code = (scodes + 1) * 1000 + dcodes  # > 0 everywhere: 0 means "no row"
    w = trailing_windows(code[:, None].astype(float), dcodes, scodes, window=4)[:, :, 0]
    assert w.shape == (len(X), 4)
    present = {(int(s), int(d)) for s, d in zip(scodes, dcodes, strict=True)}
    for i in range(len(X)):  # 46 rows: a spelled-out check, not the implementation's gather
        for j, lag in enumerate(range(3, -1, -1)):
            d = dcodes[i] - lag
            expected = (scodes[i] + 1) * 1000 + d if d >= 0 and (scodes[i], d) in present else 0
            assert w[i, j] == expected
    assert w[:, -1].tolist() == code.tolist()  # the last step is the row itself


def test_fit_predict_shapes_determinism_and_save_load(tmp_path):
    X = panel()
    y = target(X)
    a = SequenceModel(**TINY).fit(X, y)
    b = SequenceModel(**TINY).fit(X, y)
    pa = a.predict(X)
    assert pa.shape == (len(X),) and np.isfinite(pa).all() and pa.std() > 0
    np.testing.assert_array_equal(pa, b.predict(X))  # same seed, same weights, same scores
    assert not np.array_equal(pa, SequenceModel(**TINY, random_state=1).fit(X, y).predict(X))
    name = a.save(tmp_path)
    assert name == "model.npz" and (tmp_path / name).exists()
    loaded = SequenceModel.load(tmp_path / name)
    np.testing.assert_array_equal(loaded.predict(X), pa)
    assert loaded.get_params() == a.get_params()
    with np.load(tmp_path / name, allow_pickle=False) as data:  # plain arrays: no pickle needed
        assert "meta" in data.files


def test_rows_without_target_only_supply_history():
    """y NaN on the first dates: they are not fitted, but the later rows' windows still read them."""
    X = panel()
    y = target(X)
    early = X.index.get_level_values("date") < X.index.get_level_values("date").unique()[10]
    model = SequenceModel(**TINY).fit(X, y.where(~early))
    changed = X.copy()
    changed.loc[early, "v__f0"] += 1.0
    later = ~early
    assert not np.allclose(model.predict(X)[later], model.predict(changed)[later])


def test_tampering_with_later_dates_or_other_names_leaves_a_prediction_alone():
    X = panel()
    model = SequenceModel(**TINY).fit(X, target(X))
    base = model.predict(X)
    dates = X.index.get_level_values("date")
    cut = dates.unique()[17]
    future = X.copy()
    future.loc[dates > cut] = np.random.default_rng(5).standard_normal(((dates > cut).sum(), X.shape[1]))
    np.testing.assert_array_equal(model.predict(future)[dates <= cut], base[dates <= cut])
    other = X.copy()
    symbols = X.index.get_level_values("symbol")
    other.loc[symbols != "S3"] *= -3.0
    np.testing.assert_array_equal(model.predict(other)[symbols == "S3"], base[symbols == "S3"])
    assert not np.allclose(model.predict(other)[symbols != "S3"], base[symbols != "S3"])


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(n_symbols=24, n_days=260)


def gru_config():
    return small_config(views=["price_momentum"], cv={"min_train_days": 120, "tune_every": 4, "embargo": 2},
                        families={"gru": {"cadence": "M", "max_train_rows": 2000, "params": TINY,
                                          "grid": {"l2": [1e-4, 1e-2]}}})


def test_trainer_hands_the_panel_up_to_the_window_end_with_y_on_training_rows_only(frames):
    cfg = gru_config()
    prep = prepare_view(build_view_frames(frames, cfg)["price_momentum"], "price_momentum", cfg)
    first, last = 30, 80
    rows = np.arange(prep.bounds[first], prep.bounds[last + 1])[::3]
    X, y = history_design(prep, rows, first, last, history_days=4)
    dates = X.index.get_level_values("date")
    assert dates.min() == prep.calendar[first - 4] and dates.max() == prep.calendar[last]
    assert np.isfinite(y.to_numpy()).sum() == np.isfinite(prep.y[rows]).sum()
    np.testing.assert_array_equal(y.dropna().to_numpy(), prep.y[rows][np.isfinite(prep.y[rows])])


def test_no_look_ahead_through_the_walk_forward_trainer(frames):
    """As tests/test_training.py's check: scramble every label dated after fold k's training window and
    every feature dated after its test period; no prediction up to that test period's end may move."""
    cfg = gru_config()
    view = "price_momentum"
    base = train_spec(prepare_view(build_view_frames(frames, cfg)[view], view, cfg), "gru", cfg, fit_final=False)
    fold = base.folds.iloc[2]
    poisoned = poison_after(frames, fold)
    other = train_spec(prepare_view(build_view_frames(poisoned, cfg)[view], view, cfg), "gru", cfg, fit_final=False)
    assert len(base.folds) > 3 and base.folds["tuned"].any()
    assert_past_unchanged(base, other, fold)


def test_serving_scores_today_as_the_batch_panel_does(frames, tmp_path, monkeypatch):
    """history_scores (today's vectors + the trailing dates from the offline store) gives the final
    model's scores of the full panel's last date."""
    from ml import feature_store

    cfg = gru_config()
    view = "price_momentum"
    wide = build_view_frames(frames, cfg)[view]
    res = train_spec(prepare_view(wide, view, cfg), "gru", cfg)
    model = res.final_model
    raw = wide.assign(date=pd.to_datetime(wide["date"])).set_index(["date", "symbol"])[res.features]
    dates = raw.index.get_level_values("date")
    today = dates.max()
    batch = pd.Series(model.predict(raw), index=raw.index).loc[today]

    paths = DataPaths(tmp_path)
    paths.raw.mkdir(parents=True)
    raw.index.to_frame(index=False).to_parquet(paths.raw_table("prices"))
    seen = {}

    def offline(_paths, entity, views=None, with_labels=True):
        seen["dates"] = pd.to_datetime(entity["date"]).unique()
        keys = pd.MultiIndex.from_frame(entity.assign(date=pd.to_datetime(entity["date"]))[["date", "symbol"]])
        return raw.reindex(keys).reset_index()

    monkeypatch.setattr(feature_store, "training_frame", offline)
    served = history_scores(paths, model, raw.loc[[today]])
    assert len(seen["dates"]) == model.estimator_.history_days and seen["dates"].max() < today
    np.testing.assert_allclose(served, batch.to_numpy(), rtol=1e-6, atol=1e-7)


def test_registry_loads_the_npz_artifact_with_the_familys_load(tmp_path):
    from ml.models.artifacts import _load_estimator

    X = panel()
    model = SequenceModel(**TINY).fit(X, target(X))
    path = tmp_path / model.save(tmp_path)
    loaded = _load_estimator(path, "npz", "gru", model.get_params(), list(X.columns))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
