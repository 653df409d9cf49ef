"""How persistent each feature's ranks are from one research date to the next: the rank autocorrelation
and the decile turnover behind `turnover` and the net spread (ml.data.research_math.rank_persistence:
a few array operations over every feature and date at once, not a 40M-row self-join in SQL).
Output: view_name, feature, date, rank_autocorr, top_turnover, bottom_turnover."""

import numpy as np
import pandas as pd

from ml.data.research_math import feature_cube, rank_persistence


def model(dbt, session):
    dbt.config(materialized="table")
    ranks = dbt.ref("int_feature_ranks_computed")
    columns = {"view_name": pd.Series(dtype="str"), "feature": pd.Series(dtype="str"),
               "date": pd.Series(dtype="datetime64[s]")}
    empty = pd.DataFrame(columns | {c: pd.Series(dtype="float64")
                                    for c in ("rank_autocorr", "top_turnover", "bottom_turnover")})
    if not ranks.aggregate("count(*)").fetchall()[0][0]:
        return empty
    dates, _, views, features, cube = feature_cube(ranks)
    autocorr, top, bottom = rank_persistence(cube)
    d, f = np.indices(autocorr.shape).reshape(2, -1)
    return pd.DataFrame({
        "view_name": views[f], "feature": features[f], "date": dates[d],
        "rank_autocorr": autocorr[d, f], "top_turnover": top[d, f], "bottom_turnover": bottom[d, f],
    })
