"""Every feature's cross-sectional rank, neutralized to the baseline view on each research date.

On each date, each feature's centered ranks (rank_pct - 0.5) over the names holding it are regressed on
a constant and the baseline view's centered ranks (a baseline value a name lacks at the median, 0, as
the zoo's preprocessing sees it); the residual is what a feature says that the baseline does not (Numerai's
feature-neutral correlation is the anchor). One small least-squares projection per date: ranking and
the IC stay in SQL (research_feature_orthogonality), so the IC has one definition (macros/research.sql).
Output: view_name, feature, date, symbol, resid, for the names that hold the feature, baseline features
left out. Empty when the baseline view was not built.
"""

import numpy as np
import pandas as pd


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


def model(dbt, session):
    dbt.config(materialized="table")
    ranks = dbt.ref("int_feature_ranks_computed")
    empty = pd.DataFrame({"view_name": pd.Series(dtype="str"), "feature": pd.Series(dtype="str"),
                          "date": pd.Series(dtype="datetime64[us]"), "symbol": pd.Series(dtype="str"),
                          "resid": pd.Series(dtype="float64")})
    if not ranks.aggregate("count(*)").fetchall()[0][0]:
        return empty
    dates, symbols, views, features, cube = feature_cube(ranks)
    is_base = views == dbt.config.get("baseline_view")
    if not is_base.any() or is_base.all():
        return empty
    resid = neutralize(cube, is_base)
    d, s, f = np.nonzero(np.isfinite(resid))
    return pd.DataFrame({
        "view_name": pd.Categorical(views[~is_base][f]),
        "feature": pd.Categorical(features[~is_base][f]),
        "date": dates[d],
        "symbol": pd.Categorical(symbols[s]),
        "resid": resid[d, s, f],
    })
