"""Side by side: the three ensembles, our cost-aware policy, a naive policy and the oracle policy;
and the backtest stage that writes `ml.signals`, `ml.positions`, `ml.backtest_daily` and
`ml.ensemble_comparison`.

The oracle (synthetic market only) is read here and only here, after the production path has
produced its signals, positions and backtest: its expected returns go through the same policy,
calibration-free, as a yardstick of what the policy could earn with perfect signals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ml import ensemble as ens
from ml import policy as pol
from ml.backtest import MarketPanel, backtest_daily, forward_label, horizon_scale, market_panel, performance
from ml.calibration import Calibrator, calibration_error, interval_coverage
from ml.metrics import daily_ic, hit_rate, ic_summary
from ml.paths import DataPaths

Log = Callable[[str], None]
SCHEMA = "ml"
SIGNAL_COLUMNS = ["date", "symbol", "expected_return", "lower", "upper", "uncertainty", "ensemble_version"]


# ================================================================================ pieces
def score_metrics(score: pd.Series, label: pd.Series, horizon: int = 5) -> dict[str, float]:
    """Rank IC, Pearson IC, ICIR, t-stat (overlap-corrected) and hit rate of a (date, symbol) score."""
    frame = pd.DataFrame({"s": score, "y": label.reindex(score.index)}).dropna().reset_index()
    if frame.empty:
        return {"rank_ic": float("nan"), "ic": float("nan"), "icir": float("nan"), "t_stat": float("nan"),
                "hit_rate": float("nan"), "n_days": 0}
    rank = daily_ic(frame, "s", "y", "spearman")
    pearson = daily_ic(frame, "s", "y", "pearson")
    summary = ic_summary(rank, horizon=horizon)
    return {"rank_ic": summary["mean"], "ic": float(pearson.mean()), "icir": summary["icir"],
            "t_stat": summary["t_stat"], "hit_rate": hit_rate(rank), "n_days": int(summary["n"])}


def calibrate(result: ens.EnsembleResult, label: pd.Series, market: MarketPanel, calibrator: Calibrator,
              ) -> pd.DataFrame:
    """`ml.signals` rows (date, symbol, expected_return, lower, upper, uncertainty, ensemble_version)
    from an ensemble: walk-forward calibration, intervals scaled by each name's trailing volatility."""
    out = calibrator.fit_predict(result.score, label, horizon_scale(market, calibrator.horizon),
                                 result.dispersion)
    out = out.drop(columns=["x"]).reset_index()
    out["ensemble_version"] = result.version
    return out[SIGNAL_COLUMNS]


def signal_metrics(signals: pd.DataFrame, label: pd.Series) -> dict[str, float]:
    frame = signals.set_index(["date", "symbol"])
    return {"coverage_80": interval_coverage(frame, label), "calibration_error": calibration_error(frame, label)}


@dataclass
class PolicyRun:
    name: str
    result: pol.PolicyResult
    daily: pd.DataFrame
    metrics: dict[str, float]


def run_policy(name: str, policy: pol.Policy, signals: pd.DataFrame, market: MarketPanel,
               start: int | None = None) -> PolicyRun:
    """Positions and the daily backtest of one policy on one set of signals."""
    panel = pol.SignalPanel.from_frame(signals, market)
    start = panel.first_date() if start is None else start
    result = policy.run(panel, market, start=start)
    daily = backtest_daily(result.weights, result.trades, result.costs, market, start=start)
    return PolicyRun(name, result, daily, performance(daily, market, result.weights))


def calibrator_from_config(cfg: Mapping[str, Any]) -> Calibrator:
    return Calibrator(horizon=int(cfg["horizon"]), **(cfg.get("calibration") or {}))


# ================================================================================ side by side
@dataclass
class Comparison:
    """Everything one evaluation run produced: the chosen ensemble's signals and policy run, the
    other ensembles' metrics and policy runs, and the naive and oracle policy runs."""

    chosen: str
    panel: pd.DataFrame
    ensembles: dict[str, ens.EnsembleResult]
    signals: dict[str, pd.DataFrame]
    runs: dict[str, PolicyRun]
    table: pd.DataFrame
    best_single: tuple[str, float]


