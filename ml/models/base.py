"""The zoo's foundations: cross-sectional preprocessing, per-date moments and the estimator bases.

Split from ml/zoo.py so that a family can live in its own module (ml/models/screened.py) without an
import cycle: this module knows no family; `ml.zoo.FAMILIES` registers them all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import ndtri
from sklearn.base import BaseEstimator, RegressorMixin

STATE_PREFIX = "__state__"
CATEGORY_PREFIX = "__cat__"  # string columns (sector, industry) for families with `needs_categories`
# Columns whose cross-sectional median is a volatility-like market state (regime detection).
DEFAULT_STATE_PATTERN = r"(?i)(^|_)(vol|volatility|realized_vol|rv|iv|iv_level|atr)(_|\d|$)"


# ================================================================================ panel helpers
def as_panel(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame indexed by (date, symbol), dates as datetime64; accepts `date`/`symbol` columns."""
    if isinstance(frame.index, pd.MultiIndex) and "date" in frame.index.names:
        return frame
    if {"date", "symbol"} <= set(frame.columns):
        out = frame.assign(date=pd.to_datetime(frame["date"])).set_index(["date", "symbol"])
        return out
    raise ValueError("X must be indexed by (date, symbol) or have date and symbol columns")


def date_codes(index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(codes, unique sorted dates) of the `date` level: codes[i] is row i's position in the dates."""
    dates = index.get_level_values("date") if isinstance(index, pd.MultiIndex) else index
    values = pd.to_datetime(np.asarray(dates)).to_numpy(dtype="datetime64[ns]")
    uniq, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), uniq


def cross_sectional_normalize(X: pd.DataFrame, method: str = "rank_gauss", clip: float = 3.0) -> pd.DataFrame:
    """Per-date transform of every column; missing values become 0 (the cross-sectional neutral).

    `rank_gauss`: average ranks within the date -> normal quantiles ((r - 0.5) / n), clipped at
    +-clip. `zscore`: (x - median) / (1.4826 * MAD) within the date (std when MAD is 0), clipped at
    +-clip (winsorized). Pure function of each date's cross-section: point-in-time by construction.
    """
    if X.shape[1] == 0:
        return X.astype("float64")
    codes, _ = date_codes(X.index)
    values = pd.DataFrame(X.to_numpy(dtype="float64", na_value=np.nan))
    values = values.replace([np.inf, -np.inf], np.nan)
    grouped = values.groupby(codes)
    if method == "rank_gauss":
        ranks = grouped.rank(method="average").to_numpy()
        counts = grouped.transform("count").to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            z = ndtri((ranks - 0.5) / counts)
    elif method == "zscore":
        med = grouped.transform("median").to_numpy()
        dev = np.abs(values.to_numpy() - med)
        mad = pd.DataFrame(dev).groupby(codes).transform("median").to_numpy() * 1.4826
        sd = grouped.transform("std").to_numpy()
        scale = np.where(mad > 1e-12, mad, sd)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (values.to_numpy() - med) / scale
    else:
        raise ValueError(f"unknown preprocessing method {method!r} (rank_gauss | zscore)")
    z = np.clip(z, -clip, clip)
    z[~np.isfinite(z)] = 0.0
    return pd.DataFrame(z, index=X.index, columns=X.columns)


def cross_sectional_target(y: pd.Series, how: str = "rank") -> pd.Series:
    """Per-date target: `rank` -> centered percentile rank in (-0.5, 0.5); `demean`; `raw`. NaN stays NaN."""
    if how == "raw":
        return y.astype("float64")
    codes, _ = date_codes(y.index)
    grouped = y.astype("float64").groupby(codes)
    if how == "demean":
        return y - grouped.transform("mean").to_numpy()
    if how == "rank":
        ranks = grouped.rank(method="average")
        counts = grouped.transform("count")
        return (ranks - 0.5) / counts - 0.5
    raise ValueError(f"unknown target transform {how!r} (rank | demean | raw)")


def state_source_columns(columns, pattern: str = DEFAULT_STATE_PATTERN) -> tuple[list[str], str]:
    """Raw columns feeding the market state and the statistic: volatility-like columns' cross-sectional
    median when any match `pattern` (matched on the name after a `view__` prefix), else every
    column's cross-sectional interquartile range (dispersion)."""
    rx = re.compile(pattern)
    hits = [c for c in columns if rx.search(str(c).split("__")[-1])]
    if hits:
        return hits, "median"
    return list(columns), "iqr"


