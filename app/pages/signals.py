"""Signals: the latest signals and positions (`ml.signals`, `ml.positions`) with each name's sector,
filtered by sector or symbol."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app import data, ui

st.title("Signals")
st.caption("Today's expected returns with their 80% intervals, and the positions the policy takes.")

paths = data.data_paths()
read = data.read(["latest_signals"], paths)
ui.read_notice(read)
latest = read.get("latest_signals")
if latest is None or latest.empty:
    ui.not_available("Signals and positions (`ml.signals`, `ml.positions`)")
    st.stop()

secs = data.securities(paths)
if secs is not None and "symbol" in secs:
    latest = latest.merge(secs, on="symbol", how="left", suffixes=("", "_security"))
if "sector" not in latest:
    latest["sector"] = "unknown"
latest["sector"] = latest["sector"].fillna("unknown").astype(str)
date = pd.Timestamp(latest["date"].max())

f1, f2 = st.columns(2)
sectors = sorted(latest["sector"].unique())
chosen_sectors = f1.multiselect("Sector", sectors, default=[], placeholder="All sectors", key="signals_sector")
pool = latest[latest["sector"].isin(chosen_sectors)] if chosen_sectors else latest
chosen_symbols = f2.multiselect("Symbol", sorted(pool["symbol"].astype(str).unique()), default=[],
                                placeholder="All symbols", key="signals_symbol")
shown = pool[pool["symbol"].isin(chosen_symbols)] if chosen_symbols else pool

has_w = "target_weight" in shown
weights = shown["target_weight"].fillna(0.0) if has_w else pd.Series(0.0, index=shown.index)
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Signal date", f"{date:%Y-%m-%d}")
c2.metric("Names", f"{len(shown):,}")
c3.metric("Long / short", f"{int((weights > 1e-12).sum())} / {int((weights < -1e-12).sum())}" if has_w else "—")
c4.metric("Gross exposure", f"{weights.abs().sum():.1%}" if has_w else "—")
c5.metric("Net exposure", f"{weights.sum():+.1%}" if has_w else "—")
if not has_w:
    ui.not_available("Positions (`ml.positions`)")

order = [c for c in ("symbol", "name", "sector", "expected_return", "lower", "upper", "uncertainty",
                     "target_weight", "trade", "cost_estimate", "reason", "industry", "ensemble_version")
         if c in shown]
sort_key = "expected_return" if "expected_return" in shown else ("target_weight" if has_w else "symbol")
table = shown[order + [c for c in shown.columns if c not in order and c != "date"]].sort_values(
    sort_key, ascending=False, na_position="last")
fmt_cols = {c: st.column_config.NumberColumn(format="%.1f") for c in ("expected_return", "lower", "upper",
                                                                       "uncertainty") if c in table}
fmt_cols |= {c: st.column_config.NumberColumn(format="%.4f") for c in ("target_weight", "trade") if c in table}
fmt_cols |= {c: st.column_config.NumberColumn(format="%.6f") for c in ("cost_estimate",) if c in table}
ui.table(table, column_config=fmt_cols, key="signals_table")

left, right = st.columns(2)
if has_w and len(shown):
    with left:
        st.subheader("Long and short weight by sector")
        by = shown.assign(w=weights).groupby("sector")["w"].agg(
            long=lambda s: s[s > 0].sum(), short=lambda s: s[s < 0].sum()).reset_index()
        by = by.melt("sector", var_name="side", value_name="weight")
        ui.show_chart(alt.Chart(by).mark_bar().encode(
            x=alt.X("weight:Q", title="target weight", axis=alt.Axis(format="%")),
            y=alt.Y("sector:N", title=None),
            color=alt.Color("side:N", scale=alt.Scale(domain=["long", "short"], range=["#2e7d32", "#c62828"])),
            tooltip=["sector", "side", alt.Tooltip("weight:Q", format=".2%")],
        ).properties(height=ui.bar_height(by["sector"].nunique())))
if "reason" in shown and shown["reason"].notna().any():
    with right:
        st.subheader("Why (policy reasons)")
        reasons = shown["reason"].fillna("—").value_counts().rename_axis("reason").reset_index(name="names")
        ui.table(reasons)

if len(chosen_symbols) == 1:
    symbol = chosen_symbols[0]
    st.subheader(f"{symbol}: signal history")
    hist = data.read(["symbol_history"], paths, symbol=symbol).get("symbol_history")
    if hist is None or hist.empty:
        ui.not_available(f"History of {symbol}")
    else:
        hist = hist.assign(date=pd.to_datetime(hist["date"]))
        band = alt.Chart(hist).mark_area(opacity=0.2).encode(x=alt.X("date:T", title=None), y="lower:Q", y2="upper:Q")
        er = alt.Chart(hist).mark_line().encode(x="date:T", y=alt.Y("expected_return:Q", title="expected return"))
        ui.show_chart((band + er).properties(height=260))
        if "target_weight" in hist:
            ui.show_chart(ui.line(hist.fillna({"target_weight": 0.0}), "date", "target_weight",
                                  y_title="target weight", y_format=".2%", height=180))
