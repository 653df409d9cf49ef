"""Models: the registry, status, monthly rolling IC per model, ensemble weights over time, events."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

from app import data, ui

st.title("Models")
st.caption("The model zoo as registered in `ml.model_registry`, with out-of-sample IC per month.")

paths = data.data_paths()
read = data.read(["model_registry", "model_status_runs", "model_events", "model_metrics_monthly",
                  "monitoring_model_ic_monthly", "ensemble_weights"], paths)
ui.read_notice(read)
registry = read.get("model_registry")


def _metrics_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric scalars of the JSON `metrics` column as columns."""
    if "metrics" not in frame:
        return pd.DataFrame(index=frame.index)
    parsed = []
    for value in frame["metrics"]:
        try:
            doc = json.loads(value) if isinstance(value, str) else (value or {})
        except ValueError:
            doc = {}
        parsed.append({k: v for k, v in (doc.items() if isinstance(doc, dict) else [])
                       if isinstance(v, int | float) and not isinstance(v, bool)})
    return pd.DataFrame(parsed, index=frame.index)


# ------------------------------------------------------------------------------------------ registry
st.subheader("Registry")
if registry is None or registry.empty:
    ui.not_available("The model registry")
else:
    status = registry["status"].astype(str) if "status" in registry else pd.Series("?", index=registry.index)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Models", len(registry))
    c2.metric("Active", int((status == "active").sum()))
    c3.metric("Candidates", int((status == "candidate").sum()))
    c4.metric("Retired", int((status == "retired").sum()))
    c5.metric("Families", int(registry["family"].nunique()) if "family" in registry else 0)

    statuses = sorted(status.unique())
    chosen = st.multiselect("Status", statuses, default=statuses, key="models_status")
    metrics = _metrics_columns(registry)
    lead = [c for c in ("model_id", "family", "view", "status") if c in registry]
    tail = [c for c in ("train_start", "train_end", "oos_start", "oos_end", "created_at", "updated_at", "note")
            if c in registry]
    table = pd.concat([registry[lead], metrics, registry[tail]], axis=1)[status.isin(chosen)]
    sort_by = next((c for c in ("rank_ic", "oos_rank_ic", "ic") if c in table), None)
    if sort_by:
        table = table.sort_values(sort_by, ascending=False)
    ui.table(table,
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in metrics.columns})
    if "family" in registry:
        by = registry.assign(status=status).groupby(["family", "status"]).size().rename("models").reset_index()
        chart = alt.Chart(by).mark_bar().encode(
            x=alt.X("models:Q", title="models", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("family:N", title=None),
            color=alt.Color("status:N", scale=alt.Scale(domain=["active", "candidate", "retired"],
                                                        range=["#2e7d32", "#1f77b4", "#9e9e9e"])),
            tooltip=["family", "status", "models"],
        ).properties(height=ui.bar_height(by["family"].nunique()))
        ui.show_chart(chart)

runs = read.get("model_status_runs")
if runs is not None and len(runs):
    n_models = runs["model_id"].nunique()
    runs = runs.assign(start=pd.to_datetime(runs["start"]), end=pd.to_datetime(runs["end"]))
    with st.expander(f"Status over time ({n_models} models, `ml.model_status_daily`)", expanded=n_models <= 15):
        ui.show_chart(alt.Chart(runs).mark_bar(height=14).encode(
            x=alt.X("start:T", title=None), x2="end:T", y=alt.Y("model_id:N", title=None),
            color=alt.Color("status:N", scale=alt.Scale(domain=["candidate", "active", "promoted", "retired"],
                                                        range=["#1f77b4", "#2e7d32", "#ff9800", "#9e9e9e"])),
            tooltip=["model_id", "status", alt.Tooltip("start:T"), alt.Tooltip("end:T"), "days"],
        ).properties(height=ui.bar_height(n_models, per_bar=24)))

lineage = data.read(["model_lineage"], paths).get("model_lineage")
if lineage is not None and len(lineage):
    retired = lineage[lineage["status"] == "retired"]
    succ = lineage[lineage["generation"] > 1]
    with st.expander(f"Lineage: {len(retired)} retirements, {len(succ)} retrained successors "
                     "(`ml.model_lineage`)", expanded=False):
        st.caption("A retired model stays retired; its (family, view) spec is suspended and its successor, "
                   "retrained on data after the retirement, re-enters as a candidate that must re-qualify on "
                   "fresh out-of-sample evidence. Each row is one generation, with the rule and the reason.")
        if len(retired):
            by_rule = retired.groupby("rule").size().rename("retirements").reset_index()
            ui.table(by_rule)
        ui.table(lineage.sort_values(["model_id", "generation"]))

# ------------------------------------------------------------------------------------------ rolling IC
st.subheader("Rolling IC (monthly rank IC per model)")
monthly, source = None, None
for name, label in (("model_metrics_monthly", "ml.model_metrics_monthly"),
                    ("monitoring_model_ic_monthly", "the dbt mart monitoring_model_ic_monthly")):
    frame = read.get(name)
    if frame is None or frame.empty:
        continue
    month_col = ui.first_present(frame, ("month", "date", "period"))
    ic_col = ui.first_present(frame, ("rank_ic", "ic_rank", "ic", "ic_mean"))
    model_col = ui.first_present(frame, ("model_id", "model"))
    if month_col and ic_col and model_col:
        monthly = frame.rename(columns={month_col: "month", ic_col: "rank_ic", model_col: "model_id"})[
            ["month", "model_id", "rank_ic"]].dropna(subset=["rank_ic"])
        source = label
        break
if monthly is None:
    ic_read = data.read(["rolling_ic"], paths)
    monthly = ic_read.get("rolling_ic")
    source = f"computed from ml.predictions and features/labels.parquet ({data.label_column(paths)})"
if monthly is None or monthly.empty:
    ui.not_available("Monthly IC (needs `ml.predictions` and `features/labels.parquet`)")
else:
    monthly = monthly.assign(month=pd.to_datetime(monthly["month"]))
    ranking = monthly.groupby("model_id")["rank_ic"].mean().sort_values(ascending=False)
    models = list(ranking.index)
    default = models if len(models) <= 10 else models[:10]
    pick, smooth = st.columns([4, 1])
    picked = pick.multiselect("Models", models, default=default, key="models_ic_models")
    window = smooth.selectbox("Smoothing", (1, 3, 6, 12), index=1, key="models_ic_window",
                              format_func=lambda m: "monthly" if m == 1 else f"{m}-month mean")
    shown = monthly[monthly["model_id"].isin(picked)].sort_values("month")
    if window > 1:
        shown = shown.assign(rank_ic=shown.groupby("model_id")["rank_ic"].transform(
            lambda s: s.rolling(window, min_periods=1).mean()))
    if not shown.empty:
        ui.show_chart(ui.line(shown, "month", "rank_ic", "model_id", y_title="rank IC", y_format=".3f",
                              rule=0.0, height=340))
    st.caption(f"Source: {source}. Dashed line: zero.")
    summary = monthly.groupby("model_id").agg(mean_rank_ic=("rank_ic", "mean"), months=("rank_ic", "size"))
    last = monthly[monthly["month"] > monthly["month"].max() - pd.DateOffset(months=12)]
    summary["last_12m_rank_ic"] = last.groupby("model_id")["rank_ic"].mean()
    summary["share_months_positive"] = (monthly.assign(pos=monthly["rank_ic"] > 0)
                                        .groupby("model_id")["pos"].mean())
    ui.table(summary.sort_values("mean_rank_ic", ascending=False).reset_index(),
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in ("mean_rank_ic", "last_12m_rank_ic")}
                 | {"share_months_positive": st.column_config.NumberColumn(format="percent")})

