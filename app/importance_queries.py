"""The app's named queries over `ml.feature_importance` (ml/importance.py: the drop in a refit model's
mean daily rank IC when one feature is shuffled within each date), for the Feature importance page.
Registered in app.data's QUERIES on import; every query reads None when the table is absent (a
warehouse trained before the table existed)."""

from __future__ import annotations

import pandas as pd

from app.data import Ctx, query

TABLE = "feature_importance"


@query("importance_models")
def _importance_models(ctx: Ctx) -> pd.DataFrame | None:
    """One row per model with importances: family, view, refits measured, first and last refit."""
    found = ctx.find(TABLE)
    if found is None:
        return None
    return ctx.df(f'select model_id, family, "view", count(distinct refit_date) as refits, '
                  f"count(distinct feature) as features, min(refit_date) as first_refit, "
                  f"max(refit_date) as last_refit, any_value(method) as method from {found} "
                  f'group by model_id, family, "view" order by "view", family, model_id')


@query("importance_model")
def _importance_model(ctx: Ctx) -> pd.DataFrame | None:
    """Every (refit, feature) row of one model (`params['model_id']`)."""
    found = ctx.find(TABLE)
    if found is None:
        return None
    return ctx.df(f"select refit_date, feature, importance, baseline_ic, window_start, window_end from {found} "
                  "where model_id = ? order by refit_date, feature", [ctx.params.get("model_id")])


@query("importance_view")
def _importance_view(ctx: Ctx) -> pd.DataFrame | None:
    """One view's (`params['view']`) importances averaged over its models per quarter and feature
    (families refit on different cadences, so their refit dates meet in the quarter)."""
    found = ctx.find(TABLE)
    if found is None:
        return None
    return ctx.df(f"select date_trunc('quarter', refit_date)::date as quarter, feature, "
                  f"avg(importance) as importance, count(distinct model_id) as models from {found} "
                  'where "view" = ? group by 1, 2 order by 1, 2', [ctx.params.get("view")])
