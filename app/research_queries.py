"""The app's named queries over the feature research marts (schema `research`, models/research/,
built by `aurora build-features`) and the drift of one view's features, for the Features page.
Registered in app.data's QUERIES on import (app.data imports this module at its end)."""

from __future__ import annotations

import pandas as pd

from app.data import Ctx, query

RESEARCH = "research"  # the schema of the feature research marts (models/research/, `aurora build-features`)


def _research(ctx: Ctx, mart: str, where: str = "", params: list | None = None,
              order: str = "") -> pd.DataFrame | None:
    """`research.<mart>` (None when the research marts are absent), optionally filtered and ordered."""
    found = f"{RESEARCH}.{mart}"
    if not ctx.has(found):
        return None
    return ctx.df(f"select * from {found}" + (f" where {where}" if where else "")
                  + (f" order by {order}" if order else ""), params)


@query("research_view_summary")
def _research_view_summary(ctx: Ctx) -> pd.DataFrame | None:
    """`research.research_view_summary`: one row per feature view."""
    return _research(ctx, "research_view_summary", order="view_name")


@query("research_feature_summary")
def _research_feature_summary(ctx: Ctx) -> pd.DataFrame | None:
    """`research.research_feature_summary`: one row per (view, feature, label), every label."""
    return _research(ctx, "research_feature_summary", order="view_name, feature, label")


@query("research_feature_orthogonality")
def _research_feature_orthogonality(ctx: Ctx) -> pd.DataFrame | None:
    """`research.research_feature_orthogonality`: raw and baseline-neutralized IC, primary label."""
    return _research(ctx, "research_feature_orthogonality", order="view_name, feature")


@query("research_view_daily")
def _research_view_daily(ctx: Ctx) -> pd.DataFrame | None:
    """`research.research_feature_daily` of one view (`params['view']`): every feature and research date."""
    return _research(ctx, "research_feature_daily", "view_name = ?", [ctx.params.get("view")],
                     order="feature, date")


@query("research_view_stability")
def _research_view_stability(ctx: Ctx) -> pd.DataFrame | None:
    """`research.research_feature_stability` of one view (`params['view']`): IC by year and vol state."""
    return _research(ctx, "research_feature_stability", "view_name = ?", [ctx.params.get("view")],
                     order="feature, label, split, period")


@query("research_view_correlation")
def _research_view_correlation(ctx: Ctx) -> pd.DataFrame | None:
    """`research.research_feature_correlation` rows of one view's features (`params['view']`) with every
    feature of every view (both orders are stored, so view_a = the view covers all of its pairs)."""
    return _research(ctx, "research_feature_correlation", "view_a = ?", [ctx.params.get("view")])


@query("view_feature_drift")
def _view_feature_drift(ctx: Ctx) -> pd.DataFrame | None:
    """`ml.feature_drift` rows of one view (`params['view']`; every row when the table has no view column)."""
    found = ctx.find("feature_drift")
    if found is None:
        return None
    if "view" in ctx.columns(found):
        return ctx.df(f'select * from {found} where "view" = ? limit 100000', [ctx.params.get("view")])
    return ctx.df(f"select * from {found} limit 100000")