def compare(
    predictions: pd.DataFrame,
    market: MarketPanel,
    ensemble_cfg: Mapping[str, Any],
    policy_cfg: Mapping[str, Any],
    oracle: pd.DataFrame | None = None,
    families: Mapping[str, str] | None = None,
    active: list[str] | None = None,
    log: Log = print,
    label: pd.Series | None = None,
) -> Comparison:
    """Build all three ensembles, calibrate each, run the cost-aware policy on each, the naive policy
    on the chosen one and, when `oracle` is given (evaluation only), the same policy on the oracle's
    expected returns over the same dates. Returns the comparison table (one row per variant).
    `label`: the realized forward return the ensembles and calibration learn from (default: from the
    market's closes, sector-neutral)."""
    horizon = int(ensemble_cfg["horizon"])
    if label is None:
        label = forward_label(market, horizon, "sector")
    started = time.perf_counter()
    panel, results = ens.ensembles_from_config(predictions, label, ensemble_cfg, families=families, active=active)
    log(f"[backtest] {panel.shape[1]} models, {len(panel):,} rows; ensembles built in "
        f"{time.perf_counter() - started:.1f}s")
    chosen = ensemble_cfg["method"]
    calibrator = calibrator_from_config(ensemble_cfg)
    policy = pol.policy_from_config(policy_cfg)
    signals, runs, rows = {}, {}, []
    for method, result in results.items():
        t0 = time.perf_counter()
        signals[method] = calibrate(result, label, market, calibrator)
        runs[method] = run_policy(method, policy, signals[method], market)
        row = {"name": method, "kind": "ensemble", "chosen": method == chosen, "version": result.version,
               **score_metrics(result.score, label, horizon), **signal_metrics(signals[method], label),
               **_policy_cols(runs[method].metrics)}
        rows.append(row)
        log(f"[backtest] {method:<12} rank IC {row['rank_ic']:+.4f}  ICIR {row['icir']:.3f}  coverage "
            f"{row['coverage_80']:.3f}  cal.err {row['calibration_error']:.3f}  Sharpe net "
            f"{row['sharpe_net']:.2f}  ({time.perf_counter() - t0:.1f}s)")
    start = runs[chosen].result.start
    single_ic = ens.daily_rank_ic(panel, label).mean()  # every model at once; full metrics for the best only
    best = str(single_ic.fillna(-np.inf).idxmax())
    best_metrics = score_metrics(panel[best].dropna(), label, horizon)
    rows.append({"name": best, "kind": "best_single_hindsight", "chosen": False, "version": "", **best_metrics})
    picked = ens.build_ensemble(panel, label, ens.BestTrailing(horizon=horizon), method="best_trailing")
    rows.append({"name": "best_trailing", "kind": "best_single_walk_forward", "chosen": False, "version": "",
                 **score_metrics(picked.score, label, horizon)})
    runs["naive"] = run_policy("naive", pol.naive_from_config(policy_cfg), signals[chosen], market, start=start)
    rows.append({"name": "naive_decile", "kind": "naive_policy", "chosen": False,
                 "version": results[chosen].version, **_policy_cols(runs["naive"].metrics)})
    if oracle is not None:
        osig = pol.oracle_signals(oracle)
        dates = pd.DatetimeIndex(signals[chosen]["date"].unique())
        osig = osig[osig.index.get_level_values("date").isin(dates)]
        runs["oracle"] = run_policy("oracle", policy, osig, market, start=start)
        oracle_score = osig["expected_return"]
        rows.append({"name": "oracle", "kind": "oracle_policy", "chosen": False, "version": "",
                     **score_metrics(oracle_score, label, horizon), **_policy_cols(runs["oracle"].metrics)})
    table = pd.DataFrame(rows)
    return Comparison(chosen=chosen, panel=panel, ensembles=results, signals=signals, runs=runs, table=table,
                      best_single=(best, float(best_metrics["rank_ic"])))


def _policy_cols(m: Mapping[str, float]) -> dict[str, float]:
    keys = ("sharpe_gross", "sharpe_net", "ann_return_net", "ann_vol", "max_drawdown", "turnover_monthly",
            "cost_retention", "gross_exposure")
    out = {k: m.get(k, float("nan")) for k in keys}
    out["hit_rate_days"] = m.get("hit_rate", float("nan"))
    return out


def format_table(table: pd.DataFrame) -> str:
    """The comparison as a fixed-width text table (for logs and BENCHMARKS.md)."""
    cols = ["name", "kind", "rank_ic", "icir", "coverage_80", "calibration_error", "sharpe_gross", "sharpe_net",
            "max_drawdown", "turnover_monthly", "cost_retention", "ann_return_net", "ann_vol"]
    view = table.reindex(columns=cols)
    return view.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")


