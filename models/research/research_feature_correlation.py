"""Rank correlation between every pair of features, within and across views.

For each research date, the correlation of two features' cross-sectional ranks over the names holding
both (pairwise complete), averaged over the dates where at least 10 names hold both. Four matrix
products per date (counts, sums, squares and cross-products over the pairwise-present names), not a
loop over pairs. Both orders of each pair are stored, so "what does feature F correlate with" is one
filter; same_view marks pairs inside one view.
"""

import numpy as np
import pandas as pd

from ml.data.research_math import feature_cube, mean_pairwise_corr


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
