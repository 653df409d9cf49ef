"""Families backed by a library regressor (sklearn, LightGBM, XGBoost, CatBoost): the shared fit / predict
on the feature matrix and the column cap of the tree families.

Split from ml/zoo.py so that a tree family can live in its own module (ml/models/forest.py,
ml/models/catboost_model.py) without an import cycle: ml.zoo imports the families to register them in
`FAMILIES`, so their base class cannot live in ml.zoo. ml.zoo re-exports every name here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ml.models.base import ZooEstimator, as_panel

# -------------------------------------------------------------------------------- column cap
# Wide views (e.g. `all`, 126 features) made the tree families' cost grow with the view width: an
# extra-trees split draws a threshold for every candidate column, LightGBM builds histograms for
# every column a tree samples (XGBoost builds them for all, and searches splits on the sampled ones).
# `max_columns` caps how many columns each boosted tree (colsample_bytree) or each extra-trees split
# (max_features) sees, so the cost follows the cap instead of the width, while views narrow enough
# (fraction x width <= cap) keep exactly their fraction. This is the usual practice for wide data:
# random forests draw ~p/3 (regression) or sqrt(p) columns per split, boosting samples columns per
# tree; over a 100-tree ensemble every column is still seen about trees x cap / width times (25 for
# 126 columns), and a smaller share decorrelates trees grown on many weak, mutually correlated
# features. The caps sit just above what the single views draw (0.8 x 39 = 31 columns per tree,
# 0.3 x 39 = 11 per split for the widest, 39 features), so only views wider than about 40 (boosters)
# or 53 (extra trees) features change; 16 per split on 126 columns lies between sqrt(p) = 11 and
# p/3 = 42. None disables the cap. BENCHMARKS.md, "Tree families on wide views (column cap)".
GBM_MAX_COLUMNS = 32  # lightgbm / xgboost: columns per tree
BIN_SAMPLE_ROWS = 20_000  # lightgbm / xgboost: rows sampled to find the histogram bin edges
ET_MAX_COLUMNS = 16  # extra_trees: candidate columns per split


def capped_column_fraction(fraction: float, n_features: int, max_columns: int | None) -> float:
    """Per-tree column fraction seeing at most `max_columns` of `n_features` columns: `fraction`
    itself when `fraction * n_features <= max_columns` (narrow views unchanged), else about
    `max_columns / n_features` (nudged up by 1e-6 columns so that both LightGBM's rounding and
    XGBoost's truncation draw exactly `max_columns`)."""
    if max_columns is None or n_features <= 0 or fraction * n_features <= max_columns:
        return fraction
    return min(fraction, (int(max_columns) + 1e-6) / n_features)


def capped_max_features(max_features: float | int | str | None, n_features: int,
                        max_columns: int | None) -> float | int | str | None:
    """sklearn `max_features` (float fraction, int count, "sqrt", "log2" or None = all) capped at
    `max_columns` candidate columns per split; returned unchanged when it draws no more than that."""
    if max_columns is None or n_features <= 0:
        return max_features
    if max_features is None:
        count = n_features
    elif isinstance(max_features, str):
        count = max(1, int(np.sqrt(n_features) if max_features == "sqrt" else np.log2(n_features)))
    elif isinstance(max_features, (int, np.integer)) and not isinstance(max_features, bool):
        count = int(max_features)
    else:
        count = max(1, int(float(max_features) * n_features))  # sklearn's own rounding
    return max_features if count <= max_columns else max(1, int(max_columns))


class _SklearnBacked(ZooEstimator):
    """Families wrapping a library regressor fitted on the feature matrix (rows with NaN y dropped)."""

    def _make(self, n_features: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: pd.Series):
        X = as_panel(X)
        feats = self._feature_columns(X)
        yv = np.asarray(y.reindex(X.index) if isinstance(y, pd.Series) else y, dtype="float64")
        ok = np.isfinite(yv)
        frame = X if len(feats) == X.shape[1] else X[feats]  # no column copy when nothing is excluded
        values = frame.to_numpy(dtype="float32", na_value=0.0)
        if not ok.all():
            values = values[ok]
        self.feature_names_in_ = np.asarray(feats, dtype=object)
        self.n_features_in_ = len(feats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model_ = self._fit_model(values, yv[ok])
        return self

    def _fit_model(self, values: np.ndarray, y: np.ndarray):
        """The fitted library regressor (families override to build their training data differently)."""
        return self._make(values.shape[1]).fit(values, y)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        values = self._check_features(X).astype("float32")
        return np.asarray(self.model_.predict(values), dtype="float64")
