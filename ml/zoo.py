"""The model zoo: one estimator interface over many families, plus cross-sectional preprocessing.

Interface. Every family is a scikit-learn estimator (`fit(X, y)`, `predict(X)`, `get_params` /
`set_params`, `clone`-able) where X is a DataFrame indexed by a (date, symbol) MultiIndex and y a
Series on the same index (rows with a missing y are ignored by `fit`), so cross-sectional families
can group by date. Each family class declares `family` (its name), `grid` (a small hyper-parameter
grid searched by the walk-forward trainer) and how it is stored (`save` / `load`, in a native format
where one exists).

Preprocessing is cross-sectional and point-in-time: `cross_sectional_normalize` works date by date
(rank-gaussianize or winsorized robust z-score each feature, missing -> 0, the cross-sectional
neutral value), so it never looks across time and can be applied to the whole panel once.
`CrossSectionalModel` bundles it with a fitted family for serving raw feature rows.

Linear families (ridge, lasso, elastic net, Bayesian ridge, Fama-MacBeth, regime ridge) are solved
from per-date sufficient statistics (`DateMoments`: n, sums, X'X, X'y per date), so a walk-forward
refit costs O(p^3) whatever the number of rows; `fit(X, y)` computes the moments from X and calls
`fit_moments`, which the trainer calls directly with moments computed once per view. They live in
ml/models/linear.py.

Families: ridge, lasso, elastic_net, bayes_ridge, fama_macbeth, regime_ridge, screened_ridge
(ml/models/screened.py: walk-forward feature screening for many weak features), extra_trees, lightgbm,
xgboost, mlp (see `FAMILIES`). The bases and the preprocessing live in ml/models/base.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone

from ml.models.backed import (  # noqa: F401 - re-exported
    BIN_SAMPLE_ROWS,
    ET_MAX_COLUMNS,
    GBM_MAX_COLUMNS,
    _SklearnBacked,
    capped_column_fraction,
    capped_max_features,
)
from ml.models.base import (  # noqa: F401 - re-exported: ml.zoo stays the public entry point
    DEFAULT_STATE_PATTERN,
    STATE_PREFIX,
    DateMoments,
    ZooEstimator,
    _enet_gram,
    _jsonable,
    _MomentsLinear,
    _ridge_solve,
    as_panel,
    cross_sectional_normalize,
    cross_sectional_target,
    date_codes,
    market_state,
    state_source_columns,
)
from ml.models.catboost_model import CatBoostModel
from ml.models.categories import category_columns, category_design
from ml.models.forest import RandomForestModel
from ml.models.linear import (  # noqa: F401 - re-exported
    BayesianRidgeModel,
    ElasticNetModel,
    FamaMacBethModel,
    LassoModel,
    RegimeRidgeModel,
    RidgeModel,
)
from ml.models.screened import ScreenedRidgeModel
from ml.models.sequence import SequenceModel
from ml.models.tabular_nets import FTTransformerModel, ResidualMLPModel


# ================================================================================ non-linear families
class ExtraTreesModel(_SklearnBacked):
    """Extremely randomized trees (sklearn), large leaves for noisy targets. Stored with joblib.

    `max_columns` caps the candidate columns per split (`max_features` as a count,
    min(max_features * n_features, max_columns); see `capped_max_features`)."""

    family = "extra_trees"
    grid = {"min_samples_leaf": [100, 400]}

    def __init__(self, n_estimators: int = 60, max_depth: int | None = 10, min_samples_leaf: int = 200,
                 max_features: float = 0.3, max_columns: int | None = ET_MAX_COLUMNS, random_state: int = 0,
                 n_jobs: int = 1):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_columns = max_columns
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _make(self, n_features: int):
        from sklearn.ensemble import ExtraTreesRegressor

        return ExtraTreesRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                   min_samples_leaf=self.min_samples_leaf,
                                   max_features=capped_max_features(self.max_features, n_features, self.max_columns),
                                   random_state=self.random_state, n_jobs=self.n_jobs)


class LightGBMModel(_SklearnBacked):
    """LightGBM gradient boosting, deterministic (deterministic, force_row_wise, fixed seed/threads).
    Stored natively (`Booster.save_model` text). `max_columns` caps the columns per tree
    (colsample_bytree becomes min(colsample_bytree, max_columns / n_features); see
    `capped_column_fraction`)."""

    family = "lightgbm"
    grid = {"num_leaves": [7, 31], "learning_rate": [0.03, 0.08]}
    artifact_format = "lightgbm-text"
    artifact_file = "model.txt"

    def __init__(self, n_estimators: int = 150, learning_rate: float = 0.05, num_leaves: int = 15,
                 min_child_samples: int = 200, subsample: float = 0.8, colsample_bytree: float = 0.8,
                 max_columns: int | None = GBM_MAX_COLUMNS, reg_lambda: float = 1.0, max_bin: int = 63,
                 bin_sample_rows: int = BIN_SAMPLE_ROWS, random_state: int = 0, n_jobs: int = 1):
        self.n_estimators = n_estimators
        self.bin_sample_rows = bin_sample_rows
        self.learning_rate = learning_rate
        self.max_bin = max_bin
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.max_columns = max_columns
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _make(self, n_features: int):
        import lightgbm as lgb

        return lgb.LGBMRegressor(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, subsample=self.subsample, subsample_freq=1,
            colsample_bytree=capped_column_fraction(self.colsample_bytree, n_features, self.max_columns),
            reg_lambda=self.reg_lambda, max_bin=self.max_bin, bin_construct_sample_cnt=int(self.bin_sample_rows),
            random_state=self.random_state, n_jobs=self.n_jobs, deterministic=True, force_row_wise=True,
            verbose=-1,
        )

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        values = self._check_features(X).astype("float32")
        booster = self.model_.booster_ if hasattr(self.model_, "booster_") else self.model_
        return np.asarray(booster.predict(values, num_threads=self.n_jobs), dtype="float64")

    def save(self, directory: Path) -> str:
        path = Path(directory) / self.artifact_file
        booster = self.model_.booster_ if hasattr(self.model_, "booster_") else self.model_
        booster.save_model(str(path))
        return path.name

    @classmethod
    def load_native(cls, path: Path, params: dict, feature_names) -> LightGBMModel:
        import lightgbm as lgb

        model = cls(**params)
        model.model_ = lgb.Booster(model_file=str(path))
        model.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        return model


class XGBoostModel(_SklearnBacked):
    """XGBoost (hist), fixed seed and threads. Stored natively (XGBoost JSON). `max_columns` caps the
    columns per tree, as for `LightGBMModel`."""

    family = "xgboost"
    grid = {"max_depth": [3, 5], "learning_rate": [0.03, 0.08]}
    artifact_format = "xgboost-json"
    artifact_file = "model.json"

    def __init__(self, n_estimators: int = 150, learning_rate: float = 0.05, max_depth: int = 4,
                 min_child_weight: float = 50.0, subsample: float = 0.8, colsample_bytree: float = 0.8,
                 max_columns: int | None = GBM_MAX_COLUMNS, reg_lambda: float = 1.0, max_bin: int = 64,
                 bin_sample_rows: int | None = BIN_SAMPLE_ROWS, random_state: int = 0, n_jobs: int = 1):
        self.max_bin = max_bin
        self.bin_sample_rows = bin_sample_rows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.max_columns = max_columns
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _make(self, n_features: int):
        import xgboost as xgb

        return xgb.XGBRegressor(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, max_depth=self.max_depth,
            min_child_weight=self.min_child_weight, subsample=self.subsample,
            colsample_bytree=capped_column_fraction(self.colsample_bytree, n_features, self.max_columns),
            reg_lambda=self.reg_lambda, tree_method="hist",
            max_bin=self.max_bin,
            random_state=self.random_state, n_jobs=self.n_jobs, verbosity=0,
        )

    def _fit_model(self, values: np.ndarray, y: np.ndarray):
        """With more rows than `bin_sample_rows`, the quantile sketch (bin edges) comes from a seeded
        row sample (as LightGBM's `bin_construct_sample_cnt`) and the full rows are only binned; the
        booster is trained natively with the regressor's own parameters and returned as a regressor."""
        import xgboost as xgb

        reg = self._make(values.shape[1])
        if not self.bin_sample_rows or len(values) <= int(self.bin_sample_rows):
            return reg.fit(values, y)
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.choice(len(values), size=int(self.bin_sample_rows), replace=False))
        ref = xgb.QuantileDMatrix(values[sample], y[sample], max_bin=self.max_bin, nthread=self.n_jobs)
        train = xgb.QuantileDMatrix(values, y, ref=ref, max_bin=self.max_bin, nthread=self.n_jobs)
        booster = xgb.train(reg.get_xgb_params(), train, num_boost_round=int(self.n_estimators))
        out = xgb.XGBRegressor(n_jobs=self.n_jobs)  # predict with the family's threads
        out.load_model(bytearray(booster.save_raw("ubj")))
        return out

    def save(self, directory: Path) -> str:
        path = Path(directory) / self.artifact_file
        self.model_.save_model(str(path))
        return path.name

    @classmethod
    def load_native(cls, path: Path, params: dict, feature_names) -> XGBoostModel:
        import xgboost as xgb

        model = cls(**params)
        model.model_ = xgb.XGBRegressor()
        model.model_.load_model(str(path))
        model.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        return model


