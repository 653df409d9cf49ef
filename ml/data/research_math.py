"""The linear algebra of the feature research marts (models/research/*.py), as pure functions.

dbt Python models own the I/O (a DuckDB relation in, a DataFrame out); the math is here so it has one
definition and its own tests. Ranks and ICs stay in SQL (macros/research.sql).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_NAMES = 10  # as ml.metrics.daily_ic and macros/research.sql rank_ic


def feature_cube(ranks) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The feature ranks as a dates x symbols x features array (NaN where a name lacks the feature), with
    the dates, symbols and (view_name, feature) of each axis: integer codes looked up in the sorted
    distinct keys (np.searchsorted), not a pivot."""
    def distinct(select: str, source: str) -> pd.DataFrame:
        return ranks.query("feature_ranks", f"select {select} from (select distinct {source} from feature_ranks) "
                           "order by 1").df()

    day = "(date - date '1970-01-01')::integer"
    cols = ranks.query("feature_ranks", f"select {day} as day, hash(symbol) as s, hash(view_name, feature) as f, "
                       "rank_pct from feature_ranks").fetchnumpy()
    days = distinct("day", f"{day} as day")["day"].to_numpy()
    symbols = distinct("hash(symbol) as s, symbol", "symbol")
    keys = distinct("hash(view_name, feature) as f, view_name, feature", "view_name, feature")
    cube = np.full((len(days), len(symbols), len(keys)), np.nan)
    cube[np.searchsorted(days, cols["day"]), np.searchsorted(symbols["s"].to_numpy(), cols["s"]),
         np.searchsorted(keys["f"].to_numpy(), cols["f"])] = cols["rank_pct"]
    return (days.astype("datetime64[D]"), symbols["symbol"].to_numpy(), keys["view_name"].to_numpy(),
            keys["feature"].to_numpy(), cube)


def mean_pairwise_corr(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean correlation, dates counted) for every pair of the cube's features, pairwise complete."""
    k = cube.shape[2]
    total, count = np.zeros((k, k)), np.zeros((k, k))
    for t in range(cube.shape[0]):
        x = cube[t]
        m = np.isfinite(x).astype("float64")
        x0 = np.where(m > 0, x, 0.0)
        n = m.T @ m
        sx = x0.T @ m                       # sum of feature i over the names holding feature j too
        sxx = (x0 * x0).T @ m
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = n * (x0.T @ x0) - sx * sx.T
            var = n * sxx - sx * sx
            corr = cov / np.sqrt(var * var.T)
        ok = (n >= MIN_NAMES) & np.isfinite(corr)
        total += np.where(ok, np.clip(corr, -1.0, 1.0), 0.0)
        count += ok
    return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


def _basis(design: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the design's column space (SVD: an all-missing baseline column is fine)."""
    u, s, _ = np.linalg.svd(design, full_matrices=False)
    return u[:, s > s.max() * 1e-10]


def neutralize(cube: np.ndarray, is_base: np.ndarray) -> np.ndarray:
    """Residuals of the non-baseline features' centered ranks on [1, baseline], date by date, each over
    the names holding that feature (features sharing a set of names share one projection)."""
    centered = cube - 0.5
    out = np.full(centered[:, :, ~is_base].shape, np.nan)
    for t in range(centered.shape[0]):
        base = np.nan_to_num(centered[t][:, is_base])
        other = centered[t][:, ~is_base]
        present = np.isfinite(other)
        patterns, which = np.unique(present.T, axis=0, return_inverse=True)
        for k, names in enumerate(patterns):
            if names.sum() < 3:
                continue
            cols = np.flatnonzero(which.ravel() == k)
            q = _basis(np.column_stack([np.ones(names.sum()), base[names]]))
            y = other[np.ix_(names, cols)]
            out[t, np.ix_(names, cols)[0], cols] = y - q @ (q.T @ y)
    return out