# ================================================================================ the stage
def load_label(paths: DataPaths, market: MarketPanel, cfg: Mapping[str, Any]) -> tuple[pd.Series, str]:
    """The realized forward return the ensembles are weighted and calibrated on, and where it came
    from: the project's label mart (`features/labels.parquet`, column `label.column`, default the
    sector-neutral `fwd_ret_sn_<h>d` the zoo is trained and scored on) when present, else the same
    quantity from raw closes (minus the equal-weighted sector mean).

    With `label.demean` (default) the label is taken relative to its cross-sectional mean of the day:
    that is what a dollar- and sector-neutral book earns, and the day's common level (e.g. small caps
    against cap-weighted sector ETFs) is something no cross-sectional model forecasts; calibrating to
    it would only add a drifting bias to every expected return."""
    horizon = int(cfg["horizon"])
    spec = dict(cfg.get("label") or {})
    column = spec.get("column") or f"fwd_ret_sn_{horizon}d"
    path = paths.features / "labels.parquet"
    if spec.get("source", "features") == "features" and path.exists():
        import pyarrow.parquet as pq

        if column in pq.read_schema(path).names:
            frame = pd.read_parquet(path, columns=["date", "symbol", column])
            index = pd.MultiIndex.from_arrays([pd.to_datetime(frame["date"]), frame["symbol"].astype(str)],
                                              names=["date", "symbol"])
            out = pd.Series(frame[column].to_numpy(dtype="float64"), index=index, name=column).dropna()
            out = out.sort_index()
            if spec.get("demean", True):
                out = out - out.groupby(level="date").transform("mean")
            return out, f"features/labels.parquet:{column}" + (" (demeaned per date)" if spec.get("demean", True) else "")
    return forward_label(market, horizon, "sector"), "raw closes, minus sector means"
def read_predictions(paths: DataPaths) -> tuple[pd.DataFrame, dict[str, str], list[str] | None]:
    """`ml.predictions` as a wide score panel (index date, symbol; one column per model; DuckDB codes
    the keys and the rows are scattered into one array, so the long table never sits in pandas),
    {model_id: family}, and the ids usable by the ensemble. With the lifecycle's
    `ml.model_status_daily`, each model's scores are kept only on dates when it was active or
    promoted (point in time) and the ids are None; otherwise the registry's active models, else every
    non-retired one (None: no registry)."""
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        try:
            reg = con.execute(f"select model_id, family, status from {SCHEMA}.model_registry").df()
        except duckdb.CatalogException:
            reg = pd.DataFrame(columns=["model_id", "family", "status"])
        try:
            status_daily = con.execute(
                f"select date, model_id, multiplier from {SCHEMA}.model_status_daily").df()
        except duckdb.CatalogException:
            status_daily = None
        # integer codes for models and (date, symbol) keys, then one scatter into a dense array
        con.execute(f"create temp table _models as select model_id, (row_number() over (order by model_id) - 1)"
                    f"::integer as mi from (select distinct model_id from {SCHEMA}.predictions)")
        con.execute(f"create temp table _keys as select date, symbol, (row_number() over (order by date, symbol) "
                    f"- 1)::integer as ki from (select distinct date, symbol from {SCHEMA}.predictions)")
        cells = con.execute(f"select _keys.ki, _models.mi, p.score from {SCHEMA}.predictions p "
                            "join _models using (model_id) join _keys using (date, symbol)").fetchnumpy()
        keys = con.execute("select date, symbol from _keys order by ki").df()
        models = [r[0] for r in con.execute("select model_id from _models order by mi").fetchall()]
    finally:
        con.close()
    values = np.full((len(keys), len(models)), np.nan)
    values[np.asarray(cells["ki"]), np.asarray(cells["mi"])] = np.ma.filled(
        np.ma.asarray(cells["score"], dtype="float64"), np.nan)
    index = pd.MultiIndex.from_arrays([pd.to_datetime(keys["date"]), keys["symbol"].astype(str)],
                                      names=["date", "symbol"])
    panel = pd.DataFrame(values, index=index, columns=[str(m) for m in models])
    families = dict(zip(reg["model_id"].astype(str), reg["family"].astype(str), strict=True))
    if status_daily is not None and len(status_daily):
        # point-in-time lifecycle: a model's scores count only on dates when it was active or promoted
        # (today's registry status would select models with hindsight)
        from ml.lifecycle import multiplier_panel

        usable = multiplier_panel(status_daily, dates=panel.index.get_level_values("date").unique(),
                                  models=panel.columns)
        mask = usable.reindex(panel.index.get_level_values("date")).to_numpy() > 0
        panel = panel.where(mask)
        return panel, families, None
    if reg.empty:
        return panel, families, None
    active = reg.loc[reg["status"].isin(["active", "promoted"]), "model_id"].astype(str).tolist()
    if not active:
        active = reg.loc[reg["status"] != "retired", "model_id"].astype(str).tolist()
    return panel, families, active


def write_tables(paths: DataPaths, tables: Mapping[str, pd.DataFrame]) -> None:
    """Replace `ml.<name>` by each frame in one transaction: a failure leaves every previous table."""
    con = duckdb.connect(str(paths.warehouse))
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        for name, frame in tables.items():
            con.register(f"_incoming_{name}", frame)
        con.execute("begin transaction")
        try:
            for name in tables:
                con.execute(f"create or replace table {SCHEMA}.{name} as select * from _incoming_{name}")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(date=pd.to_datetime(frame["date"]).dt.date)


