"""The tree families' column cap (`max_columns`): narrow views unchanged, wide views limited, deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ml.zoo import (
    ExtraTreesModel,
    LightGBMModel,
    XGBoostModel,
    capped_column_fraction,
    capped_max_features,
)

CAP = 4


def _panel(n_features: int, n_dates: int = 30, n_symbols: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A tiny (date, symbol) panel whose target depends, weakly and non-linearly, on every feature."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.date_range("2020-01-01", periods=n_dates, freq="B"), [f"S{i:02d}" for i in range(n_symbols)]],
        names=["date", "symbol"])
    values = rng.standard_normal((len(index), n_features))
    X = pd.DataFrame(values, index=index, columns=[f"f{j:02d}" for j in range(n_features)])
    y = np.tanh(values).sum(axis=1) / np.sqrt(n_features) + rng.standard_normal(len(index))
    return X, pd.Series(y, index=index)


def _boosters(max_columns: int | None) -> list:
    common = {"n_estimators": 12, "learning_rate": 0.1, "subsample": 0.8, "colsample_bytree": 0.8,
              "max_columns": max_columns, "bin_sample_rows": 500, "random_state": 3}  # sampled bin edges
    return [LightGBMModel(num_leaves=15, min_child_samples=20, **common),
            XGBoostModel(max_depth=4, min_child_weight=5.0, **common)]


def _extra_trees(max_columns: int | None) -> ExtraTreesModel:
    return ExtraTreesModel(n_estimators=8, max_depth=4, min_samples_leaf=20, max_features=0.8,
                           max_columns=max_columns, random_state=3)


def _columns_per_tree(model) -> list[int]:
    """Distinct split columns of every tree of a fitted booster."""
    if isinstance(model, LightGBMModel):
        trees = model.model_.booster_.trees_to_dataframe()
        return trees.dropna(subset=["split_feature"]).groupby("tree_index")["split_feature"].nunique().tolist()
    trees = model.model_.get_booster().trees_to_dataframe()
    return trees[trees["Feature"] != "Leaf"].groupby("Tree")["Feature"].nunique().tolist()


def test_cap_rules():
    assert capped_column_fraction(0.8, 5, CAP) == 0.8  # 4 columns: within the cap
    assert capped_column_fraction(0.8, 40, None) == 0.8
    assert int(capped_column_fraction(0.8, 40, CAP) * 40) == CAP  # XGBoost truncates
    assert round(capped_column_fraction(0.8, 126, 32) * 126) == 32  # LightGBM rounds
    assert capped_column_fraction(0.1, 126, 32) == 0.1
    assert capped_max_features(0.3, 39, 16) == 0.3  # 11 per split: unchanged
    assert capped_max_features(0.3, 126, 16) == 16
    assert capped_max_features(None, 126, 16) == 16
    assert capped_max_features("sqrt", 126, 16) == "sqrt"
    assert capped_max_features(40, 126, 16) == 16
    assert capped_max_features(0.3, 126, None) == 0.3


def test_params_are_sklearn_style():
    for model in [*_boosters(CAP), _extra_trees(CAP)]:
        assert model.get_params()["max_columns"] == CAP
        assert clone(model).get_params() == model.get_params()
        assert model.set_params(max_columns=None).max_columns is None


@pytest.mark.parametrize("index", [0, 1])
def test_boosters_narrow_view_unchanged(index: int):
    X, y = _panel(5)  # 0.8 * 5 = 4 columns per tree <= CAP
    capped, free = _boosters(CAP)[index].fit(X, y), _boosters(None)[index].fit(X, y)
    np.testing.assert_array_equal(capped.predict(X), free.predict(X))


@pytest.mark.parametrize("index", [0, 1])
def test_boosters_wide_view_limited(index: int):
    X, y = _panel(40)
    capped, free = _boosters(CAP)[index].fit(X, y), _boosters(None)[index].fit(X, y)
    assert max(_columns_per_tree(capped)) <= CAP
    assert max(_columns_per_tree(free)) > CAP  # the cap is what limits them
    assert len({c for c in capped.feature_names_in_}) == 40  # the model still takes the whole view


def test_extra_trees_cap():
    X, y = _panel(5)  # int(0.8 * 5) = 4 candidates per split <= CAP
    np.testing.assert_array_equal(_extra_trees(CAP).fit(X, y).predict(X), _extra_trees(None).fit(X, y).predict(X))
    X, y = _panel(40)
    capped = _extra_trees(CAP).fit(X, y)
    assert capped.model_.max_features == CAP
    assert all(tree.max_features_ == CAP for tree in capped.model_.estimators_)
    assert _extra_trees(None).fit(X, y).model_.estimators_[0].max_features_ == 32


@pytest.mark.parametrize("index", [0, 1, 2])
def test_capped_fit_is_deterministic_and_round_trips(index: int, tmp_path):
    X, y = _panel(40)
    make = [*(lambda i=i: _boosters(CAP)[i] for i in range(2)), lambda: _extra_trees(CAP)][index]
    first, second = make().fit(X, y), make().fit(X, y)
    expected = first.predict(X)
    np.testing.assert_array_equal(expected, second.predict(X))
    name = first.save(tmp_path)
    cls = type(first)
    if cls.artifact_format in ("lightgbm-text", "xgboost-json"):
        loaded = cls.load_native(tmp_path / name, first.get_params(), list(X.columns))
    else:
        loaded = cls.load(tmp_path / name)
    assert loaded.get_params()["max_columns"] == CAP
    np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-6, atol=1e-7)
