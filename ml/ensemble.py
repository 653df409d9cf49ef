"""Ensembles of the zoo's out-of-sample predictions, using only what is known at each date.

Scores of every model are first standardized per date (cross-sectional z, clipped) into a wide
*score panel*: rows (date, symbol) sorted by date, one column per model_id. A *weighter* turns the
panel and the realized label into per-date model weights (dates x models); `combine` applies them.

Why the lag: a score made at date s is judged against the forward return over s+1..s+h, known only at
the close of s+h. Weights used at date t may therefore only use labels of dates s <= t - h - 1
(`known_lag = horizon + 1` calendar rows of the panel), a trailing window that ends at t-h-1.

Weighters (small objects, combined by the caller like scikit-learn estimators):
* `EqualWeight`   - the baseline: every available model counts the same;
* `ICWeighted`    - trailing out-of-sample IC or ICIR, negative models at zero, shrunk toward equal;
* `Stacked`       - a walk-forward non-negative ridge meta-model (shrunk toward equal weights) on the
                    out-of-fold scores, refitted every period on rows whose label is known by then.
Optional per-model multipliers (e.g. promoted models) scale any weighter's weights. The panel itself
(standardizing, known windows, the shared daily IC) is built in ml/portfolio/score_panel.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular
from scipy.optimize import nnls

from ml.metrics import daily_rank_ic, date_bounds, group_sums  # noqa: F401 (re-exported: ens.daily_rank_ic)
from ml.portfolio.score_panel import (  # noqa: F401 (re-exported: ens.standardize, ens.shared_daily_ic, ...)
    cumulative_days_with_data,
    known_at,
    known_windows,
    score_panel,
    shared_daily_ic,
    shared_daily_rank_ic,
    standardize,
)

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "ensemble.yaml"
METHODS = ("equal", "ic_weighted", "stacked", "neural_stacked", "walk_forward_choice")


# ================================================================================ weighters
class Weighter(Protocol):
    def weights(self, panel: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
        """Per-date model weights (index: the panel's calendar, columns: its models)."""
        ...


def _equal_frame(calendar: pd.DatetimeIndex, columns) -> pd.DataFrame:
    return pd.DataFrame(1.0 / max(len(columns), 1), index=calendar, columns=columns)


@dataclass
class EqualWeight:
    """Every model the same weight: the baseline any other ensemble has to beat."""

    def weights(self, panel: pd.DataFrame, label: pd.Series | None = None) -> pd.DataFrame:
        calendar, _, _ = date_bounds(panel.index)
        return _equal_frame(calendar, panel.columns)


@dataclass
class ICWeighted:
    """Weights from each model's trailing out-of-sample rank IC (or ICIR), using only labels known
    at the date; models with a non-positive statistic get zero; the rest are shrunk toward equal.

    Equal weights until `min_periods` known IC days exist; after that, a date where no model has a
    positive statistic gets no weights (no signal rather than a signal known to be wrong).
    """

    horizon: int = 5
    window: int = 252
    min_periods: int = 63
    statistic: str = "icir"  # ic | icir
    shrinkage: float = 0.5  # 0: pure IC weights, 1: equal weights over the positive models
    min_names: int = 10

    def statistic_frame(self, panel: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
        """Trailing IC (or ICIR) per model as known at each date (NaN before `min_periods`)."""
        calendar, _, _ = date_bounds(panel.index)
        ic = shared_daily_rank_ic(panel, label, self.min_names).reindex(calendar)
        roll = ic.rolling(self.window, min_periods=self.min_periods)
        stat = roll.mean()
        if self.statistic == "icir":
            stat = stat / roll.std().where(lambda s: s > 0)
        elif self.statistic != "ic":
            raise ValueError(f"statistic must be ic | icir, got {self.statistic!r}")
        return known_at(stat, calendar, self.horizon + 1)

    def weights(self, panel: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
        stat = self.statistic_frame(panel, label)
        positive = stat.clip(lower=0.0).fillna(0.0)
        n_pos = (positive > 0).sum(axis=1)
        ic_w = positive.div(positive.sum(axis=1).where(lambda s: s > 0), axis=0)
        eq_w = (positive > 0).astype(float).div(n_pos.where(n_pos > 0), axis=0)
        w = ((1.0 - self.shrinkage) * ic_w + self.shrinkage * eq_w).fillna(0.0)
        warm = stat.notna().sum(axis=1) == 0
        w.loc[warm] = 1.0 / max(panel.shape[1], 1)
        return w




@dataclass
class BestTrailing:
    """All weight on the single model with the best trailing statistic known at the date: the
    walk-forward "pick the best model" benchmark (ensembles should beat it, not the hindsight best)."""

    horizon: int = 5
    window: int = 252
    min_periods: int = 63
    statistic: str = "icir"

    def weights(self, panel: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
        stat = ICWeighted(self.horizon, self.window, self.min_periods, self.statistic, 0.0).statistic_frame(
            panel, label)
        best = stat.fillna(-np.inf).to_numpy().argmax(axis=1)
        w = np.zeros(stat.shape)
        w[np.arange(len(w)), best] = 1.0
        warm = stat.notna().sum(axis=1).to_numpy() == 0
        w[warm] = 1.0 / max(panel.shape[1], 1)
        return pd.DataFrame(w, index=stat.index, columns=stat.columns)


@dataclass
class Stacked:
    """Walk-forward stacking: a non-negative ridge of the cross-sectionally standardized label on the
    standardized model scores, shrunk toward equal weights, refitted every `refit` period on all rows
    whose label is known by then (dates <= refit date - horizon - 1). Equal weights before the first
    fit. Non-negativity plus the equal-weight prior keep the meta-model from betting on the noise in
    the differences between highly correlated models."""

    horizon: int = 5
    refit: str = "M"
    # ridge strength, relative to the mean diagonal of X'X; a list: chosen at each refit, walk-forward,
    # by the mean daily IC on the last `val_fraction` of the training dates (purged), ties to the largest
    alpha: float | Sequence[float] = 1.0
    min_train_days: int = 63  # dates in the training window with a label and at least one model score
    window: int | None = None  # trailing training dates; None: expanding
    label_transform: str = "rank"  # rank | zscore: per-date transform of the label (rank: robust to tails)
    label_clip: float = 3.0
    val_fraction: float = 0.2
    chosen_alpha: list = field(default_factory=list, init=False, repr=False)  # (refit date, alpha), last weights()

    def weights(self, panel: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
        calendar, _, starts = date_bounds(panel.index)
        out = _equal_frame(calendar, panel.columns)
        y = standardize(label.reindex(panel.index).to_frame("y"), clip=self.label_clip,
                        method=self.label_transform)["y"].to_numpy()
        ok = np.isfinite(y)
        scores = panel.to_numpy(dtype="float64")
        x = np.where(np.isfinite(scores) & ok[:, None], scores, 0.0)
        y = np.where(ok, y, 0.0)
        days_with_data = cumulative_days_with_data(ok & np.isfinite(scores).any(axis=1), starts)
        periods = calendar.to_period(self.refit)
        refits = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
        fits = []  # (refit position, first training date, last training date)
        for p in refits:
            last = p - self.horizon - 1
            first = 0 if self.window is None else max(0, last - self.window + 1)
            if last >= 0 and days_with_data[last + 1] - days_with_data[first] >= self.min_train_days:
                fits.append((p, first, last))
        if not fits:
            return out
        # cumulative X'X and X'y at every boundary row, one block product per pair of boundaries
        row_at = np.r_[starts, len(x)]
        alphas = sorted((float(a) for a in self.alpha), reverse=True) if isinstance(self.alpha, Sequence) \
            else [float(self.alpha)]
        splits = {p: self._split(a, b, days_with_data) for p, a, b in fits} if len(alphas) > 1 else {}
        extra = [row_at[sp[0] + 1] for sp in splits.values() if sp is not None]
        bounds = np.unique([row_at[i] for _, a, b in fits for i in (a, b + 1)] + [0] + extra)
        gram = np.zeros((len(bounds), x.shape[1], x.shape[1]))
        xty = np.zeros((len(bounds), x.shape[1]))
        for j in range(1, len(bounds)):
            xb, yb = x[bounds[j - 1]:bounds[j]], y[bounds[j - 1]:bounds[j]]
            gram[j], xty[j] = gram[j - 1] + xb.T @ xb, xty[j - 1] + xb.T @ yb
        where = {int(r): j for j, r in enumerate(bounds)}
        ends = [p for p, _, _ in fits[1:]] + [len(calendar)]
        self.chosen_alpha = []
        for (p, a, b), end in zip(fits, ends, strict=True):
            j0, j1 = where[int(row_at[a])], where[int(row_at[b + 1])]
            alpha = alphas[0]
            if splits.get(p) is not None:
                fit_end, val_first = splits[p]
                jf = where[int(row_at[fit_end + 1])]
                rows = slice(row_at[val_first], row_at[b + 1])
                val_starts = starts[val_first:b + 1] - row_at[val_first]
                ics = [_mean_daily_corr(x[rows] @ nonneg_ridge(gram[jf] - gram[j0], xty[jf] - xty[j0], al), y[rows],
                                        ok[rows], val_starts) for al in alphas]
                alpha = alphas[int(np.nanargmax(ics))] if np.isfinite(ics).any() else alphas[0]
            self.chosen_alpha.append((calendar[p], alpha))
            w = nonneg_ridge(gram[j1] - gram[j0], xty[j1] - xty[j0], alpha)
            out.iloc[p:end] = np.repeat(w[None, :], end - p, axis=0)
        return out

    def _split(self, first: int, last: int, days_with_data: np.ndarray) -> tuple[int, int] | None:
        """(last fitting date, first validation date) inside the training window [first, last]: the
        validation tail is the last `val_fraction` of its dates (at least 21), the fitting part ends
        horizon + 1 dates before it (purged), and needs `min_train_days` dates with data; else None."""
        n = last - first + 1
        n_val = max(21, int(self.val_fraction * n))
        val_first = last - n_val + 1
        fit_end = val_first - self.horizon - 2
        if fit_end < first or days_with_data[fit_end + 1] - days_with_data[first] < self.min_train_days:
            return None
        return fit_end, val_first


def _mean_daily_corr(score: np.ndarray, y: np.ndarray, ok: np.ndarray, starts: np.ndarray) -> float:
    """Mean over dates (blocks at `starts`) of the Pearson correlation of score and y on usable rows."""
    w = ok.astype(float)
    n = group_sums(w, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        ms, my = group_sums(score * w, starts) / n, group_sums(y * w, starts) / n
        codes = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(score)]))
        ds, dy = (score - ms[codes]) * w, (y - my[codes]) * w
        corr = group_sums(ds * dy, starts) / np.sqrt(group_sums(ds * ds, starts) * group_sums(dy * dy, starts))
    corr = corr[np.isfinite(corr) & (n >= 10)]
    return float(corr.mean()) if len(corr) else float("nan")


def nonneg_ridge(gram: np.ndarray, xty: np.ndarray, alpha: float) -> np.ndarray:
    """argmin_w |y - Xw|^2 + a |w - w0|^2 subject to w >= 0, from X'X and X'y; w0 is the best equal
    weight vector (c * 1), a = alpha * mean(diag X'X). Returned normalized to sum 1 (scale is
    irrelevant once the ensemble is re-standardized); equal weights if every weight is zero."""
    m = len(xty)
    ones = np.ones(m)
    denom = ones @ gram @ ones
    c0 = (ones @ xty) / denom if denom > 0 else 0.0
    a = alpha * float(np.mean(np.diag(gram))) if m else 0.0
    a = max(a, 1e-12)
    lhs = gram + a * np.eye(m)
    rhs = xty + a * max(c0, 0.0) * ones
    chol = np.linalg.cholesky(lhs)  # lhs = L L'; |L'w - L^-1 rhs|^2 = w' lhs w - 2 rhs'w + const
    w, _ = nnls(chol.T, solve_triangular(chol, rhs, lower=True), maxiter=50 * m)
    total = w.sum()
    return w / total if total > 0 else ones / m


# ================================================================================ combination
@dataclass
class EnsembleResult:
    """An ensemble: the standardized combined score, the model weights used each date, and the
    weighted cross-model dispersion of standardized scores (the models' disagreement)."""

    method: str
    score: pd.Series  # index (date, symbol)
    weights: pd.DataFrame  # dates x models
    dispersion: pd.Series  # index (date, symbol)
    version: str = ""
    models: list[str] = field(default_factory=list)


def apply_multipliers(weights: pd.DataFrame, multipliers: Mapping[str, float] | None,
                      families: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Scale weights per model (keys: model_id, or a family name applying to all its models);
    renormalize each date to the original total."""
    if not multipliers:
        return weights
    factor = pd.Series(1.0, index=weights.columns)
    for model in weights.columns:
        fam = (families or {}).get(model)
        if fam is not None and fam in multipliers:
            factor[model] = float(multipliers[fam])
        if model in multipliers:
            factor[model] = float(multipliers[model])
    scaled = weights * factor
    total, new = weights.sum(axis=1), scaled.sum(axis=1)
    return scaled.mul((total / new.where(new > 0)).fillna(0.0), axis=0)


def apply_date_multipliers(weights: pd.DataFrame, multipliers: pd.DataFrame | None) -> pd.DataFrame:
    """Scale weights by a dates x models multiplier table (the lifecycle's point-in-time statuses:
    2 for promoted models, 1 for active ones, 0 for the rest); dates or models it does not cover keep
    their weight. Each date is renormalized to its original total."""
    if multipliers is None or multipliers.empty:
        return weights
    factor = multipliers.reindex(index=weights.index, columns=weights.columns).fillna(1.0)
    scaled = weights * factor
    total, new = weights.sum(axis=1), scaled.sum(axis=1)
    return scaled.mul((total / new.where(new > 0)).fillna(0.0), axis=0)


def combine(panel: pd.DataFrame, weights: pd.DataFrame, clip: float = 3.0) -> tuple[pd.Series, pd.Series]:
    """Weighted average of available standardized scores per row (weights renormalized over the
    models present), re-standardized per date; also the weighted cross-model dispersion."""
    calendar, codes, _ = date_bounds(panel.index)
    w = weights.reindex(index=calendar, columns=panel.columns).fillna(0.0).to_numpy()[codes]
    z = panel.to_numpy(dtype="float64")
    ok = np.isfinite(z)
    w = np.where(ok, w, 0.0)
    wsum = w.sum(axis=1)
    zf = np.where(ok, z, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * zf).sum(axis=1) / wsum
        var = (w * (zf - mean[:, None]) ** 2).sum(axis=1) / wsum
    mean = np.where(wsum > 0, mean, np.nan)
    disp = np.where(wsum > 0, np.sqrt(np.maximum(var, 0.0)), np.nan)
    score = standardize(pd.DataFrame({"score": mean}, index=panel.index), clip=clip)["score"]
    return score, pd.Series(disp, index=panel.index, name="dispersion")


class _Recording:
    """A weighter that keeps its last weights (before multipliers), for methods built on others."""

    def __init__(self, inner: Weighter):
        self.inner, self.result = inner, None

    def weights(self, panel: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
        self.result = self.inner.weights(panel, label)
        return self.result


def make_weighter(method: str, config: Mapping[str, Any] | None = None, horizon: int = 5) -> Weighter:
    """The weighter named `method` with its parameters from the config section of the same name."""
    params = dict((config or {}).get(method) or {})
    if method == "equal":
        return EqualWeight()
    if method == "ic_weighted":
        return ICWeighted(horizon=horizon, **params)
    if method == "stacked":
        return Stacked(horizon=horizon, **params)
    if method == "neural_stacked":
        from ml.ensemble_neural import NeuralStacked

        return NeuralStacked(horizon=horizon, **params)
    if method == "walk_forward_choice":
        from ml.ensemble_neural import WalkForwardChoice

        return WalkForwardChoice(horizon=horizon, config=config, **params)
    raise ValueError(f"unknown ensemble method {method!r}; one of {METHODS}")


def build_ensemble(
    panel: pd.DataFrame,
    label: pd.Series,
    weighter: Weighter,
    method: str = "",
    multipliers: Mapping[str, float] | None = None,
    families: Mapping[str, str] | None = None,
    clip: float = 3.0,
    date_multipliers: pd.DataFrame | None = None,
) -> EnsembleResult:
    """Weights from `weighter` (times any multipliers, static per model or per date), combined into
    one standardized score. `panel` must already be standardized (see `standardize`)."""
    weights = apply_multipliers(weighter.weights(panel, label), multipliers, families)
    weights = apply_date_multipliers(weights, date_multipliers)
    score, disp = combine(panel, weights, clip=clip)
    return EnsembleResult(method=method, score=score.rename("score"), weights=weights, dispersion=disp,
                          models=list(panel.columns))


# ================================================================================ configuration
ENSEMBLE_DEFAULTS: dict[str, Any] = {
    "method": "stacked",
    "horizon": 5,
    "label": {"source": "features", "column": None, "demean": True},
    "standardize": {"method": "zscore", "clip": 3.0},
    "allowed_models": None,
    "other_horizons": "shorter",
    "multipliers": {},
    "ic_weighted": {"window": 252, "min_periods": 63, "statistic": "icir", "shrinkage": 0.5},
    "stacked": {"refit": "M", "alpha": 1.0, "min_train_days": 63, "window": None, "label_transform": "rank"},
    "neural_stacked": {"refit": "M", "l2": 0.05, "hidden": 8, "steps": 150, "warm_steps": 30, "min_train_days": 126},
    "walk_forward_choice": {"candidates": ["equal", "ic_weighted", "stacked", "neural_stacked"], "window": 252,
                            "min_periods": 63, "statistic": "ic"},
}


def _merge(base: Mapping, over: Mapping) -> dict:
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for key, value in (over or {}).items():
        out[key] = _merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), dict) else value
    return out


def load_config(config: str | Path | Mapping | None = None, defaults: Mapping | None = None) -> dict[str, Any]:
    """`AURORA_ENSEMBLE_CONFIG`, else `config/ensemble.yaml` (or a path / dict) over the defaults;
    validates the method."""
    from ml.config import read_source

    cfg = _merge(defaults or ENSEMBLE_DEFAULTS, read_source("ensemble", config))
    if cfg.get("method") not in METHODS:
        raise ValueError(f"ensemble method must be one of {METHODS}, got {cfg.get('method')!r}")
    return cfg


def ensemble_version(method: str, cfg: Mapping, models: Sequence[str]) -> str:
    """A short, deterministic id of the ensemble: method, its settings and the model ids."""
    payload = json.dumps({"method": method, "cfg": cfg.get(method), "standardize": cfg.get("standardize"),
                          "multipliers": cfg.get("multipliers"), "models": sorted(models)},
                         sort_keys=True, default=str)
    return f"{method}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


def ensembles_from_config(
    predictions: pd.DataFrame,
    label: pd.Series,
    cfg: Mapping,
    methods: Sequence[str] | None = None,
    families: Mapping[str, str] | None = None,
    active: Sequence[str] | None = None,
    date_multipliers: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, EnsembleResult]]:
    """Standardized score panel of the allowed (and active) models, and one ensemble per method
    (default: every method, so they can be compared side by side). `predictions`: long (date, symbol,
    model_id, score) or already a wide score panel (index date, symbol; one column per model).
    `date_multipliers`: dates x models weight multipliers (the lifecycle's promotions)."""
    wide = "model_id" not in predictions.columns
    models = sorted(map(str, predictions.columns) if wide else predictions["model_id"].astype(str).unique())
    if active is not None:
        models = [m for m in models if m in set(active)]
    if cfg.get("allowed_models"):
        models = [m for m in models if m in set(map(str, cfg["allowed_models"]))]
    if not models:
        raise ValueError("no models left for the ensemble (check allowed_models and registry statuses)")
    std = cfg.get("standardize") or {}
    raw = predictions[models].sort_index() if wide else score_panel(predictions, models)
    panel = standardize(raw, clip=float(std.get("clip", 3.0)),
                        method=std.get("method", "zscore"))
    out, raw = {}, {}
    for method in methods or METHODS:
        weighter = _Recording(make_weighter(method, cfg, int(cfg["horizon"])))
        if hasattr(weighter.inner, "precomputed"):  # walk_forward_choice: reuse the candidates built before it
            weighter.inner.precomputed = dict(raw)
        res = build_ensemble(panel, label, weighter, method=method,
                             multipliers=cfg.get("multipliers"), families=families,
                             clip=float(std.get("clip", 3.0)), date_multipliers=date_multipliers)
        raw[method] = weighter.result
        res.version = ensemble_version(method, cfg, models)
        out[method] = res
    return panel, out
