"""The linear families: ridge, lasso, elastic net, Bayesian ridge, Fama-MacBeth and the regime ridge,
each solved from per-date sufficient statistics (`DateMoments`), so monthly refits and their grids cost
little. `ml.zoo` re-exports them and registers them in `FAMILIES` (screened ridge: ml/models/screened.py)."""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import pandas as pd

from ml.models.base import (
    STATE_PREFIX,
    DateMoments,
    _enet_gram,
    _MomentsLinear,
    _ridge_solve,
)


# ================================================================================ linear families
class RidgeModel(_MomentsLinear):
    """Pooled ridge: (X'X_c + alpha n I) b = X'y_c, alpha per row (scale-free for unit-variance X)."""

    family = "ridge"
    grid = {"alpha": [0.01, 0.1, 1.0, 10.0]}

    def __init__(self, alpha: float = 0.1, halflife: float | None = None):
        self.alpha = alpha
        self.halflife = halflife

    def _fit_moments(self, m: DateMoments) -> None:
        n, mx, my, sxx, sxy, _ = self._pooled(m)
        self.coef_ = _ridge_solve(sxx, sxy, self.alpha * max(n, 1.0)) if n > 1 else np.zeros(m.n_features)
        self.intercept_ = float(my - mx @ self.coef_)


class ElasticNetModel(_MomentsLinear):
    """Elastic net (sklearn's objective) solved by ADMM on the Gram matrix. The penalty is
    `alpha_ratio` x alpha_max (the smallest alpha giving an all-zero fit), so it is scale-free."""

    family = "elastic_net"
    grid = {"alpha_ratio": [0.02, 0.1, 0.3], "l1_ratio": [0.2, 0.8]}

    def __init__(self, alpha_ratio: float = 0.1, l1_ratio: float = 0.5, halflife: float | None = None):
        self.alpha_ratio = alpha_ratio
        self.l1_ratio = l1_ratio
        self.halflife = halflife

    def _fit_moments(self, m: DateMoments) -> None:
        n, mx, my, sxx, sxy, _ = self._pooled(m)
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

    def __init__(self, alpha_ratio: float = 0.05, halflife: float | None = None):
        self.alpha_ratio = alpha_ratio
        self.halflife = halflife

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
                 lambda_1: float = 1e-6, lambda_2: float = 1e-6, halflife: float | None = None):
        self.max_iter = max_iter
        self.halflife = halflife
        self.tol = tol
        self.alpha_1 = alpha_1
        self.alpha_2 = alpha_2
        self.lambda_1 = lambda_1
        self.lambda_2 = lambda_2

    def _fit_moments(self, m: DateMoments) -> None:
        n, mx, my, sxx, sxy, syy = self._pooled(m)
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

    def __init__(self, alpha: float = 0.1, shrink: float = 1.0, quantile: float = 0.75, min_dates: int = 40,
                 halflife: float | None = None):
        self.alpha = alpha
        self.halflife = halflife
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
        n, mx, my, sxx, sxy, _ = self._pooled(m)
        pooled = _ridge_solve(sxx, sxy, self.alpha * max(n, 1.0)) if n > 1 else np.zeros(m.n_features)
        self.coef_, self.intercept_ = pooled, float(my - mx @ pooled)
        coefs, icpts = [], []
        for mask in (live & ~stressed, stressed):
            if mask.sum() < self.min_dates:
                coefs.append(pooled)
                icpts.append(self.intercept_)
                continue
            nr, mxr, myr, sxxr, sxyr, _ = self._pooled(m, mask)
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