# ------------------------------------------------------------------------------------------ ensemble
st.subheader("Ensemble weights over time")
weights = read.get("ensemble_weights")
if weights is None or weights.empty:
    ui.not_available("Ensemble weights (`ml.ensemble_weights`)")
else:
    date_col = ui.first_present(weights, ("date", "as_of", "refit_date", "month", "period_start"))
    model_col = ui.first_present(weights, ("model_id", "model"))
    weight_col = ui.first_present(weights, ("weight", "w"))
    if date_col and model_col and weight_col:
        long = weights.rename(columns={date_col: "date", model_col: "model_id", weight_col: "weight"})
    elif date_col:  # wide: one column per model
        value_cols = [c for c in weights.columns if c != date_col and pd.api.types.is_numeric_dtype(weights[c])]
        long = weights.melt(id_vars=[date_col], value_vars=value_cols, var_name="model_id",
                            value_name="weight").rename(columns={date_col: "date"})
    else:
        long = None
    if long is None or long.empty:
        ui.table(weights)
    else:
        if "method" in long and long["method"].nunique() > 1:
            methods = sorted(long["method"].astype(str).unique())
            chosen = long.loc[long["chosen"].astype(bool), "method"] if "chosen" in long else long["method"].iloc[:0]
            method = st.selectbox("Ensemble method", methods, key="models_weight_method",
                                  index=methods.index(str(chosen.iloc[0])) if len(chosen) else 0,
                                  help="The configured method (the one traded) is selected first.")
            long = long[long["method"].astype(str) == method]
        long = (long.assign(date=pd.to_datetime(long["date"]))
                .groupby(["date", "model_id"], as_index=False)["weight"].sum())
        chart = alt.Chart(long).mark_area().encode(
            x=alt.X("date:T", title=None), y=alt.Y("weight:Q", stack="zero", title="weight"),
            color=alt.Color("model_id:N", title="model"),
            tooltip=[alt.Tooltip("date:T"), "model_id", alt.Tooltip("weight:Q", format=".3f")],
        ).properties(height=320)
        ui.show_chart(chart)
        latest = long[long["date"] == long["date"].max()].sort_values("weight", ascending=False)
        st.caption(f"Latest weights ({latest['date'].max():%Y-%m-%d})")
        ui.table(latest[["model_id", "weight"]],
                     column_config={"weight": st.column_config.NumberColumn(format="%.3f")})

# ------------------------------------------------------------------------------------------ events
st.subheader("Lifecycle events")
events = read.get("model_events")
if events is None or events.empty:
    ui.not_available("Model events (`ml.model_events`: promotions, retirements)")
else:
    ui.table(events)
