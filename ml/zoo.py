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
`fit_moments`, which the trainer calls directly with moments computed once per view.

Families: ridge, lasso, elastic_net, bayes_ridge, fama_macbeth, regime_ridge, screened_ridge
(ml/models/screened.py: walk-forward feature screening for many weak features), extra_trees, lightgbm,
xgboost, mlp (see `FAMILIES`). The bases and the preprocessing live in ml/models/base.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar

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
from ml.models.screened import ScreenedRidgeModel
from ml.models.sequence import SequenceModel
from ml.models.tabular_nets import FTTransformerModel, ResidualMLPModel


# ================================================================================ linear families
class RidgeModel(_MomentsLinear):
    """Pooled ridge: (X'X_c + alpha n I) b = X'y_c, alpha per row (scale-free for unit-variance X)."""

    family = "ridge"
    grid = {"alpha": [0.01, 0.1, 1.0, 10.0]}

    def __init__(self, alpha: float = 0.1):
        self.alpha = alpha

    def _fit_moments(self, m: DateMoments) -> None:
        n, mx, my, sxx, sxy, _ = m.pooled()
        self.coef_ = _ridge_solve(sxx, sxy, self.alpha * max(n, 1.0)) if n > 1 else np.zeros(m.n_features)
        self.intercept_ = float(my - mx @ self.coef_)


class ElasticNetModel(_MomentsLinear):
    """Elastic net (sklearn's objective) solved by ADMM on the Gram matrix. The penalty is
    `alpha_ratio` x alpha_max (the smallest alpha giving an all-zero fit), so it is scale-free."""

    family = "elastic_net"
    grid = {"alpha_ratio": [0.02, 0.1, 0.3], "l1_ratio": [0.2, 0.8]}

    def __init__(self, alpha_ratio: float = 0.1, l1_ratio: float = 0.5):
        self.alpha_ratio = alpha_ratio
        self.l1_ratio = l1_ratio

    def _fit_moments(self, m: DateMoments) -> None:
        n, mx, my, sxx, sxy, _ = m.pooled()
        p = m.n_features
        if n <= 1:
            self.coef_, self.intercept_, self.alpha_ = np.zeros(p), float(my), 0.0
            return
        G, c = sxx / n, sxy / n
        alpha_max = float(np.abs(c).max()) / max(self.l1_ratio, 1e-3)
        self.alpha_ = self.alpha_ratio * alpha_max
        self.coef_ = _enet_gram(G, c, self.alpha_ * self.l1_ratio, self.alpha_ * (1 - self.l1_ratio))
        self.intercept_ = float(my - mx @ self.coef_)


class LassoModel(ElasticNetModel):
    """Lasso: the elastic net with l1_ratio = 1."""

    family = "lasso"
    grid = {"alpha_ratio": [0.01, 0.05, 0.2, 0.5]}

    def __init__(self, alpha_ratio: float = 0.05):
        self.alpha_ratio = alpha_ratio

    @property
    def l1_ratio(self) -> float:
        return 1.0


