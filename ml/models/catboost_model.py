"""CatBoost family (`catboost`): gradient-boosted oblivious trees with sector and industry as native
categorical features.

Why CatBoost: it encodes a categorical column by ordered target statistics (each row's category is
scored with the targets of rows before it in a random permutation, so a row never sees its own
label), which lets trees split on "this sector" or "this industry" and on their combinations with
numeric features without one-hot columns. Here the categories are `__cat__sector` and
`__cat__industry` (ml/models/categories.py: static securities table, attached in training and in
serving); without them the family fits on the numeric features alone.

Deterministic: `random_seed`, one thread, plain boosting; no files written while training
(`allow_writing_files=False`). Stored natively (`save_model` .cbm, which keeps the categorical
encodings), so a loaded model predicts exactly what the fitted one did. `max_columns` caps the share
of columns each split considers (`rsm`), as `colsample_bytree` is capped for LightGBM / XGBoost.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ml.models.backed import GBM_MAX_COLUMNS, capped_column_fraction
from ml.models.base import ZooEstimator, as_panel
from ml.models.categories import MISSING, category_codes, category_columns, label_code


class CatBoostModel(ZooEstimator):
    """CatBoost regressor on the numeric features plus the category columns found in X."""

    family = "catboost"
    needs_categories = True
    grid = {"depth": [4, 6]}
    artifact_format = "catboost-cbm"
    artifact_file = "model.cbm"

    def __init__(self, n_estimators: int = 150, learning_rate: float = 0.05, depth: int = 4,
                 l2_leaf_reg: float = 3.0, subsample: float = 0.8, rsm: float = 0.8,
                 max_columns: int | None = GBM_MAX_COLUMNS, border_count: int = 64, random_state: int = 0,
                 n_jobs: int = 1):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.depth = depth
        self.l2_leaf_reg = l2_leaf_reg
        self.subsample = subsample
        self.rsm = rsm
        self.max_columns = max_columns
        self.border_count = border_count
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _make(self, n_columns: int):
        from catboost import CatBoostRegressor

        return CatBoostRegressor(
            iterations=int(self.n_estimators), learning_rate=self.learning_rate, depth=int(self.depth),
            l2_leaf_reg=self.l2_leaf_reg, bootstrap_type="Bernoulli", subsample=self.subsample,
            rsm=capped_column_fraction(self.rsm, n_columns, self.max_columns), border_count=int(self.border_count),
            boosting_type="Plain", loss_function="RMSE", random_seed=int(self.random_state),
            thread_count=int(self.n_jobs), allow_writing_files=False, verbose=False,
        )

    def _pool(self, X: pd.DataFrame, label: np.ndarray | None = None):
        """The CatBoost pool of the fitted layout: numeric columns (float32, missing -> 0), then the
        category columns as integer codes (`category_codes`: labels or codes in X give the same
        codes). A category column absent from X scores every row as unclassified (`MISSING`): code
        that passes numeric features only still runs; serving checks the columns are there
        (`CrossSectionalModel`)."""
        from catboost import Pool

        numeric = X[list(self.feature_names_in_)].to_numpy(dtype="float32", na_value=0.0)
        frame = pd.DataFrame(numeric, columns=[str(c) for c in self.feature_names_in_])
        present = [c for c in self.category_columns_ if c in X.columns]
        codes = category_codes(X[present]) if present else pd.DataFrame(index=X.index)
        for c in self.category_columns_:
            frame[c] = codes[c].to_numpy(dtype="int64") if c in present else np.int64(label_code(MISSING))
        return Pool(frame, label=label, cat_features=list(self.category_columns_) or None)

    def fit(self, X: pd.DataFrame, y: pd.Series):
        X = as_panel(X)
        yv = np.asarray(y.reindex(X.index) if isinstance(y, pd.Series) else y, dtype="float64")
        ok = np.isfinite(yv)
        self.feature_names_in_ = np.asarray(self._feature_columns(X), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.category_columns_ = category_columns(X.columns)  # none: numeric features only
        rows = X if ok.all() else X.iloc[np.flatnonzero(ok)]
        pool = self._pool(rows, yv[ok])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model_ = self._make(self.n_features_in_ + len(self.category_columns_)).fit(pool)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"{type(self).__name__}: X lacks fitted features {missing[:5]}")
        return np.asarray(self.model_.predict(self._pool(X), thread_count=int(self.n_jobs)), dtype="float64")

    # -- native persistence (.cbm keeps the trees, the borders and the categorical encodings)
    def save(self, directory: Path) -> str:
        path = Path(directory) / self.artifact_file
        self.model_.save_model(str(path), format="cbm")
        return path.name

    @classmethod
    def load_native(cls, path: Path, params: dict, feature_names=None) -> CatBoostModel:
        """The model stored at `path`; its column layout (numeric then category columns) is read from
        the file, and `feature_names` (the registry's record), when given, must match it."""
        from catboost import CatBoostRegressor

        model = cls(**params)
        model.model_ = CatBoostRegressor()
        model.model_.load_model(str(path), format="cbm")
        names = [str(c) for c in model.model_.feature_names_]
        cats = set(model.model_.get_cat_feature_indices())
        model.feature_names_in_ = np.asarray([c for i, c in enumerate(names) if i not in cats], dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        model.category_columns_ = [c for i, c in enumerate(names) if i in cats]
        if feature_names is not None and [str(c) for c in feature_names] != list(model.feature_names_in_):
            raise ValueError(f"{path}: stored features differ from the record's")
        return model

    @classmethod
    def load(cls, path: Path) -> CatBoostModel:
        """Load with the stored parameters unknown: the defaults (prediction only needs the trees)."""
        return cls.load_native(path, {}, None)
