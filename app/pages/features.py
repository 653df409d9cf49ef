"""Features: the tear sheet of a feature or a whole feature view, from the feature research marts
(`research.*`, models/research/, built by `aurora build-features`) and `ml.feature_drift`.

Top: one row per view (research_view_summary). Then every feature ranked by |Newey-West t| for a chosen
label (research_feature_summary + research_feature_orthogonality). Then, for one feature or one view:
cumulative IC, IC by horizon (raw vs sector-neutral), the top-minus-bottom decile spread gross and net of
costs, IC by year and by volatility state, correlations, IC left after neutralizing to the baseline view,
and drift (PSI by month)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app import data, ui

PRIMARY_LABEL = "fwd_ret_sn_5d"  # dbt var research_primary_label: the label orthogonality is measured on
BUILD_HINT = "run `aurora build-features`"
KEYS = ["view_name", "feature"]
NEUTRALITY = {False: "raw", True: "sector-neutral"}
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25  # config/lifecycle.yaml drift levels
TOP_LINES = 10  # features drawn in the view's cumulative IC chart
DIVERGING = alt.Scale(scheme="redblue", domainMid=0)

st.title("Features")
st.caption("What each feature knows about forward returns: rank IC by horizon with Newey-West t, what is "
           "left after neutralizing to the baseline view, the decile spread net of trading costs, and how "
           "the edge holds up across years and volatility regimes.")

paths = data.data_paths()
read = data.read(["research_view_summary", "research_feature_summary", "research_feature_orthogonality"], paths)
ui.read_notice(read)
views = read.get("research_view_summary")
summary = read.get("research_feature_summary")
ortho = read.get("research_feature_orthogonality")
if views is None or summary is None or summary.empty:
    ui.not_available("Feature research (the `research` schema: research_feature_summary, research_view_summary)",
                     BUILD_HINT)
    st.stop()
if ortho is None:
    ortho = pd.DataFrame(columns=[*KEYS, "label", "is_baseline", "mean_ic", "ic_t", "orthogonal_ic",
                                  "orthogonal_ic_t", "orthogonal_share"])

labels = (summary[["label", "horizon", "sector_neutral"]].drop_duplicates("label")
          .sort_values(["sector_neutral", "horizon"], ascending=[False, True]))
label_info = {r.label: (int(r.horizon), bool(r.sector_neutral)) for r in labels.itertuples()}
baseline = views.loc[views["is_baseline"].fillna(False).astype(bool), "view_name"].tolist()
baseline_view = baseline[0] if baseline else "price_momentum"


def _ic_label(label: str) -> str:
    h, neutral = label_info[label]
    return f"{h}d {NEUTRALITY[neutral]}"


def ranked(label: str) -> pd.DataFrame:
    """One row per feature for `label` with the IC at every horizon of the same neutrality and the
    orthogonal IC (as ml.data.research.feature_table), ranked by |t|."""
    neutral = label_info[label][1]
    base = summary[summary["label"] == label]
    decay = summary[summary["sector_neutral"] == neutral].pivot(index=KEYS, columns="horizon", values="mean_ic")
    decay.columns = [f"ic_{int(h)}d" for h in decay.columns]
    out = base.merge(decay.reset_index(), on=KEYS, how="left").merge(
        ortho[[*KEYS, "orthogonal_ic", "orthogonal_ic_t", "orthogonal_share"]], on=KEYS, how="left")
    out = out.assign(abs_t=out["ic_t"].abs()).sort_values(["abs_t", *KEYS], ascending=[False, True, True],
                                                          na_position="last")
    cols = ["view_name", "feature", "mean_ic", "ic_t", *decay.columns, "orthogonal_ic", "orthogonal_ic_t",
            "coverage", "turnover", "spread_bps", "net_spread_ann", "hit_rate", "icir", "rank_autocorr",
            "mean_names", "n_dates"]
    return out[cols].rename(columns={"view_name": "view"}).reset_index(drop=True)


def num(fmt: str, label: str | None = None, help: str | None = None) -> st.column_config.NumberColumn:
    return st.column_config.NumberColumn(label, format=fmt, help=help)


def metric_value(value, fmt: str) -> str:
    return "—" if value is None or pd.isna(value) else format(float(value), fmt)


# ------------------------------------------------------------------------------------------ views
st.subheader("Feature views")
significant = summary[(summary["label"] == PRIMARY_LABEL) & (summary["ic_t"].abs() >= 2)]
top_all = ranked(PRIMARY_LABEL if PRIMARY_LABEL in label_info else next(iter(label_info)))
c1, c2, c3, c4 = st.columns([1, 1, 1, 2])
c1.metric("Views", len(views))
c2.metric("Features", int(summary[KEYS].drop_duplicates().shape[0]))
c3.metric("Significant (|t| ≥ 2)", len(significant), help=f"Newey-West |t| of the rank IC on `{PRIMARY_LABEL}`")
if len(top_all):
    best = top_all.iloc[0]
    c4.metric("Strongest feature", str(best["feature"]), f"IC {best['mean_ic']:+.4f}, t {best['ic_t']:+.1f}",
              delta_color="off", help=f"view {best['view']}")
left, right = st.columns([3, 2])
with left:
    ui.table(views, fit=True, key="features_views_table", column_config={
        "view_name": st.column_config.TextColumn("view"),
        "n_features": num("%d", "features"), "n_significant": num("%d", "|t| ≥ 2"),
        "mean_abs_ic": num("%.4f", "mean |IC|"), "best_feature": st.column_config.TextColumn("best feature"),
        "best_ic": num("%+.4f", "best IC"), "best_ic_t": num("%.1f", "best |t|"),
        "is_baseline": st.column_config.CheckboxColumn("baseline"),
        "mean_abs_orthogonal_ic": num("%.4f", "mean |orthogonal IC|"),
        "orthogonal_share": num("percent", "orthogonal share",
                                help=f"Sum of |IC| left after neutralizing to {baseline_view}, over the sum of |IC|"),
        "mean_abs_corr_within": num("%.2f", "mean |corr| within"),
        "mean_abs_corr_across": num("%.2f", "mean |corr| across"),
        "max_abs_corr_baseline": num("%.2f", f"max |corr| with {baseline_view}"),
    })
with right:
    edge = views.melt(id_vars=["view_name"], value_vars=["mean_abs_ic", "mean_abs_orthogonal_ic"],
                      var_name="measure", value_name="value").dropna(subset=["value"])
    edge["measure"] = edge["measure"].map({"mean_abs_ic": "mean |IC|",
                                           "mean_abs_orthogonal_ic": f"after neutralizing to {baseline_view}"})
    ui.show_chart(alt.Chart(edge).mark_bar().encode(
        y=alt.Y("view_name:N", title=None), yOffset="measure:N",
        x=alt.X("value:Q", title=f"mean |rank IC| ({PRIMARY_LABEL})"),
        color=alt.Color("measure:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["view_name", "measure", alt.Tooltip("value:Q", format=".4f")],
    ).properties(height=ui.bar_height(2 * len(views), per_bar=16, axis=90)))
st.caption(f"Each view's features against `{PRIMARY_LABEL}`; the orthogonal IC is what is left after neutralizing "
           f"each feature to the baseline view `{baseline_view}` (the commodity momentum every other view must beat).")

# ------------------------------------------------------------------------------------------ ranking
st.subheader("All features")
f1, f2 = st.columns([1, 2])
label_options = list(label_info)
label = f1.selectbox("Label", label_options, key="features_label", format_func=lambda x: f"{x} ({_ic_label(x)})",
                     index=label_options.index(PRIMARY_LABEL) if PRIMARY_LABEL in label_options else 0)
horizon, neutral = label_info[label]
chosen_views = f2.multiselect("View", views["view_name"].tolist(), default=[], placeholder="All views",
                              key="features_view_filter")
table = ranked(label)
if chosen_views:
    table = table[table["view"].isin(chosen_views)].reset_index(drop=True)
decay_cols = [c for c in table.columns if c.startswith("ic_") and c.endswith("d") and c[3:-1].isdigit()]
ui.table(table, key="features_table", column_config={
    "mean_ic": num("%+.4f", "IC", help=f"Mean daily rank IC on `{label}`"),
    "ic_t": num("%+.2f", "t", help="Newey-West t of the mean IC"),
    **{c: num("%+.4f", f"IC {c[3:]}", help=f"Mean rank IC at {c[3:]} ({NEUTRALITY[neutral]})") for c in decay_cols},
    "orthogonal_ic": num("%+.4f", "orthogonal IC",
                         help=f"IC on `{PRIMARY_LABEL}` after neutralizing to {baseline_view}"),
    "orthogonal_ic_t": num("%+.2f", "orthogonal t"),
    "coverage": num("percent", "coverage", help="Share of the labelled names that hold the feature"),
    "turnover": num("percent", "turnover", help="Share of the top and bottom deciles replaced per research date"),
    "spread_bps": num("%+.1f", "spread (bps)", help="Top minus bottom decile mean forward return, gross"),
    "net_spread_ann": num("percent", "net spread (ann.)",
                          help="Annualized top-minus-bottom decile return less costs on the deciles' turnover "
                               "(labels whose horizon equals the research stride only)"),
    "hit_rate": num("percent", "hit rate"), "icir": num("%+.2f", "ICIR"),
    "rank_autocorr": num("%.2f", "rank autocorr"), "mean_names": num("%.0f", "names"), "n_dates": num("%d", "dates"),
})
st.caption(f"{len(table)} features ranked by |t| on `{label}`. Orthogonal IC is measured on `{PRIMARY_LABEL}` "
           "whatever the label. Research dates are every 5th trading date.")
scatter = table.dropna(subset=["mean_ic", "orthogonal_ic"])
if len(scatter):
    lim = float(max(scatter["mean_ic"].abs().max(), scatter["orthogonal_ic"].abs().max(), 1e-4)) * 1.1
    diag = pd.DataFrame({"x": [-lim, lim], "y": [-lim, lim]})
    ui.show_chart((
        alt.Chart(diag).mark_line(strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
        + alt.Chart(scatter).mark_circle(size=70, opacity=0.8).encode(
            x=alt.X("mean_ic:Q", title=f"rank IC ({label})", scale=alt.Scale(domain=[-lim, lim])),
            y=alt.Y("orthogonal_ic:Q", title=f"IC after neutralizing to {baseline_view}",
                    scale=alt.Scale(domain=[-lim, lim])),
            color=alt.Color("view:N", title="view"),
            tooltip=["view", "feature", alt.Tooltip("mean_ic:Q", format="+.4f"), alt.Tooltip("ic_t:Q", format="+.2f"),
                     alt.Tooltip("orthogonal_ic:Q", format="+.4f")],
        )
    ).properties(height=340))
    st.caption("On the dashed diagonal a feature's edge is all its own; near the horizontal axis it restates "
               f"{baseline_view}.")

# ------------------------------------------------------------------------------------------ tear sheet
st.subheader("Tear sheet")
if table.empty:
    st.info("No feature in the chosen views.", icon=":material/filter_alt_off:")
    st.stop()
s1, s2 = st.columns([1, 3])
scope = s1.radio("Scope", ["Feature", "View"], horizontal=True, key="features_scope")
table_keys = (table["view"] + "." + table["feature"]).tolist()
by_key = table.assign(key=table_keys).set_index("key")
if scope == "Feature":
    picked = s2.selectbox("Feature (ranked by |t|)", table_keys, index=0, key="features_feature",
                          format_func=lambda k: f"{by_key.at[k, 'feature']} · {by_key.at[k, 'view']} "
                                                f"(t {by_key.at[k, 'ic_t']:+.1f})")
    row = by_key.loc[picked]
    view, feature = str(row["view"]), str(row["feature"])
else:
    shown_views = list(dict.fromkeys(table["view"]))
    view = s2.selectbox("View", shown_views, index=0, key="features_view")
    feature = None

per_view = data.read(["research_view_daily", "research_view_stability", "research_view_correlation",
                      "view_feature_drift"], paths, view=view)
ui.read_notice(per_view)
daily = per_view.get("research_view_daily")
stability = per_view.get("research_view_stability")
corr = per_view.get("research_view_correlation")
drift = per_view.get("view_feature_drift")
view_rows = summary[summary["view_name"] == view]
view_rank = ranked(label)
view_rank = view_rank[view_rank["view"] == view]
is_baseline = view == baseline_view
same_neutral = [lb for lb, (_, n) in label_info.items() if n == neutral]
stride_label = next((lb for lb in same_neutral if label_info[lb][0] == 5), None)

if feature is not None:
    st.markdown(f"#### `{feature}` · view `{view}`")
    c = [*st.columns(4), *st.columns(4)]
    c[0].metric("IC", metric_value(row["mean_ic"], "+.4f"), help=f"mean rank IC on `{label}`")
    c[1].metric("t (Newey-West)", metric_value(row["ic_t"], "+.2f"))
    c[2].metric("ICIR", metric_value(row["icir"], "+.2f"))
    c[3].metric("Hit rate", metric_value(row["hit_rate"], ".0%"))
    c[4].metric("Orthogonal IC", "baseline" if is_baseline else metric_value(row["orthogonal_ic"], "+.4f"),
                help=f"IC on `{PRIMARY_LABEL}` after neutralizing to {baseline_view}")
    net = view_rows.loc[(view_rows["feature"] == feature) & (view_rows["label"] == stride_label), "net_spread_ann"]
    c[5].metric("Net spread (ann.)", metric_value(net.iloc[0] if len(net) else None, "+.1%"),
                help=f"Top-minus-bottom decile, annualized, net of costs ({stride_label})")
    c[6].metric("Turnover", metric_value(row["turnover"], ".0%"), help="deciles replaced per research date")
    c[7].metric("Coverage", metric_value(row["coverage"], ".0%"))
elif (views["view_name"] == view).any():
    vrow = views[views["view_name"] == view].iloc[0]
    st.markdown(f"#### View `{view}`" + (" (the baseline)" if is_baseline else ""))
    c = [*st.columns(4), *st.columns(4)]
    c[0].metric("Features in view", int(vrow["n_features"]))
    c[1].metric("|t| ≥ 2", int(vrow["n_significant"]), help=f"on `{PRIMARY_LABEL}`")
    c[2].metric("Mean |IC|", metric_value(vrow["mean_abs_ic"], ".4f"))
    c[3].metric("Best feature", str(vrow["best_feature"]), f"t {vrow['best_ic_t']:.1f}" if pd.notna(
        vrow["best_ic_t"]) else None, delta_color="off")
    c[4].metric("Orthogonal share", "baseline" if is_baseline else metric_value(vrow["orthogonal_share"], ".0%"))
    c[5].metric("Mean |corr| within", metric_value(vrow["mean_abs_corr_within"], ".2f"))
    c[6].metric("Mean |corr| across", metric_value(vrow["mean_abs_corr_across"], ".2f"),
                help="with the other views' features")
    c[7].metric(f"Max |corr| with {baseline_view}", "—" if is_baseline else
                metric_value(vrow["max_abs_corr_baseline"], ".2f"))

# -- cumulative IC
st.markdown("**Cumulative IC**")
if daily is None or daily.empty:
    ui.not_available(f"Daily research rows of `{view}` (`research.research_feature_daily`)", BUILD_HINT)
else:
    daily = daily.assign(date=pd.to_datetime(daily["date"]))
    if feature is not None:
        one = daily[daily["feature"] == feature].sort_values("date")
        cum = pd.concat([pd.DataFrame({"date": one["date"], "series": _ic_label(lb),
                                       "cumulative_ic": one[f"ic_{lb}"].fillna(0.0).cumsum()})
                         for lb in same_neutral if f"ic_{lb}" in one])
        note = f"One line per horizon ({NEUTRALITY[neutral]} labels)."
    else:
        top = view_rank["feature"].head(TOP_LINES).tolist()
        some = daily[daily["feature"].isin(top)].sort_values("date")
        cum = some.assign(series=some["feature"],
                          cumulative_ic=some.groupby("feature")[f"ic_{label}"].transform(
                              lambda s: s.fillna(0.0).cumsum()))[["date", "series", "cumulative_ic"]]
        note = f"The view's {len(top)} strongest features by |t| on `{label}`."
    ui.show_chart(ui.line(cum, "date", "cumulative_ic", "series", y_title="cumulative rank IC", rule=0.0,
                          height=320))
    st.caption(f"Sum of the rank IC over the research dates. {note} A steady slope is a steady edge; a flat "
               "or falling stretch is where it stopped working.")

# -- IC by horizon; decile spread, gross and net of costs
MEASURES = alt.Scale(domain=["gross", "net of costs"], range=["#9ecae1", "#08519c"])
subset = view_rows if feature is None else view_rows[view_rows["feature"] == feature]
ann = subset[subset["net_spread_ann"].notna()].copy()
if feature is None:
    ann = ann[ann["sector_neutral"].astype(bool) == neutral]
ann["gross"] = ann["spread_bps"] / 1e4 * 252 / ann["horizon"].astype(float)
ann["net of costs"] = ann["net_spread_ann"]
ann["series"] = ann["feature"] if feature is None else ann["label"].map(_ic_label)
ann_long = ann.melt(id_vars=["series", "label"], value_vars=["gross", "net of costs"], var_name="measure",
                    value_name="annualized")
ann_tooltip = ["series", "label", "measure", alt.Tooltip("annualized:Q", format="+.2%")]
spread_note = ("The research marts keep only the top and bottom deciles (no full quantile ladder): the spread is the "
               "top decile's mean forward return minus the bottom decile's. Annualized for the 5-day labels "
               "(rebalanced every research date, so their windows tile the calendar); net = less the cost per unit "
               "traded (`research_cost_bps`) on the deciles' measured turnover.")
if feature is not None:
    h = subset.assign(horizon_label=subset["horizon"].astype(int).astype(str) + "d",
                      neutrality=subset["sector_neutral"].astype(bool).map(NEUTRALITY),
                      se=(subset["mean_ic"] / subset["ic_t"]).abs())
    h = h.assign(lo=h["mean_ic"] - 2 * h["se"], hi=h["mean_ic"] + 2 * h["se"])
    order = [f"{x}d" for x in sorted(h["horizon"].astype(int).unique())]
    base = alt.Chart(h).encode(x=alt.X("horizon_label:N", title="label horizon", sort=order),
                               xOffset=alt.XOffset("neutrality:N"),
                               color=alt.Color("neutrality:N", title=None, legend=alt.Legend(orient="bottom")))
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**IC by horizon: raw vs sector-neutral**")
        ui.show_chart((
            base.mark_bar().encode(
                y=alt.Y("mean_ic:Q", title="mean rank IC"),
                tooltip=["label", alt.Tooltip("mean_ic:Q", format="+.4f"), alt.Tooltip("ic_t:Q", format="+.2f"),
                         alt.Tooltip("hit_rate:Q", format=".0%"), alt.Tooltip("n_dates:Q")])
            + base.mark_rule(color="black").encode(y="lo:Q", y2="hi:Q", color=alt.value("black"))
        ).properties(height=300))
        st.caption("Bars: mean rank IC; whiskers: ±2 Newey-West standard errors. The decay across horizons says "
                   "how long the information lasts.")
    with c2:
        st.markdown("**Decile spread by horizon (gross)**")
        ui.show_chart(base.mark_bar().encode(
            y=alt.Y("spread_bps:Q", title="spread (bps, gross)"),
            tooltip=["label", alt.Tooltip("spread_bps:Q", format="+.1f")],
        ).properties(height=300))
        st.caption("Mean forward return of the top decile minus the bottom decile's, per label, before costs.")
    with c3:
        st.markdown("**Decile spread, annualized: gross vs net of costs**")
        if ann_long.empty:
            st.caption("No label whose horizon equals the research stride: no annualized spread.")
        else:
            ui.show_chart(alt.Chart(ann_long).mark_bar().encode(
                x=alt.X("series:N", title=None), xOffset="measure:N",
                y=alt.Y("annualized:Q", title="annualized spread", axis=alt.Axis(format="%")),
                color=alt.Color("measure:N", title=None, scale=MEASURES, legend=alt.Legend(orient="bottom")),
                tooltip=ann_tooltip,
            ).properties(height=300))
        st.caption(spread_note)
else:
    left, right = st.columns(2)
    with left:
        st.markdown("**IC by label: raw vs sector-neutral, every horizon**")
        heat = view_rows.assign(series=view_rows["label"].map(_ic_label))
        ui.show_chart(alt.Chart(heat).mark_rect().encode(
            x=alt.X("series:N", title=None, sort=[_ic_label(lb) for lb in label_info]),
            y=alt.Y("feature:N", title=None, sort=view_rank["feature"].tolist()),
            color=alt.Color("mean_ic:Q", title="mean IC", scale=DIVERGING),
            tooltip=["feature", "label", alt.Tooltip("mean_ic:Q", format="+.4f"),
                     alt.Tooltip("ic_t:Q", format="+.2f")],
        ).properties(height=ui.bar_height(view_rows["feature"].nunique(), per_bar=22, axis=110)))
        st.caption("Mean rank IC of every feature (rows, strongest first) on every label.")
    with right:
        st.markdown(f"**Decile spread, annualized: gross vs net of costs ({NEUTRALITY[neutral]})**")
        if ann_long.empty:
            st.caption("No label whose horizon equals the research stride: no annualized spread.")
        else:
            ui.show_chart(alt.Chart(ann_long).mark_bar().encode(
                y=alt.Y("series:N", title=None, sort=view_rank["feature"].tolist()), yOffset="measure:N",
                x=alt.X("annualized:Q", title="annualized top − bottom decile spread", axis=alt.Axis(format="%")),
                color=alt.Color("measure:N", title=None, scale=MEASURES, legend=alt.Legend(orient="bottom")),
                tooltip=ann_tooltip,
            ).properties(height=ui.bar_height(2 * ann["series"].nunique(), per_bar=12, axis=110)))
        st.caption(spread_note)

# -- stability
st.markdown("**Stability: IC by year and by volatility state**")
if stability is None or stability.empty:
    ui.not_available(f"Stability of `{view}` (`research.research_feature_stability`)", BUILD_HINT)
else:
    stab = stability[stability["label"] == label]
    stab = stab.assign(se=stab["ic_sd"] / np.sqrt(stab["n_dates"].clip(lower=1)))
    stab = stab.assign(lo=stab["mean_ic"] - 2 * stab["se"], hi=stab["mean_ic"] + 2 * stab["se"])
    left, right = st.columns([3, 2])
    for where, split, title in ((left, "year", "calendar year"), (right, "vol_state", "market volatility state")):
        part = stab[stab["split"] == split]
        with where:
            if feature is not None:
                part = part[part["feature"] == feature]
                base = alt.Chart(part).encode(x=alt.X("period:N", title=title))
                ui.show_chart((
                    base.mark_bar().encode(
                        y=alt.Y("mean_ic:Q", title=f"mean rank IC ({label})"),
                        color=alt.condition("datum.mean_ic >= 0", alt.value("#4c78a8"), alt.value("#e45756")),
                        tooltip=["period", alt.Tooltip("mean_ic:Q", format="+.4f"), alt.Tooltip("n_dates:Q"),
                                 alt.Tooltip("hit_rate:Q", format=".0%")])
                    + base.mark_rule(color="black").encode(y="lo:Q", y2="hi:Q")
                ).properties(height=280))
            else:
                ui.show_chart(alt.Chart(part).mark_rect().encode(
                    x=alt.X("period:N", title=title), y=alt.Y("feature:N", title=None,
                                                              sort=view_rank["feature"].tolist()),
                    color=alt.Color("mean_ic:Q", title="mean IC", scale=DIVERGING),
                    tooltip=["feature", "period", alt.Tooltip("mean_ic:Q", format="+.4f"), alt.Tooltip("n_dates:Q")],
                ).properties(height=ui.bar_height(part["feature"].nunique(), per_bar=22, axis=90)))
    st.caption("Volatility state: the market's trailing volatility against its own past median, known at the "
               "date (calm / stressed; unknown during the warm-up)."
               + (" Whiskers: ±2 standard errors." if feature is not None else " Rows: strongest feature first."))

# -- correlation
if feature is not None:
    st.markdown("**Most correlated features (all views)**")
else:
    st.markdown("**Correlation of the view's features**")
if corr is None or corr.empty:
    ui.not_available("Feature correlations (`research.research_feature_correlation`)", BUILD_HINT)
elif feature is not None:
    mine = corr[corr["feature_a"] == feature].dropna(subset=["corr"])
    mine = mine.assign(abs_corr=mine["corr"].abs(), other=mine["feature_b"] + " · " + mine["view_b"])
    mine = mine.nlargest(15, "abs_corr")
    ui.show_chart(alt.Chart(mine).mark_bar().encode(
        y=alt.Y("other:N", title=None, sort=alt.EncodingSortField("abs_corr", order="descending")),
        x=alt.X("corr:Q", title="mean rank correlation", scale=alt.Scale(domain=[-1, 1])),
        color=alt.Color("view_b:N", title="view"),
        tooltip=["feature_b", "view_b", alt.Tooltip("corr:Q", format="+.2f"), alt.Tooltip("n_dates:Q")],
    ).properties(height=ui.bar_height(len(mine), per_bar=22)))
    st.caption("Cross-sectional rank correlation averaged over the research dates; the 15 largest in "
               "absolute value.")
else:
    within = corr[corr["view_b"] == view][["feature_a", "feature_b", "corr"]]
    feats = sorted(set(within["feature_a"]) | set(within["feature_b"]))
    within = pd.concat([within, pd.DataFrame({"feature_a": feats, "feature_b": feats, "corr": 1.0})])
    order = [f for f in view_rank["feature"] if f in feats] or feats
    ui.show_chart(alt.Chart(within).mark_rect().encode(
        x=alt.X("feature_b:N", title=None, sort=order), y=alt.Y("feature_a:N", title=None, sort=order),
        color=alt.Color("corr:Q", title="corr", scale=alt.Scale(scheme="redblue", domain=[-1, 1])),
        tooltip=["feature_a", "feature_b", alt.Tooltip("corr:Q", format="+.2f")],
    ).properties(height=ui.bar_height(len(feats), per_bar=22, axis=160)))
    st.caption("Mean cross-sectional rank correlation of every pair of the view's features.")

# -- orthogonality
st.markdown(f"**Orthogonality to the baseline ({baseline_view})**")
mine = ortho[ortho["view_name"] == view]
if mine.empty:
    ui.not_available(f"Orthogonality of `{view}` (`research.research_feature_orthogonality`)", BUILD_HINT)
elif is_baseline:
    st.info(f"`{view}` is the baseline: the other views' features are neutralized to its features, so it has "
            "no orthogonal IC of its own.", icon=":material/anchor:")
else:
    long = mine.melt(id_vars=["feature"], value_vars=["mean_ic", "orthogonal_ic"], var_name="measure",
                     value_name="ic").dropna(subset=["ic"])
    long["measure"] = long["measure"].map({"mean_ic": "raw", "orthogonal_ic": "neutralized"})
    long["picked"] = long["feature"] == feature if feature is not None else True
    ui.show_chart(alt.Chart(long).mark_bar().encode(
        y=alt.Y("feature:N", title=None, sort=view_rank["feature"].tolist()), yOffset="measure:N",
        x=alt.X("ic:Q", title=f"mean rank IC ({PRIMARY_LABEL})"),
        color=alt.Color("measure:N", title=None,
                        scale=alt.Scale(domain=["raw", "neutralized"], range=["#bab0ac", "#4c78a8"]),
                        legend=alt.Legend(orient="bottom")),
        opacity=alt.condition("datum.picked", alt.value(1.0), alt.value(0.35)),
        tooltip=["feature", "measure", alt.Tooltip("ic:Q", format="+.4f")],
    ).properties(height=ui.bar_height(2 * mine["feature"].nunique(), per_bar=12, axis=90)))
    st.caption(f"Raw IC and the IC of the feature's residual after regressing it on {baseline_view}'s features "
               "each date. What survives is what the view adds to momentum.")

# -- drift
st.markdown("**Drift (population stability index by month)**")
if drift is None:
    ui.not_available("Feature drift (`ml.feature_drift`)")
elif drift.empty:
    st.caption(f"`ml.feature_drift` has no rows for the view `{view}`.")
else:
    when = ui.first_present(drift, ("month", "date", "as_of", "window_end"))
    if when is None or "psi" not in drift or "feature" not in drift:
        ui.table(drift)
    else:
        d = drift.assign(**{when: pd.to_datetime(drift[when])}).dropna(subset=["psi"])
        if feature is not None:
            d = d[d["feature"] == feature]
        if d.empty:
            st.caption(f"`ml.feature_drift` has no PSI for `{feature or view}`.")
        elif feature is not None:
            rules = pd.DataFrame({"y": [PSI_MODERATE, PSI_SIGNIFICANT], "level": ["moderate", "significant"]})
            ui.show_chart((
                alt.Chart(d).mark_line(point=True).encode(
                    x=alt.X(f"{when}:T", title=None), y=alt.Y("psi:Q", title="PSI"),
                    tooltip=[alt.Tooltip(f"{when}:T"), alt.Tooltip("psi:Q", format=".3f")])
                + alt.Chart(rules).mark_rule(strokeDash=[4, 4]).encode(
                    y="y:Q", color=alt.Color("level:N", title=None,
                                             scale=alt.Scale(range=["#f58518", "#e45756"])))
            ).properties(height=260))
        else:
            ui.show_chart(alt.Chart(d).mark_rect().encode(
                x=alt.X(f"yearmonth({when}):O", title=None), y=alt.Y("feature:N", title=None),
                color=alt.Color("psi:Q", title="PSI", scale=alt.Scale(scheme="orangered", domain=[0, 0.5],
                                                                      clamp=True)),
                tooltip=["feature", alt.Tooltip(f"{when}:T"), alt.Tooltip("psi:Q", format=".3f")],
            ).properties(height=ui.bar_height(d["feature"].nunique(), per_bar=22, axis=90)))
        st.caption(f"Below {PSI_MODERATE} stable, {PSI_MODERATE}-{PSI_SIGNIFICANT} moderate, above "
                   f"{PSI_SIGNIFICANT} a significant shift against the reference window (`aurora run`).")
