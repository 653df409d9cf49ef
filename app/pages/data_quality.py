"""Data quality: dbt test results, Great Expectations results, freshness, feature drift."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app import data, ui

st.title("Data quality")
st.caption("The gates of the feature build (dbt tests, Great Expectations) and how fresh each layer is.")

paths = data.data_paths()
read = data.read(["gx_runs", "gx_latest", "quarantine", "latest_dates", "feature_drift"], paths)
ui.read_notice(read)

# ------------------------------------------------------------------------------------------ dbt
st.subheader("dbt tests")
nodes, meta = data.dbt_run_results(paths)
if meta.get("error"):
    st.warning(meta["error"])
if nodes is None:
    ui.not_available("dbt run results (`dbt/target/run_results.json`)", "run `aurora build-features`")
else:
    tests = nodes[nodes["kind"].isin(["data test", "unit test"])]
    models = nodes[nodes["kind"] == "model"]
    bad = tests[~tests["status"].isin(["pass", "success"])]
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Tests", len(tests))
    c2.metric("Passed", int(tests["status"].isin(["pass", "success"]).sum()))
    c3.metric("Failed / errored", int(tests["status"].isin(["fail", "error", "runtime error"]).sum()))
    c4.metric("Warned", int((tests["status"] == "warn").sum()))
    c5.metric("Models built", int((models["status"] == "success").sum()))
    when = meta.get("generated_at")
    st.caption(f"From `{meta.get('path')}`" + (f", generated {when}" if when else "")
               + (f", {meta['elapsed_time']:.1f} s" if isinstance(meta.get("elapsed_time"), int | float) else ""))
    if len(bad):
        st.markdown("**Tests that did not pass**")
        ui.table(bad.drop(columns=["unique_id"]))
    elif len(tests):
        st.success(f"All {len(tests)} dbt tests passed.", icon=":material/check_circle:")
    with st.expander("All dbt nodes"):
        ui.table(nodes,
                     column_config={"seconds": st.column_config.NumberColumn(format="%.2f")})

# ------------------------------------------------------------------------------------------ GX
st.subheader("Great Expectations")
runs, latest = read.get("gx_runs"), read.get("gx_latest")
if runs is None or runs.empty:
    ui.not_available("Great Expectations results (`quality.gx_results`)", "run `aurora build-features`")
else:
    last = runs.iloc[0]
    quarantined_checks = int(last.get("failed_quarantine", 0) or 0)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Expectations (latest run)", int(last["expectations"]))
    c2.metric("Failed critical", int(last["failed_critical"]))
    c3.metric("Failed quarantine", quarantined_checks)
    c4.metric("Failed warnings", int(last["failed"] - last["failed_critical"]) - quarantined_checks)
    c5.metric("Frames checked", int(last["views"]))
    st.caption(f"Run `{last['run_id']}` at {last['run_at']}; {len(runs)} run(s) recorded.")
    if latest is not None and len(latest):
        per_view = latest.groupby("view").agg(
            expectations=("success", "size"),
            failed=("success", lambda s: int((~s.astype(bool)).sum())),
            rules=("rule", "nunique"),
        ).reset_index()
        left, right = st.columns([2, 3])
        with left:
            ui.table(per_view)
        with right:
            failed = latest[~latest["success"].astype(bool)]
            if failed.empty:
                st.success("Every expectation of the latest run passed.", icon=":material/check_circle:")
            else:
                st.markdown("**Failed expectations**")
                ui.table(failed[[c for c in ("view", "rule", "severity", "column_name", "observed_value")
                                     if c in failed]])
        with st.expander("All expectations of the latest run"):
            ui.table(latest)
    if len(runs) > 1:
        with st.expander("Run history"):
            ui.table(runs)

# ------------------------------------------------------------------------------------------ quarantine
st.subheader("Quarantined features")
st.caption("Feature columns that failed a non-structural check of the latest accepted build (a shift against "
           "the reference profile of this data directory): left out of training and serving until their data "
           "returns to normal. Structural failures stop the build instead.")
held = read.get("quarantine")
if held is None:
    ui.not_available("Quarantine (`quality.quarantine`)", "run `aurora build-features`")
elif held.empty:
    st.success("No feature column is quarantined.", icon=":material/check_circle:")
else:
    st.metric("Quarantined columns", int(held[["view", "column_name"]].drop_duplicates().shape[0]))
    ui.table(held)

# ------------------------------------------------------------------------------------------ freshness
st.subheader("Freshness")
facts = data.file_facts(paths)
latest_price = facts.get("latest_price_date")
if latest_price is None:
    ui.not_available("Raw prices", "run `aurora generate` or `aurora ingest`")
else:
    latest_price = pd.Timestamp(latest_price)
    rows = [{"layer": "raw", "table": "raw/prices.parquet", "latest_date": latest_price,
             "rows": facts.get("price_rows")}]
    for name, (last_date, n) in facts.get("features", {}).items():
        rows.append({"layer": "features", "table": f"features/{name}.parquet",
                     "latest_date": pd.Timestamp(last_date) if last_date is not None else pd.NaT, "rows": n})
    dates = read.get("latest_dates")
    if dates is not None:
        for r in dates.itertuples():
            rows.append({"layer": "warehouse", "table": r.table,
                         "latest_date": pd.Timestamp(r.latest_date) if r.latest_date is not None else pd.NaT,
                         "rows": r.rows})
    fresh = pd.DataFrame(rows)

    def _lag(d: pd.Timestamp) -> float:
        if pd.isna(d):
            return np.nan
        lo, hi = sorted((d.date(), latest_price.date()))
        return float(np.busday_count(lo, hi)) * (1 if d <= latest_price else -1)

    fresh["business_days_behind"] = fresh["latest_date"].map(_lag)
    fresh["status"] = np.where(fresh["business_days_behind"].isna(), "empty",
                               np.where(fresh["business_days_behind"] <= 0, "fresh", "stale"))
    features = fresh[fresh["layer"] == "features"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Latest raw price date", f"{latest_price:%Y-%m-%d}")
    if len(features):
        last_feature = features["latest_date"].max()
        c2.metric("Latest feature date", f"{last_feature:%Y-%m-%d}" if pd.notna(last_feature) else "—")
        c3.metric("Stale feature files", int((features["status"] != "fresh").sum()))
    else:
        c2.metric("Latest feature date", "—")
        ui.not_available("Feature marts (`features/*.parquet`)", "run `aurora build-features`")
    ui.table(fresh.assign(latest_date=fresh["latest_date"].dt.date), fit=True,
                 column_config={"rows": st.column_config.NumberColumn(format="%d"),
                                "business_days_behind": st.column_config.NumberColumn(format="%d")})
    st.caption("A layer is fresh when its latest date is the latest raw price date (labels end there too: "
               "their forward returns are null at the end).")

# ------------------------------------------------------------------------------------------ drift
st.subheader("Feature drift")
drift = read.get("feature_drift")
if drift is None or drift.empty:
    ui.not_available("Feature drift (`ml.feature_drift`)")
else:
    feature_col = ui.first_present(drift, ("feature", "column_name", "column", "name"))
    stat_col = ui.first_present(drift, ("psi", "drift_score", "score", "ks_stat", "ks", "statistic", "distance"))
    date_col = ui.first_present(drift, ("date", "as_of", "month", "window_end", "run_at"))
    view = drift
    if date_col:
        last = view[date_col].max()
        view = view[view[date_col] == last]
        st.caption(f"Latest drift measurement: {ui.tidy(view[[date_col]]).iloc[0, 0]}")
    if feature_col and stat_col and pd.api.types.is_numeric_dtype(view[stat_col]):
        top = view.nlargest(20, stat_col)
        label = top[feature_col].astype(str)
        if "view" in top:
            label = top["view"].astype(str) + "." + label
        top = top.assign(feature_label=label)
        ui.show_chart(alt.Chart(top).mark_bar().encode(
            x=alt.X(f"{stat_col}:Q", title=stat_col), y=alt.Y("feature_label:N", sort="-x", title=None),
            tooltip=["feature_label", alt.Tooltip(f"{stat_col}:Q", format=".3f")],
        ).properties(height=ui.bar_height(len(top))))
    ui.table(drift)
