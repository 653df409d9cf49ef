"""Overview: headline metrics of the latest run against the targets, the data, stage timings."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app import data, ui
from app.targets import FAIL, PASS, TARGETS, evaluate, fmt, is_number, recovery_share

st.title("Overview")
st.caption("Headline metrics of the latest run (`aurora report`) against the project's targets.")

paths = data.data_paths()
report, report_error = data.load_report(paths)
if report_error:
    st.warning(f"The saved report could not be read ({report_error}); showing what is known.")
report = dict(report or {})

# n_model_families from the registry when the report does not have it yet
read = data.read(["model_registry", "run_log"], paths)
ui.read_notice(read)
registry = read.get("model_registry")
derived: set[str] = set()
if not is_number(report.get("n_model_families")) and registry is not None and "family" in registry:
    live = registry[registry["status"].astype(str) != "retired"] if "status" in registry else registry
    if len(live):
        report["n_model_families"] = int(live["family"].nunique())
        derived.add("n_model_families")

rows = evaluate(report)
n_pass = sum(r["status"] == PASS for r in rows)
n_fail = sum(r["status"] == FAIL for r in rows)
n_known = n_pass + n_fail

st.subheader("Headline metrics vs targets")
if n_known == 0:
    ui.not_available("Headline metrics")
else:
    st.markdown(f"**{n_pass} of {len(rows)} targets met**" + (f" · {n_fail} missed" if n_fail else "")
                + (f" · {len(rows) - n_known} not measured yet" if n_known < len(rows) else ""))

targets = {t.key: t for t in TARGETS}
for start in range(0, len(rows), 3):
    cols = st.columns(3)
    for col, row in zip(cols, rows[start:start + 3], strict=False):
        with col.container(border=True):
            t = targets[row["key"]]
            note = " (from the registry)" if row["key"] in derived else ""
            st.metric(row["metric"], row["shown"], help=f"`{row['key']}`{note}; target {t.describe}")
            badge, caption = st.columns([1, 2], vertical_alignment="center")
            with badge:
                ui.status_badge(row["status"])
            caption.caption(f"target {t.describe}")

st.subheader("Signal recovery")
recovery = recovery_share(report)
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Oracle rank IC", fmt(report.get("oracle_rank_ic")),
          help="Rank IC of the generator's true expected returns (synthetic market only)")
c2.metric("Recovery share", fmt(recovery, "pct"), help="oos_rank_ic / oracle_rank_ic")
c3.metric("Best single model rank IC", fmt(report.get("best_single_model_rank_ic")),
          help="The single model picked walk-forward: at each date, the one with the best trailing ICIR "
               "known then (`best_single_model_rank_ic`); what the ensemble has to beat")
c4.metric("ICIR", fmt(report.get("icir")))
c5.metric("Sharpe (gross)", fmt(report.get("sharpe_gross")))
if report.get("oracle_rank_ic") is None:
    st.caption("The oracle exists for the synthetic market only; ingested data has no recovery share.")
if is_number(report.get("best_single_model_rank_ic_hindsight")):
    st.caption(f"Best single model picked walk-forward. Diagnostic only: picked with hindsight (best "
               f"whole-history rank IC), `{report.get('best_single_model_hindsight') or '?'}` has rank IC "
               f"{fmt(report['best_single_model_rank_ic_hindsight'])}, which no one could have traded.")

left, right = st.columns(2)
with left:
    st.subheader("Data")
    desc = report.get("data") or {}
    if not desc or not desc.get("symbols"):
        ui.not_available("Raw data", "run `aurora generate` or `aurora ingest`, then `aurora run`")
    else:
        d1, d2, d3 = st.columns(3)
        d1.metric("Symbols", f"{desc.get('symbols'):,}")
        d2.metric("Days", f"{desc.get('days'):,}")
        d3.metric("Source", str(desc.get("source") or "—"))
        st.markdown(f"**Dates** {desc.get('start')} → {desc.get('end')}")
        if desc.get("tables"):
            st.markdown("**Raw tables** " + ", ".join(f"`{t}`" for t in desc["tables"]))
        views = report.get("feature_views")
        if views:
            st.markdown("**Feature views** " + ", ".join(f"`{v}`" for v in views))
        skipped = report.get("feature_views_skipped") or {}
        for view, missing in skipped.items():
            st.caption(f"view `{view}` skipped (missing {', '.join(map(str, missing))})")
        extra = {label: report.get(key) for key, label in (
            ("n_models_active", "active models"), ("n_models_retired", "retired models"),
            ("share_models_live", "share of the zoo live"), ("n_retirements", "retirements (every generation)"),
            ("n_models_requalified", "successors re-qualified"),
            ("ensemble_method", "ensemble"), ("ensemble_version", "ensemble version"),
            ("backtest_start", "backtest from"), ("backtest_end", "backtest to"),
        ) if report.get(key) is not None}
        if extra:
            st.markdown(" · ".join(f"{label}: **{value}**" for label, value in extra.items()))

with right:
    st.subheader("Stage timings")
    timings = report.get("timings_s") or {}
    stages = {k: float(v) for k, v in timings.items() if is_number(v)}
    if not stages:
        ui.not_available("Stage timings")
    else:
        total = stages.pop("total", None)
        frame = pd.DataFrame({"stage": list(stages), "seconds": list(stages.values())})
        chart = alt.Chart(frame).mark_bar().encode(
            x=alt.X("seconds:Q", title="seconds"),
            y=alt.Y("stage:N", sort="-x", title=None),
            tooltip=["stage", alt.Tooltip("seconds:Q", format=".1f")],
        ).properties(height=ui.bar_height(len(frame)))
        ui.show_chart(chart)
        if total is not None:
            st.caption(f"total {total:.1f} s (stages above run in sequence; the total includes overheads)")

run_log = read.get("run_log")
if run_log is not None and len(run_log):
    st.subheader("Recent runs")
    order = ui.first_present(run_log, ("started_at", "run_at", "finished_at", "date", "created_at"))
    shown = run_log.sort_values(order, ascending=False) if order else run_log
    ui.table(shown.head(20))

with st.expander("All report keys"):
    st.json({k: v for k, v in report.items() if k != "data"}, expanded=False)
