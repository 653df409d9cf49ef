"""Screened ridge: a linear family for many weak features, screened inside its own training window.

With a hundred and more features of which most carry nothing on a given market, a pooled ridge
spreads weight over noise. This family first asks each feature, on the training dates only, whether
its daily rank IC against the target is reliably non-zero, and fits the ridge on the survivors:

- the daily IC of feature j on date d is the Pearson correlation of the (rank-gaussianized) feature
  with the (ranked) target across that date's names, read from the per-date moments;
- its t-statistic is mean / sd x sqrt(T / overlap), `overlap` being the label horizon, so that
  overlapping h-day labels do not inflate it;
- a feature survives when |t| >= `t_min`; `t_min` is a grid parameter, so the walk-forward trainer
  picks the screen's strictness on the inner validation tail of each training window;
- with no survivor the model predicts a constant: it abstains instead of fitting noise.

Everything is computed from `DateMoments` of the training rows, so the screen never sees a test date.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ml.models.base import DateMoments, _MomentsLinear, _ridge_solve


def daily_feature_ic(m: DateMoments, min_names: int = 5) -> np.ndarray:
    """(T, p) per-date correlation of each feature with the target; NaN on thin or flat dates."""
    n = np.maximum(m.n, 1.0)
    mx = m.sx / n[:, None]
    my = m.sy / n
    var_x = np.einsum("tjj->tj", m.sxx) / n[:, None] - mx**2
    var_y = m.syy / n - my**2
    cov = m.sxy / n[:, None] - mx * my[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = cov / np.sqrt(var_x * var_y[:, None])
    ic[(m.n < min_names) | ~(var_y > 1e-12)] = np.nan
    ic[~(var_x > 1e-12)] = np.nan
    return ic


def ic_t_stats(ic: np.ndarray, overlap: int = 1) -> np.ndarray:
    """t-statistic of each column's mean daily IC, with T / overlap independent dates."""
    count = np.sum(np.isfinite(ic), axis=0)
    mean = np.nanmean(np.where(count > 0, ic, 0.0), axis=0) if ic.size else np.zeros(ic.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.nanstd(ic, axis=0, ddof=1)
        t = mean / sd * np.sqrt(np.maximum(count / max(int(overlap), 1), 1.0))
    return np.where((count > 2) & (sd > 0), t, 0.0)


class ScreenedRidgeModel(_MomentsLinear):
    """Ridge on the features whose training-window daily IC has |t| >= t_min (see module docstring)."""

    family = "screened_ridge"
    grid: ClassVar[dict[str, list]] = {"t_min": [1.5, 2.5, 3.5], "alpha": [0.1, 1.0]}
    _json_attrs = ("coef_", "intercept_", "selected_", "feature_t_")

    def __init__(self, t_min: float = 2.5, alpha: float = 0.1, overlap: int = 5, min_names: int = 5,
                 halflife: float | None = None):
        self.t_min = t_min
        self.halflife = halflife
        self.alpha = alpha
        self.overlap = overlap
        self.min_names = min_names

    def _fit_moments(self, m: DateMoments) -> None:
        p = m.n_features
        t = ic_t_stats(daily_feature_ic(m, self.min_names), self.overlap) if m.n_dates else np.zeros(p)
        keep = np.abs(t) >= float(self.t_min)
        n, mx, my, sxx, sxy, _ = self._pooled(m)
        coef = np.zeros(p)
        if keep.any() and n > 1:
            idx = np.flatnonzero(keep)
            coef[idx] = _ridge_solve(sxx[np.ix_(idx, idx)], sxy[idx], self.alpha * max(n, 1.0))
        self.coef_ = coef
        self.intercept_ = float(my - mx @ coef)
        self.selected_ = keep.astype(float)
        self.feature_t_ = t
