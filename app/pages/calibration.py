"""Calibration: reliability diagram (expected-return decile: mean predicted vs mean realized), the
coverage of the 80% prediction intervals and the reliability curve and Brier score of `prob_up` (the
probability of beating the sector), from `ml.signals` joined with `features/labels.parquet`."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app import data, ui
from app.targets import TARGETS, fmt

st.title("Calibration")
st.caption("Do the expected returns mean what they say? Signals against the realized forward return "
           "they predict (5 days, sector-neutral).")

paths = data.data_paths()
read = data.read(["signals_summary", "reliability", "coverage_monthly", "prob_reliability", "ensemble_comparison",
                  "track_record"], paths)
ui.read_notice(read)
summary = read.get("signals_summary")
report, _ = data.load_report(paths)
report = report or {}
targets = {t.key: t for t in TARGETS}

if summary is None or summary.empty or not int(summary["n_rows"].iloc[0]):
    ui.not_available("Signals (`ml.signals`)")
    st.stop()

label = data.label_column(paths)
s = summary.iloc[0]
unit = "bps" if (s["median_width"] is None or pd.isna(s["median_width"]) or s["median_width"] >= 0.5) else "return"
c1, c2, c3, c4 = st.columns(4)
c1.metric("Signal rows", f"{int(s['n_rows']):,}")
c2.metric("Days", f"{int(s['n_days']):,}")
c3.metric("Symbols", f"{int(s['n_symbols']):,}")
c4.metric("Last signal date", str(pd.Timestamp(s["last_date"]).date()) if s["last_date"] is not None else "—")

reliability = read.get("reliability")
coverage = read.get("coverage_monthly")
if label is None:
    ui.not_available("Realized returns (`features/labels.parquet`)", "run `aurora build-features`")
    st.stop()

# ------------------------------------------------------------------------------------------ headline
computed_error = computed_cov = None
if reliability is not None and len(reliability) >= 2:
    spread = float(reliability["realized"].iloc[-1] - reliability["realized"].iloc[0])
    err = float(np.average((reliability["predicted"] - reliability["realized"]).abs(), weights=reliability["n"]))
    computed_error = err / spread if spread > 0 else None
if coverage is not None and len(coverage):
    computed_cov = float(np.average(coverage["coverage"], weights=coverage["n"]))

st.subheader("Against the targets")
for col, key, computed in zip(st.columns(2), ("calibration_error", "coverage_80"), (computed_error, computed_cov),
                              strict=True):
    t = targets[key]
    with col.container(border=True):
        st.markdown(f"**{t.label}** · target {t.describe}")
        left, right = st.columns(2)
        for where, value, note in ((left, report.get(key), "`aurora report`"),
                                   (right, computed, f"recomputed here vs `{label}`")):
            with where:
                st.metric("Report" if where is left else "This page", fmt(value, t.kind), help=note)
                ui.status_badge(t.check(value))
st.caption("The report measures against the backtest's label (sector peers' mean); this page uses the "
           "published labels mart, so the two can differ slightly. Calibration error: count-weighted "
           "mean |predicted − realized| over deciles, divided by the realized top-minus-bottom spread.")

# ------------------------------------------------------------------------------------------ reliability
st.subheader("Reliability diagram")
if reliability is None or reliability.empty:
    ui.not_available("Signals with realized returns")
else:
    rel = reliability.assign(decile=reliability["decile"].astype(int))
    lo = float(min(rel["predicted"].min(), rel["realized"].min()))
    hi = float(max(rel["predicted"].max(), rel["realized"].max()))
    pad = 0.05 * (hi - lo or 1.0)
    diag = pd.DataFrame({"x": [lo - pad, hi + pad], "y": [lo - pad, hi + pad]})
    base = alt.Chart(rel).encode(
        x=alt.X("predicted:Q", title=f"mean predicted expected return ({unit})",
                scale=alt.Scale(domain=[lo - pad, hi + pad])),
        y=alt.Y("realized:Q", title=f"mean realized return ({unit})", scale=alt.Scale(domain=[lo - pad, hi + pad])),
        tooltip=["decile", alt.Tooltip("n:Q", format=","), alt.Tooltip("predicted:Q", format=".2f"),
                 alt.Tooltip("realized:Q", format=".2f")],
    )
    chart = (
        alt.Chart(diag).mark_line(strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
        + base.mark_line(color="#1f77b4")
        + base.mark_circle(size=90, color="#1f77b4")
        + base.mark_text(dy=-12, fontSize=11).encode(text="decile:N")
    ).properties(height=420)
    left, right = st.columns([3, 2])
    with left:
        ui.show_chart(chart)
        st.caption("Deciles of expected return ranked within each date, pooled over dates. On the dashed "
                   "diagonal a signal means exactly what it says.")
    with right:
        ui.table(rel,
                     column_config={"n": st.column_config.NumberColumn(format="%d"),
                                    "predicted": st.column_config.NumberColumn(format="%.2f"),
                                    "realized": st.column_config.NumberColumn(format="%.2f")})

# ------------------------------------------------------------------------------------------ track record
track = read.get("track_record")
if track is not None and len(track) and (track["scale"] != 1.0).any():
    st.subheader("The calibration's track record")
    track = track.assign(date=pd.to_datetime(track["date"]))
    chart = (
        alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="y:Q")
        + alt.Chart(track).mark_line().encode(
            x=alt.X("date:T", title=None), y=alt.Y("scale:Q", title="scale applied to the expected returns"),
            tooltip=[alt.Tooltip("date:T"), alt.Tooltip("scale:Q", format=".3f")])
    ).properties(height=260)
    ui.show_chart(chart)
    last = float(track["scale"].iloc[-1])
    st.caption(f"Each date's expected returns are the calibration curve's times this scale: the realized return "
               f"per bp predicted that the calibration has delivered out of sample so far (labels known by then). "
               f"Below 1, the signal delivers less than the curve remembers; latest {last:.2f}. The policy reads "
               "the curve's values and measures its own edge (docs/ensembles_uncertainty.md).")

# ------------------------------------------------------------------------------------------ coverage
st.subheader("Interval coverage (80% intervals)")
if coverage is None or coverage.empty:
    ui.not_available("Interval coverage")
else:
    cov = coverage.assign(month=pd.to_datetime(coverage["month"]))
    band = pd.DataFrame({"lo": [0.75], "hi": [0.85]})
    scale = alt.Scale(domain=[max(0.0, min(0.6, float(cov["coverage"].min()) - 0.05)), 1.0], zero=False)
    chart = (
        alt.Chart(band).mark_rect(opacity=0.12, color="green").encode(y=alt.Y("lo:Q", scale=scale), y2="hi:Q")
        + alt.Chart(pd.DataFrame({"y": [0.8]})).mark_rule(strokeDash=[4, 4], color="gray").encode(
            y=alt.Y("y:Q", scale=scale))
        + alt.Chart(cov).mark_line(point=True).encode(
            x=alt.X("month:T", title=None),
            y=alt.Y("coverage:Q", title="share inside [lower, upper]", axis=alt.Axis(format="%"), scale=scale),
            tooltip=[alt.Tooltip("month:T"), alt.Tooltip("coverage:Q", format=".1%"), alt.Tooltip("n:Q", format=",")],
        )
    ).properties(height=300)
    ui.show_chart(chart)
    st.caption("Monthly share of realized returns inside the 80% interval; shaded: the target band "
               "[75%, 85%].")
    st.markdown(f"Mean interval width: **{float(np.average(cov['mean_width'], weights=cov['n'])):,.1f} {unit}**")

# ------------------------------------------------------------------------------------------ prob_up
st.subheader("Probability of beating the sector (prob_up)")
prob = read.get("prob_reliability")
if prob is None or prob.empty:
    ui.not_available("`prob_up` in `ml.signals`", "run `aurora backtest` (the ensemble_calibrate stage)")
else:
    prob = prob.assign(bin=prob["bin"].astype(int))
    n_all = float(prob["n"].sum())
    brier = float(prob["sse"].sum() / n_all)
    base = float((prob["observed"] * prob["n"]).sum() / n_all)
    comparison = read.get("ensemble_comparison")
    skill = None
    if comparison is not None and {"brier_skill", "chosen"} <= set(comparison.columns):
        chosen = comparison[comparison["chosen"].astype(bool)]
        skill = float(chosen["brier_skill"].iloc[0]) if len(chosen) else None
    if skill is None:  # a warehouse from before the comparison carried it: the saved report's
        skill = report.get("brier_skill")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Brier score", f"{brier:.4f}", help=f"mean (prob_up − up)² over {int(n_all):,} signals vs `{label}`")
    c2.metric("Brier skill", "—" if skill is None or pd.isna(skill) else f"{skill:+.4f}",
              help="1 − Brier / Brier of the base rate known at each date (ml.ensemble_comparison, chosen "
                   "ensemble): above 0 beats the base rate, 0 is no better")
    c3.metric("Share of ups", f"{base:.1%}")
    c4.metric("Brier of the share (hindsight)", f"{base * (1 - base):.4f}",
              help="p(1 − p): a constant forecast at the observed share, known only afterwards")
    lo, hi = float(min(prob["predicted"].min(), prob["observed"].min())), float(
        max(prob["predicted"].max(), prob["observed"].max()))
    pad = 0.05 * (hi - lo or 0.1)
    dom = [max(0.0, lo - pad), min(1.0, hi + pad)]
    diag = pd.DataFrame({"x": dom, "y": dom})
    base_chart = alt.Chart(prob).encode(
        x=alt.X("predicted:Q", title="mean predicted prob_up", scale=alt.Scale(domain=dom), axis=alt.Axis(format="%")),
        y=alt.Y("observed:Q", title="observed share beating the sector", scale=alt.Scale(domain=dom),
                axis=alt.Axis(format="%")),
        tooltip=["bin", alt.Tooltip("n:Q", format=","), alt.Tooltip("predicted:Q", format=".1%"),
                 alt.Tooltip("observed:Q", format=".1%")],
    )
    chart = (
        alt.Chart(diag).mark_line(strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
        + base_chart.mark_line(color="#2ca02c")
        + base_chart.mark_circle(color="#2ca02c").encode(size=alt.Size("n:Q", title="signals", legend=None))
    ).properties(height=380)
    left, right = st.columns([3, 2])
    with left:
        ui.show_chart(chart)
        st.caption("Reliability curve: signals binned by prob_up (deciles pooled over dates; dot size: count). "
                   "On the dashed diagonal a 60% means 60% of those names beat their sector over the horizon "
                   "(the label relative to the day's mean, as the pipeline calibrates it).")
    with right:
        ui.table(prob[["bin", "n", "predicted", "observed"]],
                 column_config={"n": st.column_config.NumberColumn(format="%d"),
                                "predicted": st.column_config.NumberColumn(format="%.3f"),
                                "observed": st.column_config.NumberColumn(format="%.3f")})
