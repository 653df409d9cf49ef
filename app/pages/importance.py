"""Feature importance over time: per model, the importance of its top features at every walk-forward
refit, and per view the average over that view's models (`ml.feature_importance`, ml/importance.py)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app import data, ui
from app import importance_queries as _queries  # noqa: F401 - registers the importance_* queries

DIVERGING = alt.Scale(scheme="redblue", domainMid=0)

st.title("Feature importance")
st.caption("At each walk-forward refit, how much the refit model's mean daily rank IC drops when one feature "
           "is shuffled within each date (the same definition for every family), measured on the last dates "
           "of its training window: known on the refit date, never from the test period. It says what a "
           "model relies on; the Models page says how well that held out of sample.")

paths = data.data_paths()
read = data.read(["importance_models"], paths)
ui.read_notice(read)
models = read.get("importance_models")
if models is None or models.empty:
    ui.not_available("Feature importance per refit (`ml.feature_importance`, written when the zoo is registered)")
    st.stop()

# ------------------------------------------------------------------------------------------ one model
st.subheader("One model across its refits")
ids = models["model_id"].astype(str).tolist()
pick, top = st.columns([4, 1])
model_id = pick.selectbox("Model", ids, key="importance_model",
                          format_func=lambda m: f"{m}  ({int(models.set_index('model_id').at[m, 'refits'])} refits)")
n_top = int(top.number_input("Top features", min_value=1, max_value=40, value=8, step=1, key="importance_top"))
chosen = models[models["model_id"] == model_id].iloc[0]
rows = data.read(["importance_model"], paths, model_id=model_id).get("importance_model")
if rows is None or rows.empty:
    ui.not_available(f"Importances of {model_id}")
else:
    rows = rows.assign(refit_date=pd.to_datetime(rows["refit_date"]))
    ranking = rows.groupby("feature")["importance"].mean().sort_values(ascending=False)
    shown = rows[rows["feature"].isin(ranking.index[:n_top])]
    st.caption(f"{chosen['family']} on {chosen['view']}: {int(chosen['refits'])} refits measured, "
               f"{int(chosen['features'])} features; the {min(n_top, len(ranking))} with the highest mean "
               "importance. Dashed line: zero (no reliance).")
    ui.show_chart(ui.line(shown, "refit_date", "importance", "feature", y_title="rank IC drop",
                          y_format=".3f", rule=0.0, height=340))
    last = rows[rows["refit_date"] == rows["refit_date"].max()]
    latest = (last.sort_values("importance", ascending=False)
              .assign(mean_importance=lambda f: f["feature"].map(ranking)))
    st.caption(f"Latest refit ({rows['refit_date'].max():%Y-%m-%d}): the model's rank IC on the measured window "
               f"was {float(last['baseline_ic'].iloc[0]):.4f}.")
    ui.table(latest[["feature", "importance", "mean_importance"]], column_config={
        c: st.column_config.NumberColumn(format="%.4f") for c in ("importance", "mean_importance")})

# ------------------------------------------------------------------------------------------ per view
st.subheader("Per view: the average over its models")
views = sorted(models["view"].astype(str).unique())
view = st.selectbox("View", views, index=views.index(str(chosen["view"])), key="importance_view")
per_view = data.read(["importance_view"], paths, view=view).get("importance_view")
if per_view is None or per_view.empty:
    ui.not_available(f"Importances of the models on {view}")
else:
    per_view = per_view.assign(quarter=pd.to_datetime(per_view["quarter"]))
    order = per_view.groupby("feature")["importance"].mean().sort_values(ascending=False)
    heat = per_view[per_view["feature"].isin(order.index[:n_top])]
    n_models = int(models.loc[models["view"] == view, "model_id"].nunique())
    st.caption(f"Mean over the {n_models} models on {view} of each quarter's refits (families refit on "
               f"different cadences), the {min(n_top, len(order))} features with the highest mean.")
    chart = alt.Chart(heat).mark_rect().encode(
        x=alt.X("quarter:T", title=None, timeUnit="yearquarter"),
        y=alt.Y("feature:N", title=None, sort=list(order.index[:n_top])),
        color=alt.Color("importance:Q", scale=DIVERGING, title="rank IC drop"),
        tooltip=[alt.Tooltip("quarter:T", timeUnit="yearquarter"), "feature",
                 alt.Tooltip("importance:Q", format=".4f"), "models"],
    ).properties(height=ui.bar_height(min(n_top, len(order)), per_bar=26))
    ui.show_chart(chart)
    ui.table(order.rename("mean_importance").reset_index().head(max(n_top, 20)),
             column_config={"mean_importance": st.column_config.NumberColumn(format="%.4f")})