def market_state(X_raw: pd.DataFrame, columns: list[str], stat: str) -> pd.DataFrame:
    """Date-level state columns (`__state__<k>`), broadcast to X_raw's rows: one cross-sectional
    statistic of each raw column per date (uses the date's own cross-section only: PIT)."""
    codes, _ = date_codes(X_raw.index)
    values = pd.DataFrame(X_raw[columns].to_numpy(dtype="float64", na_value=np.nan)).replace(
        [np.inf, -np.inf], np.nan
    )
    grouped = values.groupby(codes)
    if stat == "median":
        per_date = grouped.median().to_numpy()
    elif stat == "iqr":
        per_date = (grouped.quantile(0.75) - grouped.quantile(0.25)).to_numpy()
    else:
        raise ValueError(f"unknown state statistic {stat!r}")
    out = per_date[codes]
    names = [f"{STATE_PREFIX}{k}" for k in range(len(columns))]
    return pd.DataFrame(out, index=X_raw.index, columns=names)


# ================================================================================ moments
class DateMoments:
    """Per-date sufficient statistics of a linear regression of y on X (rows with missing y dropped).

    Arrays over T dates: n (T,), sx (T,p), sy (T,), sxx (T,p,p), sxy (T,p), syy (T,), and an
    optional date-level state (T,k). `subset(positions)` shares the parent's per-date coefficient
    cache, so Fama-MacBeth's per-date regressions are solved once per view and penalty.
    """

    def __init__(self, n, sx, sy, sxx, sxy, syy, state=None, dates=None, _root=None, _positions=None):
        self.n, self.sx, self.sy, self.sxx, self.sxy, self.syy = n, sx, sy, sxx, sxy, syy
        self.state = state
        self.dates = dates
        self._root = _root
        self._positions = _positions
        self._coef_cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def n_dates(self) -> int:
        return len(self.n)

    @property
    def n_features(self) -> int:
        return self.sx.shape[1]

    @classmethod
    def from_arrays(cls, X: np.ndarray, y: np.ndarray, codes: np.ndarray, n_dates: int | None = None,
                    state: np.ndarray | None = None, dates=None) -> DateMoments:
        X = np.asarray(X, dtype="float64")
        y = np.asarray(y, dtype="float64")
        codes = np.asarray(codes)
        T = int(codes.max()) + 1 if n_dates is None else int(n_dates)
        p = X.shape[1]
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(T + 1))
        n = np.zeros(T)
        sx = np.zeros((T, p))
        sy = np.zeros(T)
        sxx = np.zeros((T, p, p))
        sxy = np.zeros((T, p))
        syy = np.zeros(T)
        st = None if state is None else np.full((T, state.shape[1]), np.nan)
        for t in range(T):
            rows = order[bounds[t] : bounds[t + 1]]
            if len(rows) == 0:
                continue
            if st is not None:
                st[t] = state[rows[0]]
            yt = y[rows]
            ok = np.isfinite(yt)
            if not ok.all():
                rows, yt = rows[ok], yt[ok]
            if len(rows) == 0:
                continue
            xt = X[rows]
            n[t] = len(rows)
            sx[t] = xt.sum(0)
            sy[t] = yt.sum()
            sxx[t] = xt.T @ xt
            sxy[t] = xt.T @ yt
            syy[t] = yt @ yt
        for arr in (n, sx, sy, sxx, sxy, syy):
            arr.setflags(write=False)  # training windows share these arrays as views (`subset`)
        return cls(n, sx, sy, sxx, sxy, syy, state=st, dates=dates)

    def subset(self, positions) -> DateMoments:
        pos = np.asarray(positions)
        root = self._root or self
        root_pos = pos if self._positions is None else self._positions[pos]
        # a run of consecutive dates (a training window) is sliced: views, not a copy of the (T, p, p) array
        take = pos
        if len(pos) and pos.dtype.kind in "iu" and np.all(np.diff(pos) == 1):
            take = slice(int(pos[0]), int(pos[-1]) + 1)
        return DateMoments(
            self.n[take], self.sx[take], self.sy[take], self.sxx[take], self.sxy[take], self.syy[take],
            state=None if self.state is None else self.state[take],
            dates=None if self.dates is None else self.dates[take],
            _root=root, _positions=root_pos,
        )

    def pooled(self, mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> tuple:
        """Centered pooled statistics: (n, mean_x, mean_y, Sxx_c, Sxy_c, Syy_c).

        `weights` (T,): each date's rows count with that weight (weighted least squares by date, e.g.
        `decay_weights`); n is then the weighted row count, so a ridge penalty `alpha * n` keeps its scale.
        """
        sel = slice(None) if mask is None else mask  # a slice keeps the (T, p, p) array a view, not a copy
        if weights is None:
            n = self.n[sel].sum()
            total = (self.sx[sel].sum(0), self.sy[sel].sum(), self.sxx[sel].sum(0), self.sxy[sel].sum(0),
                     self.syy[sel].sum())
        else:
            w = np.asarray(weights, dtype="float64")
            if mask is not None:
                w = np.where(np.asarray(mask), w, 0.0)  # zero weight rather than a masked copy of sxx
            n = float(w @ self.n) if self.n[sel].sum() >= 2 else 0.0
            total = (w @ self.sx, float(w @ self.sy), np.tensordot(w, self.sxx, axes=1), w @ self.sxy,
                     float(w @ self.syy))
        if n < 2:
            p = self.n_features
            return 0.0, np.zeros(p), 0.0, np.zeros((p, p)), np.zeros(p), 0.0
        sx, sy, sxx, sxy, syy = total
        mx = sx / n
        my = sy / n
        return n, mx, my, sxx - n * np.outer(mx, mx), sxy - n * mx * my, syy - n * my * my

    def per_date_coef(self, ridge: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-date ridge slopes (T,p) and intercepts (T,): (Sxx_t,c + ridge n_t I) b_t = Sxy_t,c."""
        if self._root is not None:
            coef, icpt = self._root.per_date_coef(ridge)
            return coef[self._positions], icpt[self._positions]
        key = float(ridge)
        if key not in self._coef_cache:
            n = np.maximum(self.n, 1.0)
            mx = self.sx / n[:, None]
            my = self.sy / n
            S = self.sxx - n[:, None, None] * mx[:, :, None] * mx[:, None, :]
            c = self.sxy - n[:, None] * mx * my[:, None]
            p = self.n_features
            A = S + (ridge * n)[:, None, None] * np.eye(p)[None] + 1e-9 * np.eye(p)[None]
            coef = np.linalg.solve(A, c[:, :, None])[:, :, 0]
            coef[self.n < 3] = 0.0
            icpt = my - np.einsum("tp,tp->t", mx, coef)
            self._coef_cache[key] = (coef, icpt)
        return self._coef_cache[key]


def decay_weights(n_dates: int, halflife: float | None) -> np.ndarray | None:
    """Weights over a training window's dates (oldest first): the newest counts 1, a date `halflife`
    dates older 1/2. None (no half-life) means equal weights: the expanding window."""
    if halflife is None:
        return None
    if not halflife > 0:
        raise ValueError(f"halflife must be a positive number of dates or null, got {halflife!r}")
    age = np.arange(n_dates, dtype="float64")[::-1]
    return 0.5 ** (age / float(halflife))


def _ridge_solve(sxx: np.ndarray, sxy: np.ndarray, penalty: float, prior: np.ndarray | None = None) -> np.ndarray:
    p = len(sxy)
    rhs = sxy if prior is None else sxy + penalty * prior
    return np.linalg.solve(sxx + (penalty + 1e-9) * np.eye(p), rhs)


def _enet_gram(G: np.ndarray, c: np.ndarray, lam1: float, lam2: float, tol: float = 1e-7,
               max_iter: int = 20000) -> np.ndarray:
    """Minimize 1/2 b'Gb - c'b + lam1 |b|_1 + lam2/2 |b|^2 (G = X'X/n, c = X'y/n) by ADMM.

    ADMM's b-step solves the ridge system exactly, so (near-)duplicate features, common among
    rank-gaussianized variants of one signal, do not slow it down the way coordinate descent
    zig-zags between them. Returns the sparse iterate z (exact zeros from the soft-threshold).
    """
    p = len(c)
    if p == 0:
        return np.zeros(0)
    rho = max(float(np.trace(G)) / p, 1e-8)
    inv = np.linalg.inv(G + (lam2 + rho) * np.eye(p))
    z = np.zeros(p)
    u = np.zeros(p)
    kappa = lam1 / rho
    floor = tol * max(float(np.abs(c).max()), 1e-12) * np.sqrt(p)
    for _ in range(max_iter):
        b = inv @ (c + rho * (z - u))
        z_old = z
        v = b + u
        z = np.sign(v) * np.maximum(np.abs(v) - kappa, 0.0)
        u = u + b - z
        primal = np.linalg.norm(b - z)
        dual = rho * np.linalg.norm(z - z_old)
        if primal <= floor + tol * max(np.linalg.norm(b), np.linalg.norm(z)) and dual <= floor + tol * rho * np.linalg.norm(u):
            break
    return z


# ================================================================================ base classes
class ZooEstimator(RegressorMixin, BaseEstimator):
    """Base of every family: feature selection (state columns excluded), NaN-target filtering."""

    family: ClassVar[str] = ""
    grid: ClassVar[dict[str, list]] = {}
    uses_moments: ClassVar[bool] = False
    needs_state: ClassVar[bool] = False
    needs_categories: ClassVar[bool] = False  # gets CATEGORY_PREFIX columns (ml/models/categories.py)
    artifact_format: ClassVar[str] = "joblib"
    artifact_file: ClassVar[str] = "model.joblib"

    def _feature_columns(self, X: pd.DataFrame) -> list[str]:
        return [c for c in X.columns if not str(c).startswith((STATE_PREFIX, CATEGORY_PREFIX))]

    def _check_features(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"{type(self).__name__}: X lacks fitted features {missing[:5]}")
        return X[list(self.feature_names_in_)].to_numpy(dtype="float64", na_value=0.0)

    # -- persistence: joblib unless a family overrides (native formats)
    def save(self, directory: Path) -> str:
        import joblib

        path = Path(directory) / self.artifact_file
        joblib.dump(self, path)
        return path.name

    @classmethod
    def load(cls, path: Path) -> ZooEstimator:
        import joblib

        return joblib.load(path)


class _MomentsLinear(ZooEstimator):
    """Linear families solved from `DateMoments`; stored as JSON (coefficients and what predict needs)."""

    uses_moments = True
    artifact_format = "json"
    artifact_file = "model.json"
    _json_attrs: ClassVar[tuple[str, ...]] = ("coef_", "intercept_")

    def fit(self, X: pd.DataFrame, y: pd.Series):
        X = as_panel(X)
        feats = self._feature_columns(X)
        codes, dates = date_codes(X.index)
        state = None
        if self.needs_state:
            cols = [c for c in X.columns if str(c).startswith(STATE_PREFIX)]
            if not cols:
                raise ValueError(f"{type(self).__name__} needs {STATE_PREFIX}* columns (see market_state)")
            state = X[cols].to_numpy(dtype="float64")
        moments = DateMoments.from_arrays(
            X[feats].to_numpy(dtype="float64", na_value=0.0),
            np.asarray(y.reindex(X.index) if isinstance(y, pd.Series) else y, dtype="float64"),
            codes, len(dates), state=state, dates=dates,
        )
        return self.fit_moments(moments, feats)

    def fit_moments(self, moments: DateMoments, feature_names) -> _MomentsLinear:
        self.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self._fit_moments(moments)
        return self

    def _fit_moments(self, moments: DateMoments) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _pooled(self, m: DateMoments, mask: np.ndarray | None = None) -> tuple:
        """`m.pooled`, with the training dates down-weighted by age when the family has a `halflife`
        (a grid parameter, so the walk-forward trainer decides inside each window whether old dates help)."""
        return m.pooled(mask, decay_weights(m.n_dates, getattr(self, "halflife", None)))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self._check_features(X) @ self.coef_ + self.intercept_

    # whether predict is exactly intercept_ + X @ coef_; None: yes unless a subclass overrides predict
    linear_in_features: ClassVar[bool | None] = None

    def linear_coefficients(self, X: pd.DataFrame) -> np.ndarray | None:
        """Weights on the columns of `X` (0 where unused) when predict is intercept + X @ coef_: lets
        permutation importance shift scores instead of predicting each shuffled copy (ml/importance.py).
        A (columns,) vector here; a family whose slopes depend on a row's non-feature columns (the
        market state) returns a (rows, columns) matrix. None when predict is not linear in the features."""
        linear = type(self).linear_in_features
        if linear is None:
            linear = type(self).predict is _MomentsLinear.predict
        if not linear:
            return None
        return self._weights_on(list(X.columns), np.asarray(self.coef_, dtype="float64"))

    def _weights_on(self, columns: list, coef: np.ndarray) -> np.ndarray | None:
        """`coef` (over feature_names_in_, last axis) placed on `columns`; None if one is missing."""
        at = {c: i for i, c in enumerate(columns)}
        if any(c not in at for c in self.feature_names_in_):
            return None
        out = np.zeros((*coef.shape[:-1], len(at)))
        out[..., [at[c] for c in self.feature_names_in_]] = coef
        return out

    def save(self, directory: Path) -> str:
        payload = {"class": type(self).__name__, "params": _jsonable(self.get_params()),
                   "feature_names_in_": [str(c) for c in self.feature_names_in_]}
        for attr in self._json_attrs:
            payload[attr] = _jsonable(getattr(self, attr))
        path = Path(directory) / self.artifact_file
        path.write_text(json.dumps(payload))
        return path.name

    @classmethod
    def load(cls, path: Path) -> _MomentsLinear:
        payload = json.loads(Path(path).read_text())
        from ml.zoo import FAMILY_CLASSES  # the registry of every family lives with the families

        model = FAMILY_CLASSES[payload["class"]](**payload["params"])
        model.feature_names_in_ = np.asarray(payload["feature_names_in_"], dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        for attr in type(model)._json_attrs:
            value = payload[attr]
            setattr(model, attr, np.asarray(value, dtype="float64") if isinstance(value, list) else value)
        return model


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
