"""What a model adds to the ensemble: the live ensemble's daily IC with and without it.

A stand-alone ICIR rewards a redundant copy of a good model as much as the original. Here each date
keeps the covariance of the models' standardized scores (C, models x models), their covariance with
the standardized label (c) and the label's variance (v). The IC of any equal-weighted combination
1_S of standardized scores is then (1_S . c) / sqrt(1_S' C 1_S v). A model's contribution on a day is
IC(pool) - IC(pool without it), Numerai's meta-model contribution in spirit: a copy of a model already
in the pool adds about nothing, and a model whose edge the others already carry adds little.

Scores are rank-standardized per date and model (a missing score is 0, the neutral value), the label
too, so the combination's IC is the Pearson correlation of ranks, close to the ensemble's rank IC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.ensemble import date_bounds, standardize


@dataclass
class ContributionStats:
    """Per-date second moments of standardized scores and label (see the module docstring)."""

    dates: pd.DatetimeIndex
    models: list[str]
    cov: np.ndarray     # dates x models x models
    cross: np.ndarray   # dates x models
    label_var: np.ndarray  # dates

    def index_of(self, models: list[str]) -> np.ndarray:
        pos = {m: i for i, m in enumerate(self.models)}
        return np.array([pos[m] for m in models if m in pos], dtype=int)


def contribution_stats(panel: pd.DataFrame, label: pd.Series, min_names: int = 10) -> ContributionStats:
    """The per-date moments over the rows where the label is realized (dates with fewer than
    `min_names` such rows are left out)."""
    y = label.reindex(panel.index)
    keep = np.isfinite(y.to_numpy(dtype="float64"))
    sub = panel[keep]
    models = [str(c) for c in panel.columns]
    if sub.empty:
        m = len(models)
        return ContributionStats(pd.DatetimeIndex([]), models, np.zeros((0, m, m)), np.zeros((0, m)), np.zeros(0))
    z = np.nan_to_num(standardize(sub, method="rank").to_numpy(dtype="float64"), nan=0.0)
    yz = np.nan_to_num(standardize(y[keep].to_frame("y"), method="rank")["y"].to_numpy(dtype="float64"), nan=0.0)
    calendar, _, starts = date_bounds(sub.index)
    ends = np.r_[starts[1:], len(z)]
    counts = ends - starts
    ok = counts >= int(min_names)
    cov = np.zeros((int(ok.sum()), z.shape[1], z.shape[1]))
    cross = np.zeros((int(ok.sum()), z.shape[1]))
    var = np.zeros(int(ok.sum()))
    for j, (a, b) in enumerate(zip(starts[ok], ends[ok], strict=True)):  # one small product per date
        zd, yd = z[a:b], yz[a:b]
        n = b - a
        cov[j] = zd.T @ zd / n
        cross[j] = zd.T @ yd / n
        var[j] = yd @ yd / n
    return ContributionStats(calendar[ok], models, cov, cross, var)


def contributions(stats: ContributionStats, pool: list[str], rows: np.ndarray) -> pd.DataFrame:
    """dates (stats rows `rows`) x pool models: IC of the equal-weighted pool minus IC of the pool
    without the model. A pool of one model: its own IC."""
    idx = stats.index_of(pool)
    if not len(idx) or not len(rows):
        return pd.DataFrame(index=stats.dates[rows], columns=[m for m in pool if m in stats.models], dtype=float)
    cov = stats.cov[rows][:, idx][:, :, idx]
    cross = stats.cross[rows][:, idx]
    v = stats.label_var[rows]
    num = cross.sum(axis=1)
    row_sums = cov.sum(axis=2)                     # C 1_P
    quad = row_sums.sum(axis=1)                    # 1_P' C 1_P
    diag = np.diagonal(cov, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        full = num / np.sqrt(quad * v)
        q_wo = quad[:, None] - 2.0 * row_sums + diag
        wo = (num[:, None] - cross) / np.sqrt(np.where(q_wo > 1e-12, q_wo, np.nan) * v[:, None])
    wo = np.where(np.isfinite(wo), wo, 0.0)        # the pool without it is empty (or all zero): IC 0
    out = full[:, None] - wo
    return pd.DataFrame(out, index=stats.dates[rows], columns=[stats.models[i] for i in idx])