class MLPModel(_SklearnBacked):
    """Small multi-layer perceptron (sklearn MLPRegressor, adam, early stopping). Stored with joblib."""

    family = "mlp"
    grid = {"alpha": [1e-4, 1e-2]}

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (32, 16), alpha: float = 1e-3,
                 learning_rate_init: float = 1e-3, batch_size: int = 512, max_iter: int = 30,
                 n_iter_no_change: int = 4, random_state: int = 0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    def _make(self, n_features: int):
        from sklearn.neural_network import MLPRegressor

        return MLPRegressor(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes), alpha=self.alpha,
            learning_rate_init=self.learning_rate_init, batch_size=self.batch_size, max_iter=self.max_iter,
            early_stopping=True, validation_fraction=0.1, n_iter_no_change=self.n_iter_no_change,
            random_state=self.random_state,
        )


FAMILIES: dict[str, type[ZooEstimator]] = {
    cls.family: cls
    for cls in (RidgeModel, LassoModel, ElasticNetModel, BayesianRidgeModel, FamaMacBethModel, RegimeRidgeModel,
                ScreenedRidgeModel, ExtraTreesModel, LightGBMModel, XGBoostModel, MLPModel, RandomForestModel, CatBoostModel,
                SequenceModel, ResidualMLPModel, FTTransformerModel)
}
FAMILY_CLASSES: dict[str, type[ZooEstimator]] = {cls.__name__: cls for cls in FAMILIES.values()}


