"""Rank correlation between every pair of features, within and across views.

For each research date, the correlation of two features' cross-sectional ranks over the names holding
both (pairwise complete), averaged over the dates where at least 10 names hold both. Four matrix
products per date (counts, sums, squares and cross-products over the pairwise-present names), not a
loop over pairs. Both orders of each pair are stored, so "what does feature F correlate with" is one
filter; same_view marks pairs inside one view.
"""

import numpy as np
import pandas as pd

MIN_NAMES = 10


def feature_cube(ranks):
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


def model(dbt, session):
    dbt.config(materialized="table")
    ranks = dbt.ref("int_feature_ranks_computed")
    columns = {c: pd.Series(dtype="str") for c in ("view_a", "feature_a", "view_b", "feature_b")}
    empty = pd.DataFrame(columns | {"corr": pd.Series(dtype="float64"), "n_dates": pd.Series(dtype="int64"),
                                    "same_view": pd.Series(dtype="bool")})
    if not ranks.aggregate("count(*)").fetchall()[0][0]:
        return empty
    _, _, views, features, cube = feature_cube(ranks)
    if cube.shape[2] < 2:
        return empty
    corr, count = mean_pairwise_corr(cube)
    a, b = np.nonzero(~np.eye(cube.shape[2], dtype=bool))
    return pd.DataFrame({
        "view_a": views[a], "feature_a": features[a], "view_b": views[b], "feature_b": features[b],
        "corr": corr[a, b], "n_dates": count[a, b].astype("int64"), "same_view": views[a] == views[b],
    })
