"""The linear algebra of the feature research marts (models/research/*.py), as pure functions.

dbt Python models own the I/O (a DuckDB relation in, a DataFrame out); the math is here so it has one
definition and its own tests. Ranks and ICs stay in SQL (macros/research.sql).
"""

from __future__ import annotations

import numpy as np

MIN_NAMES = 10  # as ml.metrics.daily_ic and macros/research.sql rank_ic


def feature_cube(ranks) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The feature ranks as a dates x symbols x features array (NaN where a name lacks the feature), with
    the dates, symbols and (view_name, feature) of each axis. DuckDB numbers the few distinct dates,
    symbols and features and joins the numbers on (hash joins against tiny tables): no pivot, no sort of
    the long table."""
    dims = """
        with day_codes as (select date, row_number() over (order by date) - 1 as d
                           from (select distinct date from feature_ranks)),
             symbol_codes as (select symbol, row_number() over (order by symbol) - 1 as s
                              from (select distinct symbol from feature_ranks)),
             feature_codes as (select view_name, feature, row_number() over (order by view_name, feature) - 1 as f
                               from (select distinct view_name, feature from feature_ranks))
    """
    codes = ranks.query("feature_ranks", dims + """
        select day_codes.d, symbol_codes.s, feature_codes.f, feature_ranks.rank_pct
        from feature_ranks
        join day_codes using (date) join symbol_codes using (symbol) join feature_codes using (view_name, feature)
    """).fetchnumpy()
    dates = ranks.query("feature_ranks", dims + "select date from day_codes order by d").df()["date"]
    symbols = ranks.query("feature_ranks", dims + "select symbol from symbol_codes order by s").df()["symbol"]
    keys = ranks.query("feature_ranks", dims + "select view_name, feature from feature_codes order by f").df()
    cube = np.full((len(dates), len(symbols), len(keys)), np.nan)
    cube[codes["d"], codes["s"], codes["f"]] = codes["rank_pct"]
    return (dates.to_numpy().astype("datetime64[D]"), symbols.to_numpy(), keys["view_name"].to_numpy(),
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


def neutralize(cube: np.ndarray, is_base: np.ndarray) -> np.ndarray:
    """Residuals of the non-baseline features' centered ranks on [1, baseline], date by date, each over
    the names holding that feature: per feature the normal equations over its own names (a k x k Gram
    matrix of the design, k = 1 + baseline features), all features of a date solved at once with a
    pseudo-inverse, so an all-missing baseline column (warm-up) costs nothing."""
    centered = cube - 0.5
    out = np.full(centered[:, :, ~is_base].shape, np.nan)
    for t in range(centered.shape[0]):
        other = centered[t][:, ~is_base]
        present = np.isfinite(other)
        held = present.sum(axis=0) >= 3
        if not held.any():
            continue
        design = np.column_stack([np.ones(len(other)), np.nan_to_num(centered[t][:, is_base])])
        weights = present[:, held].astype("float64")                    # names x features
        y = np.where(present[:, held], other[:, held], 0.0)
        weighted = weights.T[:, :, None] * design[None, :, :]            # features x names x k
        gram = np.matmul(weighted.transpose(0, 2, 1), design)            # features x k x k
        moment = y.T @ design                                            # features x k
        beta = np.matmul(np.linalg.pinv(gram, rcond=1e-10, hermitian=True), moment[:, :, None])[:, :, 0]
        resid = y - design @ beta.T
        out[t][:, held] = np.where(present[:, held], resid, np.nan)
    return out


def rank_persistence(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (date, feature), against the previous date of the cube: the rank autocorrelation over the
    names holding the feature on both (NaN below MIN_NAMES names or when a side is constant, as the
    SQL rank_ic), and the share of the top and of the bottom decile (decile = min(9, floor(10 rank)))
    not in it the date before (NaN when none of its names had a value then). The first date is NaN."""
    dates, _, features = cube.shape
    autocorr, top, bottom = (np.full((dates, features), np.nan) for _ in range(3))
    if dates < 2:
        return autocorr, top, bottom
    now, before = cube[1:], cube[:-1]
    both = np.isfinite(now) & np.isfinite(before)
    n = both.sum(axis=1)
    x, y = np.where(both, now, 0.0), np.where(both, before, 0.0)
    sx, sy = x.sum(axis=1), y.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vx, vy = n * (x * x).sum(axis=1) - sx * sx, n * (y * y).sum(axis=1) - sy * sy
        corr = (n * (x * y).sum(axis=1) - sx * sy) / np.sqrt(vx * vy)
        ok = (n >= MIN_NAMES) & (vx / np.maximum(n, 1) ** 2 > 1e-12) & (vy / np.maximum(n, 1) ** 2 > 1e-12)
        autocorr[1:] = np.where(ok, np.clip(corr, -1.0, 1.0), np.nan)
        decile = np.where(np.isfinite(cube), np.minimum(9, np.floor(cube * 10)), -1)
        had_value = np.isfinite(before)
        for out, level in ((top, 9), (bottom, 0)):
            members = decile[1:] == level
            known = (members & had_value).sum(axis=1)
            left = (members & (decile[:-1] != level)).sum(axis=1)
            out[1:] = np.where(known > 0, left / np.maximum(members.sum(axis=1), 1), np.nan)
    return autocorr, top, bottom