class BayesianRidgeModel(_MomentsLinear):
    """Bayesian ridge (MacKay evidence maximization, sklearn's update rules) from the Gram matrix.

    Self-tuning: the evidence picks the noise and weight precisions, so its grid is empty.
    `predict(X, return_std=True)` also returns the predictive standard deviation.
    """

    family = "bayes_ridge"
    grid: ClassVar[dict[str, list]] = {}
    _json_attrs = ("coef_", "intercept_", "alpha_", "lambda_", "sigma_", "x_mean_")

    def __init__(self, max_iter: int = 300, tol: float = 1e-4, alpha_1: float = 1e-6, alpha_2: float = 1e-6,
                 lambda_1: float = 1e-6, lambda_2: float = 1e-6):
        self.max_iter = max_iter
        self.tol = tol
        self.alpha_1 = alpha_1
        self.alpha_2 = alpha_2
        self.lambda_1 = lambda_1
        self.lambda_2 = lambda_2

    def _fit_moments(self, m: DateMoments) -> None:
        n, mx, my, sxx, sxy, syy = m.pooled()
        p = m.n_features
        eig, V = np.linalg.eigh(sxx)
        eig = np.maximum(eig, 0.0)
        cv = V.T @ sxy
        alpha = 1.0 / max(syy / max(n, 1.0), 1e-12)
        lam = 1.0
        coef = np.zeros(p)
        for _ in range(self.max_iter):
            coef_new = V @ (cv / (eig + lam / alpha))
            sse = max(syy - 2 * coef_new @ sxy + coef_new @ sxx @ coef_new, 1e-12)
            gamma = float(np.sum(alpha * eig / (lam + alpha * eig)))
            lam = (gamma + 2 * self.lambda_1) / (float(coef_new @ coef_new) + 2 * self.lambda_2)
            alpha = (n - gamma + 2 * self.alpha_1) / (sse + 2 * self.alpha_2)
            done = np.abs(coef_new - coef).sum() < self.tol * max(np.abs(coef_new).sum(), 1e-12)
            coef = coef_new
            if done:
                break
        self.coef_ = V @ (cv / (eig + lam / alpha))
        self.alpha_, self.lambda_ = float(alpha), float(lam)
        self.sigma_ = (V / (alpha * eig + lam)) @ V.T
        self.x_mean_ = mx
        self.intercept_ = float(my - mx @ self.coef_)

    linear_in_features = True  # the mean is intercept + X @ coef; return_std only adds the std

    def predict(self, X: pd.DataFrame, return_std: bool = False):
        values = self._check_features(X)
        mean = values @ self.coef_ + self.intercept_
        if not return_std:
            return mean
        centered = values - self.x_mean_
        var = 1.0 / self.alpha_ + np.einsum("ij,jk,ik->i", centered, self.sigma_, centered)
        return mean, np.sqrt(var)


class FamaMacBethModel(_MomentsLinear):
    """Fama-MacBeth: one cross-sectional (ridge) regression per date, slopes averaged over time.

    `ridge` is the per-date penalty per row. `shrinkage="eb"` shrinks each averaged slope toward 0
    by tau^2 / (tau^2 + se_j^2) (empirical Bayes, tau^2 = mean(b^2) - mean(se^2)); se_j is the time-series
    standard error of slope j with `overlap` (the label horizon) correcting for overlapping labels.
    Dates with fewer than `min_names` names are skipped.
    """

    family = "fama_macbeth"
    grid = {"ridge": [0.03, 0.3, 3.0]}
    _json_attrs = ("coef_", "intercept_", "coef_raw_", "coef_se_")

    def __init__(self, ridge: float = 0.3, shrinkage: str = "eb", overlap: int = 5, min_names: int = 10):
        self.ridge = ridge
        self.shrinkage = shrinkage
        self.overlap = overlap
        self.min_names = min_names

    def _fit_moments(self, m: DateMoments) -> None:
        coef_t, icpt_t = m.per_date_coef(self.ridge)
        ok = m.n >= self.min_names
        p = m.n_features
        if ok.sum() < 2:
            self.coef_ = self.coef_raw_ = self.coef_se_ = np.zeros(p)
            self.intercept_ = 0.0
            return
        b = coef_t[ok]
        mean = b.mean(0)
        se = b.std(0, ddof=1) / np.sqrt(max(len(b) / max(self.overlap, 1), 1.0))
        if self.shrinkage == "eb":
            tau2 = max(float(np.mean(mean**2) - np.mean(se**2)), 1e-12)
            shrink = tau2 / (tau2 + se**2)
        elif self.shrinkage == "none":
            shrink = np.ones(p)
        else:
            raise ValueError(f"unknown shrinkage {self.shrinkage!r} (eb | none)")
        self.coef_raw_, self.coef_se_ = mean, se
        self.coef_ = mean * shrink
        self.intercept_ = float(icpt_t[ok].mean())


