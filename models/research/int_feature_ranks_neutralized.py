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

from ml.data.research_math import feature_cube, neutralize


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
    view_codes, view_names = pd.factorize(views[~is_base])
    feature_codes, feature_names = pd.factorize(features[~is_base])
    return pd.DataFrame({
        "view_name": pd.Categorical.from_codes(view_codes[f], categories=view_names),
        "feature": pd.Categorical.from_codes(feature_codes[f], categories=feature_names),
        "date": dates[d],
        "symbol": pd.Categorical.from_codes(s, categories=symbols),
        "resid": resid[d, s, f],
    })
