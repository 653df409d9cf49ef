"""A populated data directory for the app's tests and screenshots, without running the pipeline.

`build_demo_data_dir(root)` generates a small synthetic market (`ml.market.write_market`), publishes a
stand-in labels mart and one feature mart, and writes the tables later stages produce - `ml.predictions`,
`ml.signals`, `ml.positions`, `ml.backtest_daily`, `ml.model_registry`, `ml.model_events`,
`ml.model_status_daily`, `ml.ensemble_weights`, `ml.ensemble_comparison`, `ml.policy_constants`, `ml.run_log`,
`ml.feature_drift`, `quality.gx_results` and the feature research marts `research.*` (`write_research`) - plus
dbt's run_results.json and the saved report, directly with DuckDB.

The numbers are synthetic but consistent: model scores are noisy views of the realized label, the
signals are the ensemble z-score scaled to the label's spread (in bps, with 80% intervals), positions
follow the signals with partial rebalancing and the backtest is those positions on the market's returns.
`write_ml_tables(paths)` alone fills an existing data directory that has raw prices and labels.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml.evaluation import BEST_SINGLE_WALK_FORWARD  # noqa: E402
from ml.paths import DataPaths  # noqa: E402

MODELS = (
    # family, view, strength (signal-to-noise of the score vs the label)
    ("ridge", "price_momentum", 0.018),
    ("lightgbm", "sector_neutral", 0.03),
    ("xgboost", "fundamental", 0.025),
    ("extra_trees", "microstructure", 0.015),
    ("mlp", "alt_data", 0.02),
    ("elastic_net", "all", 0.028),
    ("lightgbm", "alt_data", 0.012),  # the weak one that gets retired
)
COST_BPS = 6.0


def _frames_from_prices(paths: DataPaths) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    prices = pd.read_parquet(paths.raw_table("prices"), columns=["date", "symbol", "close"])
    close = prices.pivot(index="date", columns="symbol", values="close").sort_index()
    close.index = pd.to_datetime(close.index)
    secs = pd.read_parquet(paths.raw_table("securities"), columns=["symbol", "sector"]).set_index("symbol")
    sector = secs["sector"].reindex(close.columns).fillna("unknown")
    return close, close.pct_change(fill_method=None), sector


def write_features(paths: DataPaths) -> None:
    """A stand-in labels mart (forward returns, raw and sector-neutral) and a small price_momentum mart."""
    close, ret, sector = _frames_from_prices(paths)
    paths.features.mkdir(parents=True, exist_ok=True)
    out = {}
    for h in (1, 5, 21):
        fwd = close.shift(-h) / close - 1.0
        out[f"fwd_ret_{h}d"] = fwd
        out[f"fwd_ret_sn_{h}d"] = fwd - fwd.T.groupby(sector).transform("mean").T
    labels = pd.concat({k: v.stack(future_stack=True) for k, v in out.items()}, axis=1)
    labels.index.names = ["date", "symbol"]
    labels = labels.reset_index()[["symbol", "date", *out]]
    labels = labels[labels["symbol"].isin(close.columns)]
    labels.assign(date=labels["date"].dt.date).to_parquet(paths.features / "labels.parquet", index=False)
    mom = pd.concat({
        "ret_5d": close / close.shift(5) - 1.0,
        "ret_21d": close / close.shift(21) - 1.0,
        "vol_21d": ret.rolling(21).std(),
    }, axis=1).stack(level=1, future_stack=True)
    mom.index.names = ["date", "symbol"]
    mom = mom.reset_index()
    mom = mom.dropna(subset=["ret_5d", "ret_21d", "vol_21d"], how="all")
    mom[["symbol", "date", "ret_5d", "ret_21d", "vol_21d"]].assign(date=mom["date"].dt.date).to_parquet(
        paths.features / "price_momentum.parquet", index=False)


def _zscore(frame: pd.DataFrame) -> pd.DataFrame:
    sd = frame.std(axis=1).replace(0, np.nan)
    return frame.sub(frame.mean(axis=1), axis=0).div(sd, axis=0)


def _long(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    out = frame.stack(future_stack=True).rename(name).reset_index()
    out.columns = ["date", "symbol", name]
    return out


def write_ml_tables(paths: DataPaths, seed: int = 0, oos_fraction: float = 0.55) -> dict:
    """Write the `ml.*` tables (see the module docstring); returns headline numbers for the report."""
    rng = np.random.default_rng(seed)
    close, ret, sector = _frames_from_prices(paths)
    labels = pd.read_parquet(paths.features / "labels.parquet", columns=["symbol", "date", "fwd_ret_sn_5d"])
    label = labels.assign(date=pd.to_datetime(labels["date"])).pivot(
        index="date", columns="symbol", values="fwd_ret_sn_5d").reindex(index=close.index, columns=close.columns)
    dates = close.index
    oos = dates[int(len(dates) * (1 - oos_fraction)):]
    live = close.loc[oos].notna()
    zlab = _zscore(label.loc[oos])  # NaN at the end (no realized label yet)
    zlab_filled = zlab.fillna(0.0)
    decay_at = oos[len(oos) // 2]

    # -- predictions + registry + events
    scores, registry, events = {}, [], []
    now = datetime(2026, 11, 1, 12, 0, 0)
    for k, (family, view, strength) in enumerate(MODELS):
        model_id = f"{family}-{view}-{k:02d}"
        s = strength * np.ones(len(oos))
        if k == len(MODELS) - 1:
            s = np.where(oos >= decay_at, 0.0, 0.015)
        noise = rng.standard_normal(zlab.shape)
        score = pd.DataFrame(s[:, None] * zlab_filled.to_numpy() + noise, index=oos, columns=close.columns)
        score = score.where(live)
        scores[model_id] = score
        rank_ic = float(score.rank(axis=1).corrwith(label.loc[oos].rank(axis=1), axis=1).mean())
        status = "retired" if k == len(MODELS) - 1 else ("candidate" if k == len(MODELS) - 2 else "active")
        registry.append({
            "model_id": model_id, "family": family, "view": view,
            "features": json.dumps([f"{view}__f{i}" for i in range(3)]),
            "feature_versions": json.dumps({view: f"sha-{k}"}), "params": json.dumps({"alpha": 1.0}),
            "target": json.dumps({"label": "fwd_ret_sn_5d"}), "cv": json.dumps({"scheme": "walk_forward"}),
            "layout": None, "train_start": dates[0].date(), "train_end": oos[0].date(),
            "oos_start": oos[0].date(), "oos_end": oos[-1].date(), "data_hash": "demo", "seed": seed,
            "artifact_path": f"artifacts/models/{model_id}", "artifact_format": "json", "artifact_sha256": "0" * 64,
            "metrics": json.dumps({"rank_ic": rank_ic, "icir": rank_ic * 8.0, "hit_rate": 0.5 + rank_ic}),
            "status": status, "note": None, "created_at": now, "updated_at": now,
        })
        events.append({"event_at": now - timedelta(days=30), "model_id": model_id, "from_status": None,
                       "to_status": "candidate", "reason": "registered after walk-forward training"})
        if status in ("active", "retired"):
            events.append({"event_at": now - timedelta(days=29), "model_id": model_id, "from_status": "candidate",
                           "to_status": "active", "reason": f"OOS rank IC {rank_ic:.3f} above the promotion bar"})
        if status == "retired":
            events.append({"event_at": now - timedelta(days=2), "model_id": model_id, "from_status": "active",
                           "to_status": "retired", "reason": f"rolling IC below zero since {decay_at:%Y-%m}"})
    predictions = pd.concat([_long(v, "score").assign(model_id=m) for m, v in scores.items()])
    predictions = predictions.dropna(subset=["score"])[["date", "symbol", "model_id", "score"]]

    # -- ensemble, signals
    active = [r["model_id"] for r in registry if r["status"] == "active"]
    ens = _zscore(sum(_zscore(scores[m]).fillna(0.0) for m in active) / len(active)).where(live)
    ens_ic = float(ens.rank(axis=1).corrwith(label.loc[oos].rank(axis=1), axis=1).mean())
    sd_bps = label.loc[oos].std(axis=1).bfill().ffill() * 1e4
    er = ens.mul(max(ens_ic, 0.02) * sd_bps, axis=0)
    half = sd_bps * 1.2816
    signals = _long(er, "expected_return")
    signals["lower"] = _long(er.sub(half, axis=0), "x")["x"].to_numpy()
    signals["upper"] = _long(er.add(half, axis=0), "x")["x"].to_numpy()
    signals["uncertainty"] = _long(ens.abs().mul(0.0) .add(0.3 * sd_bps, axis=0), "x")["x"].to_numpy()
    signals["ensemble_version"] = "stacked-demo01"
    # prob_up (ml/probability.py): a logistic in the ensemble z, as Platt scaling would fit it
    signals["prob_up"] = _long(1.0 / (1.0 + np.exp(-2.0 * max(ens_ic, 0.02) * ens)), "x")["x"].to_numpy()
    signals = signals.dropna(subset=["expected_return"])
    # the calibration's track record (ml.calibration.track_record_scale): 1 in the warm-up, then below it
    first = signals["date"].min()
    signals["track_record_scale"] = np.where(signals["date"] > first + pd.Timedelta(days=90), 0.8, 1.0)

    # -- positions and backtest: top/bottom quintile, partial rebalancing
    target = (ens.rank(axis=1, pct=True) > 0.8).astype(float) - (ens.rank(axis=1, pct=True) <= 0.2).astype(float)
    target = target.div(target.abs().sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    w = np.zeros(target.shape)
    for t in range(len(oos)):
        prev = w[t - 1] if t else np.zeros(target.shape[1])
        w[t] = prev + 0.1 * (target.iloc[t].to_numpy() - prev)
        w[t][np.abs(w[t]) < 1e-4] = 0.0
    weights = pd.DataFrame(w, index=oos, columns=close.columns)
    trades = weights.diff().fillna(weights)
    costs = trades.abs() * COST_BPS / 1e4
    r = ret.loc[oos].fillna(0.0)
    gross = (weights.shift(1).fillna(0.0) * r).sum(axis=1)
    # a little extra drift so the demo equity curve rises (the synthetic scores know the future label)
    gross = gross + 0.0001
    cost = costs.sum(axis=1)
    backtest = pd.DataFrame({
        "date": oos, "gross_return": gross.to_numpy(), "cost": cost.to_numpy(),
        "net_return": (gross - cost).to_numpy(), "gross_exposure": weights.abs().sum(axis=1).to_numpy(),
        "net_exposure": weights.sum(axis=1).to_numpy(), "beta_exposure": 0.05 * weights.sum(axis=1).to_numpy(),
        "turnover": trades.abs().sum(axis=1).to_numpy(), "n_long": (weights > 0).sum(axis=1).to_numpy(),
        "n_short": (weights < 0).sum(axis=1).to_numpy(), "n_trades": (trades.abs() > 0).sum(axis=1).to_numpy(),
    })
    backtest["nav"] = (1 + backtest["net_return"]).cumprod()
    pos = _long(weights, "target_weight")
    pos["trade"] = _long(trades, "x")["x"].to_numpy()
    pos["cost_estimate"] = _long(costs, "x")["x"].to_numpy()
    pos = pos[(pos["target_weight"].abs() > 0) | (pos["trade"].abs() > 0)].copy()
    pos["reason"] = np.where(pos["target_weight"] == 0, "exit",
                             np.where(pos["trade"].abs() > 1e-3, "rebalance", "hold"))
    pos.loc[(pos["target_weight"] != 0) & (pos["trade"] == pos["target_weight"]), "reason"] = "enter"

    # -- ensemble weights (monthly), comparison (the best single model picked with hindsight, and the
    # walk-forward pick the report headlines, a little below it), run log, drift
    hindsight = max(registry, key=lambda r: json.loads(r["metrics"])["rank_ic"])
    hindsight_ic = json.loads(hindsight["metrics"])["rank_ic"]
    walk_forward_ic = 0.9 * hindsight_ic
    months = pd.date_range(oos[0], oos[-1], freq="MS")
    ew = []
    for i, month in enumerate(months):
        raw = np.array([MODELS[k][2] for k in range(len(MODELS))]) + 0.006 * np.sin(i / 5 + np.arange(len(MODELS)))
        raw[-1] = 0.0 if month >= decay_at else raw[-1]
        raw = np.clip(raw, 0, None) / np.clip(raw, 0, None).sum()
        ew += [{"date": month.date(), "model_id": registry[k]["model_id"], "weight": float(raw[k]),
                "method": "stacked"} for k in range(len(MODELS))]
    comparison = pd.DataFrame([
        {"name": "equal", "kind": "ensemble", "chosen": False, "rank_ic": ens_ic * 0.9, "sharpe_net": 1.1},
        {"name": "ic_weighted", "kind": "ensemble", "chosen": False, "rank_ic": ens_ic * 0.95, "sharpe_net": 1.3},
        {"name": "stacked", "kind": "ensemble", "chosen": True, "rank_ic": ens_ic, "sharpe_net": 1.6,
         "brier_score": 0.2485, "brier_skill": 0.006},
        {"name": "naive_decile", "kind": "naive_policy", "chosen": False, "rank_ic": np.nan, "sharpe_net": 0.4},
        {"name": hindsight["model_id"], "kind": "best_single_hindsight", "chosen": False,
         "rank_ic": hindsight_ic, "sharpe_net": np.nan},
        {"name": "best_trailing", "kind": "best_single_walk_forward", "chosen": False,
         "rank_ic": walk_forward_ic, "sharpe_net": np.nan},
    ])
    status_daily = []
    for k, r in enumerate(registry):
        for day in oos[::5]:
            if r["status"] == "retired":
                status = "active" if day < decay_at + pd.Timedelta(days=60) else "retired"
            elif r["status"] == "candidate":
                status = "candidate"
            else:
                status = "promoted" if k == 1 and day >= oos[len(oos) // 3] else "active"
            status_daily.append({"date": day.date(), "model_id": r["model_id"], "status": status,
                                 "multiplier": 1.5 if status == "promoted" else 1.0})
    lineage = []  # one generation per model; the retired one's spec has a successor, a candidate again
    for r in registry:
        retired = r["status"] == "retired"
        lineage.append({"model_id": r["model_id"], "generation": 1, "lineage_id": f"{r['model_id']}#g1",
                        "parent_id": None, "born_at": oos[0].date(),
                        "activated_at": oos[min(126, len(oos) - 1)].date() if r["status"] != "candidate" else None,
                        "retired_at": (decay_at + pd.Timedelta(days=60)).date() if retired else None,
                        "status": r["status"], "rule": "changepoint" if retired else None,
                        "reason": "IC change point: CUSUM 9.1 > threshold 8.0" if retired else None})
        if retired:
            lineage.append({"model_id": r["model_id"], "generation": 2, "lineage_id": f"{r['model_id']}#g2",
                            "parent_id": f"{r['model_id']}#g1", "born_at": (decay_at + pd.Timedelta(days=75)).date(),
                            "activated_at": None, "retired_at": None, "status": "candidate", "rule": None,
                            "reason": None})
    run_log = pd.DataFrame([{
        "run_id": f"run-{i}", "started_at": now - timedelta(days=i), "finished_at": now - timedelta(days=i) +
        timedelta(minutes=4), "status": "success" if i else "running", "seconds": 240.0 + i} for i in range(3)])
    drift = pd.DataFrame([
        {"date": oos[-1].date(), "view": "price_momentum", "feature": f, "psi": v, "drifted": v > 0.2}
        for f, v in (("ret_5d", 0.04), ("ret_21d", 0.11), ("vol_21d", 0.27))
    ])

    constants = policy_constants(oos, backtest["nav"].to_numpy())

    tables = {
        "predictions": predictions.assign(date=predictions["date"].dt.date),
        "signals": signals.assign(date=signals["date"].dt.date),
        "positions": pos.assign(date=pos["date"].dt.date),
        "backtest_daily": backtest.assign(date=backtest["date"].dt.date),
        "model_registry": pd.DataFrame(registry),
        "model_events": pd.DataFrame(events),
        "model_status_daily": pd.DataFrame(status_daily),
        "model_lineage": pd.DataFrame(lineage),
        "ensemble_weights": pd.DataFrame(ew),
        "ensemble_comparison": comparison,
        "policy_constants": constants.assign(date=constants["date"].dt.date),
        "run_log": run_log,
        "feature_drift": drift,
    }
    write_tables(paths, tables)
    net, grs = backtest["net_return"], backtest["gross_return"]
    eq = (1 + net).cumprod()
    return {
        "oos_rank_ic": ens_ic, "oos_ic": ens_ic * 1.1, "icir": ens_ic * 9,
        "best_single_model_rank_ic": walk_forward_ic, "best_single_model": BEST_SINGLE_WALK_FORWARD,
        "best_single_model_rank_ic_hindsight": hindsight_ic, "best_single_model_hindsight": hindsight["model_id"],
        "sharpe_gross": float(grs.mean() / grs.std() * np.sqrt(252)),
        "sharpe_net": float(net.mean() / net.std() * np.sqrt(252)),
        "max_drawdown": float((1 - eq / eq.cummax()).max()),
        "turnover_monthly": float((backtest["turnover"] / 2).groupby(backtest["date"].dt.to_period("M")).sum().mean()),
        "cost_retention": float(net.mean() / grs.mean()),
        "n_model_families": len({r["family"] for r in registry if r["status"] == "active"}),
        "n_models_active": len(active), "n_models_retired": 1,
        "policy_constants": latest_constants(constants),
    }


def policy_constants(oos: pd.DatetimeIndex, nav: np.ndarray, every: int = 10) -> pd.DataFrame:
    """`ml.policy_constants` as the policy stage writes it (date, constant, value, method), on every
    `every`-th out-of-sample date and the last one: a positive edge that drifts, a 5- or 10-day horizon,
    spreads mostly estimated from highs and lows, one relaxed optimizer day."""
    idx = sorted(set(range(0, len(oos), every)) | {len(oos) - 1})
    rows = []
    for i, k in enumerate(idx):
        edge = 0.3 + 0.05 * np.sin(i / 3)
        values = {
            "edge_per_bp": edge, "edge_raw_per_bp": edge * 1.4, "edge_tstat": 3.0 + 0.2 * np.cos(i / 3),
            "holding_horizon_days": 10.0 if i % 4 < 2 else 5.0, "spread_median_bps": 8.0 + 0.1 * i,
            "spread_share_quoted": 0.0, "spread_share_estimated": 0.9 - 0.01 * (i % 3),
            "spread_share_fallback": 0.1 + 0.01 * (i % 3), "risk_aversion": 5.0,
            "realized_risk_scale": 1.0 + 0.02 * np.sin(i), "nav": float(nav[k]),
            "optimizer_relaxed": float(i == 2), "optimizer_fallback": 0.0,
        }
        rows += [{"date": oos[k], "constant": c, "value": float(v), "method": "stacked"} for c, v in values.items()]
    return pd.DataFrame(rows)


def latest_constants(constants: pd.DataFrame) -> dict[str, float]:
    """The report key `policy_constants`: {constant: latest value}."""
    last = constants.sort_values("date").groupby("constant")["value"].last()
    return {str(k): float(v) for k, v in last.items()}


def write_tables(paths: DataPaths, tables: dict[str, pd.DataFrame], schema: str = "ml") -> None:
    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute(f"create schema if not exists {schema}")
        for name, frame in tables.items():
            con.register("_incoming", frame)
            con.execute(f"create or replace table {schema}.{name} as select * from _incoming")
            con.unregister("_incoming")


RESEARCH_LABELS = {"fwd_ret_1d": (1, False), "fwd_ret_5d": (5, False), "fwd_ret_21d": (21, False),
                   "fwd_ret_sn_1d": (1, True), "fwd_ret_sn_5d": (5, True), "fwd_ret_sn_21d": (21, True)}


def write_research(paths: DataPaths, stride: int = 5, cost_bps: float = 10.0, baseline: str = "price_momentum",
                   primary: str = "fwd_ret_sn_5d") -> None:
    """The `research.*` marts of models/research/ with their exact columns, computed here with pandas from the
    demo's labels and two views: price_momentum (its mart) and a small `microstructure` view made from prices.
    Same definitions as the dbt models on every `stride`-th date (rank IC, top-minus-bottom decile spread,
    net of `cost_bps` on the deciles' turnover, year / volatility-state splits, pairwise rank correlation,
    IC after regressing on the baseline's ranks), except that t is the plain one, not Newey-West's."""
    close, ret, _ = _frames_from_prices(paths)
    dates = close.index[::stride]

    def panel(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        wide = frame.assign(date=pd.to_datetime(frame["date"])).pivot(index="date", columns="symbol", values=column)
        return wide.reindex(index=close.index, columns=close.columns).loc[dates]

    labels = pd.read_parquet(paths.features / "labels.parquet")
    label = {name: panel(labels, name) for name in RESEARCH_LABELS}
    mom = pd.read_parquet(paths.features / "price_momentum.parquet")
    feats = {(baseline, f): panel(mom, f) for f in ("ret_5d", "ret_21d", "vol_21d")}
    feats[("microstructure", "reversal_1d")] = -ret.loc[dates]
    feats[("microstructure", "vol_5d")] = ret.rolling(5).std().loc[dates]
    ranks = {k: v.rank(axis=1, pct=True) for k, v in feats.items()}
    n_labelled = pd.Series(np.logical_or.reduce([v.notna().to_numpy() for v in label.values()]).sum(axis=1),
                           index=dates)

    market = ret.mean(axis=1)
    vol = market.rolling(21).std()
    past = vol.expanding().median().shift(1)
    state = pd.Series(np.where(vol.isna() | past.isna(), "unknown", np.where(vol > past, "stressed", "calm")),
                      index=close.index).loc[dates]

    daily = []
    for (view, feat), r in ranks.items():
        decile = np.ceil(r * 10).clip(1, 10) - 1
        prev, prev_decile = r.shift(1), decile.shift(1)
        out = pd.DataFrame({"view_name": view, "feature": feat, "date": dates.date,
                            "n_names": r.notna().sum(axis=1).to_numpy()})
        out["coverage"] = out["n_names"].to_numpy() / n_labelled.clip(lower=1).to_numpy()
        for name, y in label.items():
            both = r.notna() & y.notna()
            ic = r.where(both).rank(axis=1).corrwith(y.where(both).rank(axis=1), axis=1)
            out[f"ic_{name}"] = ic.to_numpy()
            out[f"spread_{name}"] = (y.where(decile == 9).mean(axis=1) - y.where(decile == 0).mean(axis=1)).to_numpy()
        both = r.notna() & prev.notna()
        out["rank_autocorr"] = r.where(both).corrwith(prev.where(both), axis=1).to_numpy()
        for side, d in (("top", 9), ("bottom", 0)):
            now, before = decile == d, prev_decile == d
            known = (now & prev_decile.notna()).sum(axis=1)
            out[f"{side}_turnover"] = ((now & ~before).sum(axis=1) / now.sum(axis=1)).where(known > 0).to_numpy()
        daily.append(out)
    daily = pd.concat(daily, ignore_index=True)

    long = pd.concat([daily[["view_name", "feature", "date", "top_turnover", "bottom_turnover"]].assign(
        label=name, horizon=h, sector_neutral=neutral, ic=daily[f"ic_{name}"], spread=daily[f"spread_{name}"])
        for name, (h, neutral) in RESEARCH_LABELS.items()], ignore_index=True)
    long["net_spread"] = long["spread"] - 2 * cost_bps / 1e4 * (long["top_turnover"] + long["bottom_turnover"])
    g = long.groupby(["view_name", "feature", "label"], sort=True)
    summary = g.agg(horizon=("horizon", "first"), sector_neutral=("sector_neutral", "first"), n_dates=("ic", "count"),
                    mean_ic=("ic", "mean"), ic_sd=("ic", "std"),
                    hit_rate=("ic", lambda s: float((s.dropna() > 0).mean())), spread=("spread", "mean"),
                    net=("net_spread", "mean")).reset_index()
    summary["icir"] = summary["mean_ic"] / summary["ic_sd"]
    summary["ic_t"] = summary["icir"] * np.sqrt(summary["n_dates"])
    summary["spread_bps"] = summary["spread"] * 1e4
    summary["net_spread_ann"] = np.where(summary["horizon"] == stride, summary["net"] * 252 / stride, np.nan)
    per_feature = daily.assign(turnover=(daily["top_turnover"] + daily["bottom_turnover"]) / 2).groupby(
        ["view_name", "feature"]).agg(mean_names=("n_names", "mean"), coverage=("coverage", "mean"),
                                      rank_autocorr=("rank_autocorr", "mean"), turnover=("turnover", "mean"))
    summary = summary.merge(per_feature.reset_index(), on=["view_name", "feature"])[[
        "view_name", "feature", "label", "horizon", "sector_neutral", "n_dates", "mean_ic", "ic_sd", "icir", "ic_t",
        "hit_rate", "mean_names", "coverage", "rank_autocorr", "turnover", "spread_bps", "net_spread_ann"]]
    summary["horizon"] = summary["horizon"].astype("int32")

    periods = pd.DataFrame({"date": dates.date, "year": dates.year.astype(str), "vol_state": state.to_numpy()})
    split = long.merge(periods, on="date")
    stability = pd.concat([split.assign(split=key, period=split[key]) for key in ("year", "vol_state")]).groupby(
        ["view_name", "feature", "label", "split", "period"]).agg(
        n_dates=("ic", "count"), mean_ic=("ic", "mean"), ic_sd=("ic", "std"),
        hit_rate=("ic", lambda s: float((s.dropna() > 0).mean()))).reset_index()

    keys = list(ranks)
    total, count = np.zeros((len(keys), len(keys))), np.zeros((len(keys), len(keys)))
    for t in dates:
        c = pd.DataFrame({i: ranks[k].loc[t] for i, k in enumerate(keys)}).corr(min_periods=10).to_numpy()
        total += np.nan_to_num(c)
        count += np.isfinite(c)
    mean_corr = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    a, b = np.nonzero(~np.eye(len(keys), dtype=bool))
    correlation = pd.DataFrame({"view_a": [keys[i][0] for i in a], "feature_a": [keys[i][1] for i in a],
                                "view_b": [keys[j][0] for j in b], "feature_b": [keys[j][1] for j in b],
                                "corr": mean_corr[a, b], "n_dates": count[a, b].astype("int64")})
    correlation["same_view"] = correlation["view_a"] == correlation["view_b"]

    base_keys = [k for k in keys if k[0] == baseline]
    resid_ic = {k: [] for k in keys if k[0] != baseline}
    y = label[primary]
    for t in dates:
        x = pd.DataFrame({k: ranks[k].loc[t] for k in base_keys})
        for k in resid_ic:
            frame = pd.concat([x, ranks[k].loc[t].rename("f"), y.loc[t].rename("y")], axis=1).dropna()
            if len(frame) < 10:
                resid_ic[k].append(np.nan)
                continue
            design = np.column_stack([np.ones(len(frame)), frame[base_keys].to_numpy()])
            beta = np.linalg.lstsq(design, frame["f"].to_numpy(), rcond=None)[0]
            resid = pd.Series(frame["f"].to_numpy() - design @ beta, index=frame.index)
            resid_ic[k].append(resid.rank().corr(frame["y"].rank()))
    raw = summary[summary["label"] == primary][["view_name", "feature", "label", "mean_ic", "ic_t"]]
    orth = pd.DataFrame([{"view_name": k[0], "feature": k[1], "orthogonal_ic": np.nanmean(v),
                          "orthogonal_ic_t": np.nanmean(v) / np.nanstd(v, ddof=1) * np.sqrt(np.isfinite(v).sum())}
                         for k, v in resid_ic.items()])
    orthogonality = raw.merge(orth, on=["view_name", "feature"], how="left")
    orthogonality.insert(3, "is_baseline", orthogonality["view_name"] == baseline)
    orthogonality["orthogonal_share"] = orthogonality["orthogonal_ic"] / orthogonality["mean_ic"].replace(0, np.nan)

    rows = []
    for view, f in orthogonality.groupby("view_name"):
        best = f.loc[f["ic_t"].abs().idxmax()]
        c = correlation[correlation["view_a"] == view]
        has_orth = f["orthogonal_ic"].notna()
        across_base = c.loc[(c["view_b"] == baseline) & ~c["same_view"], "corr"].abs()
        rows.append({
            "view_name": view, "n_features": len(f), "n_significant": int((f["ic_t"].abs() >= 2).sum()),
            "mean_abs_ic": f["mean_ic"].abs().mean(), "best_feature": best["feature"], "best_ic": best["mean_ic"],
            "best_ic_t": abs(best["ic_t"]), "is_baseline": bool(f["is_baseline"].any()),
            "mean_abs_orthogonal_ic": f["orthogonal_ic"].abs().mean(),
            "orthogonal_share": (f["orthogonal_ic"].abs().sum() / f.loc[has_orth, "mean_ic"].abs().sum()
                                 if has_orth.any() else np.nan),
            "mean_abs_corr_within": c.loc[c["same_view"], "corr"].abs().mean(),
            "mean_abs_corr_across": c.loc[~c["same_view"], "corr"].abs().mean(),
            "max_abs_corr_baseline": across_base.max() if len(across_base) else np.nan,
        })
    write_tables(paths, {
        "research_feature_daily": daily, "research_feature_summary": summary,
        "research_feature_stability": stability, "research_feature_correlation": correlation,
        "research_feature_orthogonality": orthogonality, "research_view_summary": pd.DataFrame(rows),
    }, schema="research")


def write_quality(paths: DataPaths) -> None:
    """Two GX runs in `quality.gx_results` (the latest with one failed warning and one quarantined column, also
    in `quality.quarantine`) and dbt's run_results.json."""
    from ml.data import quarantine
    from ml.quality import RESULT_COLUMNS, write_results

    rows = []
    for run, at, fail in (("gx-demo-1", datetime(2026, 10, 31, 9), False), ("gx-demo-2", datetime(2026, 11, 1, 9), True)):
        for view in ("price_momentum", "labels"):
            for rule, sev in (("keys_not_null", "critical"), ("freshness", "critical"), ("null_rate", "critical"),
                              ("not_constant", "warning")):
                ok = not (fail and view == "price_momentum" and rule == "not_constant")
                rows.append({"run_id": run, "run_at": at, "view": view, "rule": rule, "severity": sev,
                             "expectation": f"expect_{rule}", "column_name": "ret_5d", "success": ok,
                             "observed_value": "0.0" if ok else "stdev 0", "details": "{}"})
    rows.append({"run_id": "gx-demo-2", "run_at": datetime(2026, 11, 1, 9), "view": "alt_data", "rule": "null_rate",
                 "severity": "quarantine", "expectation": "aurora.null_rate", "column_name": "cp_iv_spread",
                 "success": False, "observed_value": "recent window: null rate 62.0% vs 3.0% in the reference",
                 "details": "{}"})
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    write_results(paths, results, quarantined=quarantine.from_results(results))
    target = paths.root / "dbt" / "target"
    target.mkdir(parents=True, exist_ok=True)
    results = [{"unique_id": f"model.aurora.{m}", "status": "success", "execution_time": 0.1, "message": "OK",
                "failures": None} for m in ("stg_prices", "labels", "price_momentum")]
    results += [{"unique_id": f"test.aurora.not_null_{m}_symbol.abc{i}", "status": "pass", "execution_time": 0.02,
                 "message": None, "failures": 0} for i, m in enumerate(("stg_prices", "labels", "price_momentum"))]
    results += [{"unique_id": "test.aurora.accepted_range_price_momentum_ret_5d.def", "status": "warn",
                 "execution_time": 0.03, "message": "Got 2 results, configured to warn if != 0", "failures": 2},
                {"unique_id": "unit_test.aurora.labels.forward_returns_use_future_closes_only", "status": "pass",
                 "execution_time": 0.2, "message": None, "failures": 0}]
    (target / "run_results.json").write_text(json.dumps({
        "metadata": {"dbt_version": "1.11.16", "generated_at": "2026-11-01T09:00:00Z"},
        "results": results, "elapsed_time": 12.5, "args": {"invocation_command": "dbt build"}}))


def build_demo_data_dir(root: str | Path, n_symbols: int = 24, n_days: int = 320, seed: int = 3,
                        features: bool = True, quality: bool = True, research: bool = True) -> DataPaths:
    """A complete small data directory (see the module docstring)."""
    from ml.market import MarketConfig, write_market
    from ml.report import update_saved_report

    paths = DataPaths(Path(root).resolve())
    write_market(MarketConfig(n_symbols=n_symbols, n_days=n_days, seed=seed), paths.raw)
    if features:
        write_features(paths)
    headline = write_ml_tables(paths, seed=seed)
    if quality:
        write_quality(paths)
    if features and research:
        write_research(paths)
    update_saved_report(
        paths, **headline, coverage_80=0.79, calibration_error=0.043, n_feature_views=1 if features else 0,
        feature_views=["price_momentum"] if features else [], ensemble_method="stacked",
        timings_s={"dbt_build": 12.5, "quality_gate": 6.1, "feast_apply": 3.2, "feast_materialize": 1.4,
                   "train": 41.0, "backtest": 7.5, "total": 72.3},
    )
    return paths


if __name__ == "__main__":  # python tests/app_fixtures.py DIR [--existing]
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--existing", action="store_true",
                        help="only add the ml tables (+ report keys) to a data dir that has raw/ and features/")
    parser.add_argument("--symbols", type=int, default=24)
    parser.add_argument("--days", type=int, default=320)
    args = parser.parse_args()
    if args.existing:
        from ml.report import update_saved_report

        p = DataPaths(Path(args.root).resolve())
        update_saved_report(p, **write_ml_tables(p), coverage_80=0.79, calibration_error=0.043)
    else:
        build_demo_data_dir(args.root, n_symbols=args.symbols, n_days=args.days)
    print(f"wrote {args.root}")