class RegimeRidgeModel(_MomentsLinear):
    """Regime-aware ridge: a calm and a stressed ridge, each shrunk toward the pooled fit.

    Regime rule (point-in-time, learned on the training dates only): X carries date-level state
    columns (`__state__*`, see `market_state`: the cross-sectional median of volatility-like raw
    features, or cross-sectional dispersion when the view has none). Each is standardized with its
    training-window mean and sd and averaged into one state s_t; a date is *stressed* when s_t is
    above the training window's `quantile` of s. Per regime r the slopes solve
    (X_r'X_r + (alpha + shrink) n_r I) b_r = X_r'y_r + shrink n_r b_pooled, so a rare regime falls back
    on the pooled model; a regime with fewer than `min_dates` training dates uses the pooled slopes.
    """

    family = "regime_ridge"
    needs_state = True
    grid = {"shrink": [0.1, 1.0], "quantile": [0.7, 0.85]}
    _json_attrs = ("coef_", "intercept_", "coef_regime_", "intercept_regime_", "state_mean_", "state_sd_",
                   "threshold_")

    def __init__(self, alpha: float = 0.1, shrink: float = 1.0, quantile: float = 0.75, min_dates: int = 40):
        self.alpha = alpha
        self.shrink = shrink
        self.quantile = quantile
        self.min_dates = min_dates

    def _state_score(self, state: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            z = (state - self.state_mean_) / self.state_sd_
        z = np.where(np.isfinite(z), z, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(z, axis=1) if z.shape[1] else np.full(len(z), np.nan)

    def _fit_moments(self, m: DateMoments) -> None:
        if m.state is None:
            raise ValueError("RegimeRidgeModel needs date-level state (state columns in X)")
        live = m.n > 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.state_mean_ = np.nanmean(m.state[live], axis=0)
            sd = np.nanstd(m.state[live], axis=0)
        self.state_sd_ = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        self.state_mean_ = np.where(np.isfinite(self.state_mean_), self.state_mean_, 0.0)
        s = self._state_score(m.state)
        finite = live & np.isfinite(s)
        self.threshold_ = float(np.quantile(s[finite], self.quantile)) if finite.any() else float("inf")
        stressed = finite & (s > self.threshold_)
        n, mx, my, sxx, sxy, _ = m.pooled()
        pooled = _ridge_solve(sxx, sxy, self.alpha * max(n, 1.0)) if n > 1 else np.zeros(m.n_features)
        self.coef_, self.intercept_ = pooled, float(my - mx @ pooled)
        coefs, icpts = [], []
        for mask in (live & ~stressed, stressed):
            if mask.sum() < self.min_dates:
                coefs.append(pooled)
                icpts.append(self.intercept_)
                continue
            nr, mxr, myr, sxxr, sxyr, _ = m.pooled(mask)
            b = np.linalg.solve(sxxr + ((self.alpha + self.shrink) * nr + 1e-9) * np.eye(m.n_features),
                                sxyr + self.shrink * nr * pooled)
            coefs.append(b)
            icpts.append(float(myr - mxr @ b))
        self.coef_regime_ = np.vstack(coefs)
        self.intercept_regime_ = np.asarray(icpts)

    def regime(self, X: pd.DataFrame) -> np.ndarray:
        """Per-row regime: 1 stressed, 0 calm, -1 unknown state (pooled model used)."""
        cols = [c for c in X.columns if str(c).startswith(STATE_PREFIX)]
        if len(cols) != len(self.state_mean_):
            raise ValueError(f"expected {len(self.state_mean_)} state columns, got {len(cols)}")
        s = self._state_score(X[cols].to_numpy(dtype="float64"))
        return np.where(np.isfinite(s), (s > self.threshold_).astype(int), -1)

    def linear_coefficients(self, X: pd.DataFrame) -> np.ndarray | None:
        """Each row's slopes (its regime's, the pooled ones for an unknown state) on the columns of X:
        linear in the features at a fixed market state, which a within-date shuffle keeps."""
        reg = self.regime(X)
        slopes = np.where((reg == 1)[:, None], self.coef_regime_[1], self.coef_regime_[0])
        slopes = np.where((reg < 0)[:, None], self.coef_, slopes)
        return self._weights_on(list(X.columns), slopes)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        values = self._check_features(X)
        reg = self.regime(X)
        out = values @ self.coef_ + self.intercept_
        for r in (0, 1):
            rows = reg == r
            if rows.any():
                out[rows] = values[rows] @ self.coef_regime_[r] + self.intercept_regime_[r]
        return out


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