def run_backtest_stage(paths: DataPaths, log: Log = print, ensemble_config=None, policy_config=None,
                       ) -> dict[str, Any]:
    """Read predictions (+ registry statuses) and raw prices/securities, build and compare the
    ensembles, calibrate the configured one, run the policy and the backtest, write `ml.signals`,
    `ml.positions`, `ml.backtest_daily` and `ml.ensemble_comparison` atomically and return the
    report keys (see DESIGN.md) plus comparison extras."""
    started = time.perf_counter()
    ecfg, pcfg = ens.load_config(ensemble_config), pol.load_config(policy_config)
    preds, families, active = read_predictions(paths)
    if preds.empty or preds.shape[1] == 0:
        raise ValueError(f"ml.predictions is empty in {paths.warehouse}: train the zoo first")
    prices = pd.read_parquet(paths.raw_table("prices"))
    securities = pd.read_parquet(paths.raw_table("securities")) if paths.raw_table("securities").exists() else None
    market = market_panel(prices, securities)
    log(f"[backtest] market {len(market.dates)} days x {len(market.symbols)} symbols; "
        f"{preds.shape[1]} models in ml.predictions, "
        f"{'all' if active is None else len(active)} usable")
    label, label_source = load_label(paths, market, ecfg)
    log(f"[backtest] label: {label_source}")
    oracle_path = paths.oracle / "expected_returns.parquet"
    oracle = pd.read_parquet(oracle_path, columns=["date", "symbol", "er_5d"]) if oracle_path.exists() else None
    comp = compare(preds, market, ecfg, pcfg, oracle=oracle, families=families, active=active, log=log,
                   label=label)
    chosen = comp.chosen
    run = comp.runs[chosen]
    daily = run.daily.assign(nav=(1.0 + run.daily["net_return"]).cumprod())
    table = comp.table.copy()
    write_tables(paths, {
        "signals": _dated(comp.signals[chosen]),
        "positions": _dated(run.result.positions_frame(market)),
        "backtest_daily": _dated(daily),
        "ensemble_comparison": table,
    })
    row = table.set_index("name").loc[chosen]
    m = run.metrics
    report = {
        "oos_rank_ic": float(row["rank_ic"]), "oos_ic": float(row["ic"]), "icir": float(row["icir"]),
        "sharpe_gross": m["sharpe_gross"], "sharpe_net": m["sharpe_net"], "max_drawdown": m["max_drawdown"],
        "turnover_monthly": m["turnover_monthly"], "cost_retention": m["cost_retention"],
        "coverage_80": float(row["coverage_80"]), "calibration_error": float(row["calibration_error"]),
        "ensemble_method": chosen, "ensemble_version": comp.ensembles[chosen].version,
        "ensemble_label": label_source,
        "ensemble_rank_ic": {r["name"]: float(r["rank_ic"]) for _, r in table[table["kind"] == "ensemble"].iterrows()},
        "ensemble_best_single_rank_ic": comp.best_single[1],
        "ensemble_best_trailing_rank_ic": float(table.set_index("name").loc["best_trailing", "rank_ic"]),
        "ann_return_net": m["ann_return_net"], "ann_vol": m["ann_vol"], "hit_rate_days": m["hit_rate"],
        "turnover_monthly_nav": m["turnover_monthly_nav"], "gross_exposure": m["gross_exposure"],
        "realized_beta": m.get("realized_beta"), "sector_exposure_abs": m.get("sector_exposure_abs"),
        "naive_sharpe_gross": comp.runs["naive"].metrics["sharpe_gross"],
        "naive_sharpe_net": comp.runs["naive"].metrics["sharpe_net"],
        "backtest_start": str(daily["date"].iloc[0].date()) if len(daily) else None,
        "backtest_end": str(daily["date"].iloc[-1].date()) if len(daily) else None,
    }
    if "oracle" in comp.runs:
        om = comp.runs["oracle"].metrics
        report.update(oracle_policy_sharpe_gross=om["sharpe_gross"], oracle_policy_sharpe_net=om["sharpe_net"],
                      oracle_policy_rank_ic=float(table.set_index("name").loc["oracle", "rank_ic"]))
    report["backtest_stage_s"] = time.perf_counter() - started
    log(f"[backtest] {chosen}: Sharpe net {m['sharpe_net']:.2f} (gross {m['sharpe_gross']:.2f}), max DD "
        f"{m['max_drawdown']:.1%}, turnover {m['turnover_monthly']:.2f}x/month, cost retention "
        f"{m['cost_retention']:.0%}; wrote ml.signals, ml.positions, ml.backtest_daily, ml.ensemble_comparison "
        f"in {report['backtest_stage_s']:.1f}s")
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in report.items()}