def make_model(family: str, **params) -> ZooEstimator:
    """A family's estimator with these parameters (unknown family or parameter: ValueError)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    cls = FAMILIES[family]
    valid = cls().get_params()
    bad = sorted(set(params) - set(valid))
    if bad:
        raise ValueError(f"{family}: unknown parameters {bad}; valid: {sorted(valid)}")
    if "hidden_layer_sizes" in params:
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return cls(**params)


# ================================================================================ serving wrapper
class CrossSectionalModel(RegressorMixin, BaseEstimator):
    """Raw feature rows in, scores out: preprocessing + (market state) + a zoo estimator.

    `fit(X_raw, y)` normalizes `features` per date, adds the state columns when the estimator needs
    them, and fits a clone of `estimator`; `predict(X_raw)` repeats the same per-date transform, so a
    single day's cross-section is enough to score. `from_fitted` wraps an estimator the walk-forward
    trainer already fitted on normalized features.
    """

    def __init__(self, estimator: ZooEstimator | None = None, features: list[str] | None = None,
                 preprocess: str = "rank_gauss", clip: float = 3.0, state_pattern: str = DEFAULT_STATE_PATTERN):
        self.estimator = estimator
        self.features = features
        self.preprocess = preprocess
        self.clip = clip
        self.state_pattern = state_pattern

    def transform(self, X_raw: pd.DataFrame) -> pd.DataFrame:
        X_raw = as_panel(X_raw)
        feats = list(self.features_)
        missing = [c for c in feats if c not in X_raw.columns]
        if missing:
            raise ValueError(f"missing features {missing[:5]}")
        Xp = cross_sectional_normalize(X_raw[feats], self.preprocess, self.clip)
        if self.state_columns_:
            Xp = pd.concat([Xp, market_state(X_raw, self.state_columns_, self.state_stat_)], axis=1)
        if getattr(self, "category_columns_", None):  # `needs_categories`: codes of the raw rows' labels
            Xp = pd.concat([Xp, category_design(X_raw, self.category_columns_)], axis=1)
        return Xp

    def _set_layout(self, X_raw: pd.DataFrame, estimator: ZooEstimator) -> None:
        self.features_ = list(self.features) if self.features is not None else [
            c for c in X_raw.columns if c not in ("date", "symbol", *category_columns(X_raw.columns))
        ]
        needs_categories = getattr(estimator, "needs_categories", False)
        self.category_columns_ = category_columns(X_raw.columns) if needs_categories else []
        if getattr(estimator, "needs_state", False):
            self.state_columns_, self.state_stat_ = state_source_columns(self.features_, self.state_pattern)
        else:
            self.state_columns_, self.state_stat_ = [], ""

    def fit(self, X_raw: pd.DataFrame, y: pd.Series):
        X_raw = as_panel(X_raw)
        self._set_layout(X_raw, self.estimator)
        Xp = self.transform(X_raw)
        if isinstance(y, pd.Series) and isinstance(y.index, pd.MultiIndex):
            y = pd.Series(np.asarray(y.reindex(X_raw.index), dtype="float64"), index=Xp.index)
        self.estimator_ = clone(self.estimator).fit(Xp, y)
        return self

    @classmethod
    def from_fitted(cls, estimator: ZooEstimator, features: list[str], preprocess: str = "rank_gauss",
                    clip: float = 3.0, state_pattern: str = DEFAULT_STATE_PATTERN,
                    state_columns: list[str] | None = None, state_stat: str = "") -> CrossSectionalModel:
        model = cls(estimator=estimator, features=list(features), preprocess=preprocess, clip=clip,
                    state_pattern=state_pattern)
        model.features_ = list(features)
        if state_columns is None and getattr(estimator, "needs_state", False):
            state_columns, state_stat = state_source_columns(features, state_pattern)
        model.state_columns_ = list(state_columns or [])
        model.state_stat_ = state_stat
        model.category_columns_ = list(getattr(estimator, "category_columns_", []))  # what it was fitted with
        model.estimator_ = estimator
        return model

    def predict(self, X_raw: pd.DataFrame) -> np.ndarray:
        return self.estimator_.predict(self.transform(X_raw))

    def layout(self) -> dict:
        """What serving needs besides the estimator artifact (stored in the registry's model.yaml)."""
        return {"features": list(self.features_), "preprocess": self.preprocess, "clip": float(self.clip),
                "state_pattern": self.state_pattern, "state_columns": list(self.state_columns_),
                "category_columns": list(getattr(self, "category_columns_", [])),
                "state_stat": self.state_stat_}
