"""Backtest: gross vs net equity, drawdown, turnover and cost retention from `ml.backtest_daily`; the
policy's measured constants (edge, holding horizon, spreads, ...) from `ml.policy_constants`."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app import data, ui
from app.targets import TARGETS, fmt

TRADING_DAYS = 252
# ml.policy_constants: what each measured constant means, in the order shown
CONSTANTS = {
    "edge_per_bp": "Edge used: bps of realized return per bp of expected return, measured walk-forward and "
                   "shrunk; 0 = no measurable edge, the book abstains",
    "edge_raw_per_bp": "The same edge before shrinkage, at the holding horizon",
    "edge_tstat": "t-statistic of the raw edge (overlapping horizons corrected)",
    "holding_horizon_days": "Days after which the cumulative edge peaks: how long the alpha lives (0 = not measured)",
    "spread_median_bps": "Median bid-ask spread of the tradable names, in bps",
    "spread_share_quoted": "Share of tradable names whose spread is quoted",
    "spread_share_estimated": "Share whose spread is estimated from highs and lows (Abdi-Ranaldo)",
    "spread_share_fallback": "Share with neither, charged the configured fallback spread",
    "risk_aversion": "Weight of risk against expected return in the optimizer",
    "realized_risk_scale": "Realized over ex-ante book volatility; scales the volatility target",
    "nav": "Capital multiple the trades were sized on (impact, ADV caps)",
    "optimizer_relaxed": "1 on a day the optimizer had to drop the turnover budget (mean: share of days)",
    "optimizer_fallback": "1 on a day the optimizer fell back to a simpler book (mean: share of days)",
}
SPREAD_SOURCES = {"spread_share_quoted": "quoted", "spread_share_estimated": "estimated (Abdi-Ranaldo)",
                  "spread_share_fallback": "fallback"}

st.title("Backtest")
st.caption("The chosen ensemble's signals through the cost-aware policy, after costs (`ml.backtest_daily`).")

paths = data.data_paths()
read = data.read(["backtest_daily", "ensemble_comparison", "policy_constants"], paths)
ui.read_notice(read)
daily = read.get("backtest_daily")
report, _ = data.load_report(paths)
report = report or {}
targets = {t.key: t for t in TARGETS}


def _prepare(frame: pd.DataFrame) -> pd.DataFrame | None:
    """date, gross_return, cost, net_return (+ turnover, exposures when present), tolerant of gaps."""
    if frame is None or frame.empty or "date" not in frame:
        return None
    df = frame.copy()
    df["date"] = pd.to_datetime(df["date"])
    df = df.sort_values("date").reset_index(drop=True)
    has = set(df.columns)
    if "net_return" not in has and {"gross_return", "cost"} <= has:
        df["net_return"] = df["gross_return"] - df["cost"]
    if "gross_return" not in has and {"net_return", "cost"} <= set(df.columns):
        df["gross_return"] = df["net_return"] + df["cost"]
    if "cost" not in has and {"gross_return", "net_return"} <= set(df.columns):
        df["cost"] = df["gross_return"] - df["net_return"]
    if "net_return" not in df and "gross_return" not in df:
        return None
    return df


def _sharpe(r: pd.Series) -> float | None:
    r = r.dropna()
    sd = r.std(ddof=1)
    return float(r.mean() / sd * np.sqrt(TRADING_DAYS)) if len(r) > 1 and sd > 0 else None


def _max_dd(r: pd.Series) -> float | None:
    eq = (1 + r.fillna(0)).cumprod()
    return float((1 - eq / eq.cummax()).max()) if len(eq) else None


df = _prepare(daily)
if df is None:
    ui.not_available("The backtest (`ml.backtest_daily`)")
    st.stop()

returns = [c for c in ("gross_return", "net_return") if c in df]
monthly_turn = None
if "turnover" in df:
    monthly_turn = (df["turnover"] / 2.0).groupby(df["date"].dt.to_period("M")).sum()
    full = monthly_turn.iloc[1:-1] if len(monthly_turn) > 2 else monthly_turn
    gross_exp = float(df["gross_exposure"].mean()) if "gross_exposure" in df else 1.0
    turnover_monthly = float(full.mean() / gross_exp) if gross_exp > 0 else None
else:
    turnover_monthly = None
computed = {
    "sharpe_gross": _sharpe(df["gross_return"]) if "gross_return" in df else None,
    "sharpe_net": _sharpe(df["net_return"]) if "net_return" in df else None,
    "max_drawdown": _max_dd(df["net_return"]) if "net_return" in df else None,
    "turnover_monthly": turnover_monthly,
    "cost_retention": (float(df["net_return"].mean() / df["gross_return"].mean())
                       if set(returns) == {"gross_return", "net_return"} and df["gross_return"].mean() > 0
                       else None),
}
mean_gross = float(df["gross_exposure"].mean()) if "gross_exposure" in df else None
turnover_capital = float(full.mean()) if monthly_turn is not None else None
window = f"**{df['date'].min():%Y-%m-%d} → {df['date'].max():%Y-%m-%d}** · {len(df):,} trading days"
if mean_gross is not None:
    window += f" · mean gross exposure {mean_gross:.2f}x capital"
if turnover_capital is not None:
    window += (f" · turnover per month {turnover_capital:.2f}x capital, "
               + (f"{turnover_monthly:.2f}x the book" if turnover_monthly is not None and "gross_exposure" in df
                  else "— of the book"))
st.markdown(window)
diagnostics = report.get("policy_diagnostics") or {}
taken = (bool((df["gross_exposure"].abs() > 0).any()) if "gross_exposure" in df
         else diagnostics.get("positions_taken", True))
if not taken:
    counts = diagnostics.get("reason_counts")
    if not counts:
        reasons = data.read(["position_reasons"], paths).get("position_reasons")
        counts = dict(zip(reasons["reason"], reasons["rows"], strict=True)) if reasons is not None else {}
    why = "; ".join(f"{k}: {int(v):,}" for k, v in counts.items()) or "no rows in ml.positions"
    st.warning(f"No positions taken over this window. Reasons in `ml.positions`: {why}.", icon=":material/block:")
for message in report.get("policy_warnings") or []:
    if not str(message).startswith("no positions taken"):  # said above, from the table
        st.warning(f"Policy guardrail: {message}", icon=":material/warning:")
cols = st.columns(5)
for col, key in zip(cols, ("sharpe_gross", "sharpe_net", "max_drawdown", "turnover_monthly", "cost_retention"),
                    strict=True):
    value = report.get(key) if report.get(key) is not None else computed[key]
    t = targets.get(key)
    with col.container(border=True):
        label = t.label if t else "Sharpe (gross)"
        st.metric(label, fmt(value, t.kind if t else "num"),
                  help=("from the report" if report.get(key) is not None else "computed from ml.backtest_daily")
                  + (f"; target {t.describe}" if t else ""))
        if t:
            ui.status_badge(t.check(value))
        else:
            st.caption("no target")

# ------------------------------------------------------------------------------------------ equity
st.subheader("Equity: gross vs net of costs")
equity = pd.DataFrame({"date": df["date"]})
for c in returns:
    equity[c.replace("_return", "")] = (1 + df[c].fillna(0)).cumprod()
eq_long = equity.melt("date", var_name="series", value_name="equity")
ui.show_chart(alt.Chart(eq_long).mark_line().encode(
    x=alt.X("date:T", title=None), y=alt.Y("equity:Q", title="growth of 1", scale=alt.Scale(zero=False)),
    color=alt.Color("series:N", scale=alt.Scale(domain=["gross", "net"], range=["#9e9e9e", "#1f77b4"])),
    tooltip=[alt.Tooltip("date:T"), "series", alt.Tooltip("equity:Q", format=".3f")],
).properties(height=340))

left, right = st.columns(2)
with left:
    st.subheader("Drawdown (net)")
    r = df["net_return"] if "net_return" in df else df["gross_return"]
    eq = (1 + r.fillna(0)).cumprod()
    dd = pd.DataFrame({"date": df["date"], "drawdown": -(1 - eq / eq.cummax())})
    ui.show_chart(alt.Chart(dd).mark_area(color="#d62728", opacity=0.4, line={"color": "#d62728"}).encode(
        x=alt.X("date:T", title=None), y=alt.Y("drawdown:Q", title="drawdown", axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("date:T"), alt.Tooltip("drawdown:Q", format=".2%")],
    ).properties(height=260))
with right:
    st.subheader("Turnover")
    if monthly_turn is None:
        ui.not_available("Turnover (no `turnover` column)")
    else:
        mt = pd.DataFrame({"month": monthly_turn.index.to_timestamp(), "turnover": monthly_turn.to_numpy()})
        ui.show_chart(alt.Chart(mt).mark_bar().encode(
            x=alt.X("month:T", title=None), y=alt.Y("turnover:Q", title="turnover per month (x capital)"),
            tooltip=[alt.Tooltip("month:T", format="%Y-%m"), alt.Tooltip("turnover:Q", format=".2f")],
        ).properties(height=260))

left, right = st.columns(2)
with left:
    st.subheader("Cost retention")
    if set(returns) != {"gross_return", "net_return"}:
        ui.not_available("Cost retention (needs gross and net returns)")
    else:
        window = 126
        roll = pd.DataFrame({
            "date": df["date"],
            "rolling 6 months": df["net_return"].rolling(window, min_periods=21).sum()
            / df["gross_return"].rolling(window, min_periods=21).sum(),
            "since start": df["net_return"].cumsum() / df["gross_return"].cumsum(),
        }).melt("date", var_name="window", value_name="retention")
        roll = roll[np.isfinite(roll["retention"])]
        roll["retention"] = roll["retention"].clip(-1.0, 2.0)
        ui.show_chart((alt.Chart(roll).mark_line().encode(
            x=alt.X("date:T", title=None),
            y=alt.Y("retention:Q", title="net / gross return", axis=alt.Axis(format="%")),
            color=alt.Color("window:N", title=None),
            tooltip=[alt.Tooltip("date:T"), "window", alt.Tooltip("retention:Q", format=".1%")],
        ) + alt.Chart(pd.DataFrame({"y": [0.8]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="y:Q"))
            .properties(height=260))
        st.caption("Share of the gross return kept after costs (clipped to [-100%, 200%]); dashed: the 80% target.")
with right:
    st.subheader("Exposure")
    exp_cols = [c for c in ("gross_exposure", "net_exposure", "beta_exposure") if c in df]
    if not exp_cols:
        ui.not_available("Exposures")
    else:
        ex = df[["date", *exp_cols]].melt("date", var_name="exposure", value_name="value")
        ui.show_chart(ui.line(ex, "date", "value", "exposure", y_title="fraction of capital", y_format=".2f",
                              height=260))

# ------------------------------------------------------------------------------------------ constants
st.subheader("Measured policy constants")
constants = read.get("policy_constants")
if constants is None or constants.empty:
    ui.not_available("The policy's measured constants (`ml.policy_constants`)")
else:
    constants = constants.assign(date=pd.to_datetime(constants["date"])).sort_values(["constant", "date"])
    known = constants.dropna(subset=["value"])
    latest = known.groupby("constant").tail(1).set_index("constant")
    window_mean = known.groupby("constant")["value"].mean()
    order = [c for c in CONSTANTS if c in latest.index] + sorted(c for c in latest.index if c not in CONSTANTS)
    as_of = constants["date"].max()
    methods = sorted(m for m in constants["method"].dropna().unique()) if "method" in constants else []
    st.caption(f"Measured walk-forward at every decision date from data known then; latest {as_of:%Y-%m-%d}"
               + (f", policy run on the `{'`, `'.join(methods)}` signals" if methods else "") + ".")
    edge_row = latest.loc["edge_per_bp"] if "edge_per_bp" in latest.index else None
    if edge_row is not None and edge_row["value"] <= 0:
        st.warning(f"The policy is abstaining: the signal's edge is not distinguishable from zero (measured edge "
                   f"per bp 0 on {edge_row['date']:%Y-%m-%d}), so the book takes no positions on it.",
                   icon=":material/block:")
    shown = pd.DataFrame({
        "constant": order,
        "latest": [float(latest.loc[c, "value"]) for c in order],
        "meaning": [CONSTANTS.get(c, "") for c in order],
        "mean over window": [float(window_mean[c]) for c in order],
        "as of": [latest.loc[c, "date"] for c in order],
    })
    if shown["as of"].nunique() == 1:  # said in the caption
        shown = shown.drop(columns="as of")
    ui.table(shown, fit=True, column_config={c: st.column_config.NumberColumn(format="%.4f")
                                             for c in ("latest", "mean over window")})
    wide = constants.pivot_table(index="date", columns="constant", values="value", aggfunc="last").reset_index()
    left, right = st.columns(2)
    with left:
        st.caption("Edge per bp and holding horizon")
        if not {"edge_per_bp", "holding_horizon_days"} & set(wide.columns):
            ui.not_available("The edge and holding horizon")
        else:
            base = alt.Chart(wide).encode(x=alt.X("date:T", title=None))
            layers = []
            for col, title, color, extra in (
                ("edge_per_bp", "edge (bps per bp of expected return)", "#1f77b4", {}),
                ("holding_horizon_days", "holding horizon (days)", "#ff7f0e", {"interpolate": "step-after"}),
            ):
                if col in wide:
                    layers.append(base.mark_line(color=color, **extra).encode(
                        y=alt.Y(f"{col}:Q", title=title,
                                axis=alt.Axis(titleColor=color, orient="right" if layers else "left")),
                        tooltip=[alt.Tooltip("date:T"), alt.Tooltip(f"{col}:Q", format=".3f")],
                    ))
            ui.show_chart(alt.layer(*layers).resolve_scale(y="independent").properties(height=260))
    with right:
        st.caption("Where the spreads come from (share of tradable names)")
        shares = constants[constants["constant"].isin(SPREAD_SOURCES)]
        if shares.empty:
            ui.not_available("The spread sources")
        else:
            shares = shares.assign(source=shares["constant"].map(SPREAD_SOURCES))[["date", "source", "value"]]
            ui.show_chart(ui.line(shares.rename(columns={"value": "share"}), "date", "share", "source",
                                  y_title="share of tradable names", y_format=".0%", height=260))

comparison = read.get("ensemble_comparison")
if comparison is not None and len(comparison):
    st.subheader("Ensembles and policies side by side")
    st.caption("The policy columns (Sharpe, drawdown, turnover) are filled for the chosen ensemble, the naive "
               "and the oracle book; `compare_methods: all` in config/policy.yaml backtests every ensemble method.")
    numeric = [c for c in comparison.columns if pd.api.types.is_float_dtype(comparison[c])]
    ui.table(comparison,
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in numeric})

with st.expander("Daily rows"):
    ui.table(df.sort_values("date", ascending=False))
