"""The policy side of the evaluation: one policy on one set of signals (`run_policy`), the policies side
by side (`policy_comparison`: the configured policy on every ensemble's signals, the naive and the oracle
policy), and the pipeline stage `policy_backtest` (`run_policy_stage`: reads `ml.ensemble_signals`,
writes `ml.positions`, `ml.backtest_daily`, `ml.policy_constants` and the completed
`ml.ensemble_comparison` in one transaction). `ml.evaluation` re-exports every public name.

The warehouse reads and writes and the score metrics are `ml.evaluation`'s, imported where they are
used: `ml.evaluation` imports this module (its `compare` ends with `policy_comparison`), so this one
imports it back only inside functions.
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
from ml.backtest import MarketPanel, backtest_daily, performance
from ml.paths import DataPaths
from ml.portfolio import guardrails as gr

Log = Callable[[str], None]


@dataclass
class PolicyRun:
    name: str
    result: pol.PolicyResult
    daily: pd.DataFrame
    metrics: dict[str, float]


def run_policy(name: str, policy: pol.Policy, signals: pd.DataFrame, market: MarketPanel,
               start: int | None = None, horizon_signals: pd.DataFrame | None = None) -> PolicyRun:
    """Positions and the daily backtest of one policy on one set of signals (and the other label
    horizons' signals, which the held-book policy uses at their own measured speed)."""
    panel = pol.SignalPanel.from_frame(signals, market, horizon_signals)
    start = panel.first_date() if start is None else start
    result = policy.run(panel, market, start=start)
    daily = backtest_daily(result.weights, result.trades, result.costs, market, start=start)
    return PolicyRun(name, result, daily, performance(daily, market, result.weights))


def policy_comparison(
    signals: Mapping[str, pd.DataFrame],
    chosen: str,
    table: pd.DataFrame,
    label: pd.Series,
    market: MarketPanel,
    policy_cfg: Mapping[str, Any],
    oracle: pd.DataFrame | None = None,
    horizon: int = 5,
    log: Log = print,
    horizon_signals: pd.DataFrame | None = None,
) -> tuple[dict[str, PolicyRun], pd.DataFrame]:
    """Run the cost-aware policy on the chosen ensemble's calibrated signals (on every ensemble's when
    the policy config says `compare_methods: all`: one more backtest each, for comparison columns
    only), the naive policy on the chosen one and, when `oracle` is given (evaluation only), the same
    policy on the oracle's expected returns over the same dates. Returns the runs and `table` with the
    policy columns filled in (left empty for the methods not run) and the naive and oracle rows added."""
    from ml.evaluation import score_metrics

    policy = pol.policy_from_config(policy_cfg)
    runs: dict[str, PolicyRun] = {}
    table = table.copy()
    compared = compared_methods(signals, chosen, policy_cfg)
    if len(compared) < len(signals):
        log(f"[policy] backtesting the chosen ensemble ({chosen}) only; `compare_methods: all` in "
            "config/policy.yaml backtests every method for ml.ensemble_comparison")
    for method, frame in compared.items():
        t0 = time.perf_counter()
        runs[method] = run_policy(method, policy, frame, market, horizon_signals=horizon_signals)
        m = runs[method].metrics
        for key, value in _policy_cols(m).items():
            table.loc[table["name"] == method, key] = value
        held = bool(np.abs(runs[method].result.weights).any())
        what = (f"Sharpe net {m['sharpe_net']:.2f} (gross {m['sharpe_gross']:.2f}), turnover "
                f"{m['turnover_monthly']:.2f}x/month" if held else "no positions taken")
        log(f"[policy] {method:<12} {what}  ({time.perf_counter() - t0:.1f}s)")
    start = runs[chosen].result.start
    version = table.loc[table["name"] == chosen, "version"]
    rows = []
    runs["naive"] = run_policy("naive", pol.naive_from_config(policy_cfg), signals[chosen], market, start=start)
    rows.append({"name": "naive_decile", "kind": "naive_policy", "chosen": False,
                 "version": str(version.iloc[0]) if len(version) else "", **_policy_cols(runs["naive"].metrics)})
    if oracle is not None:
        osig = pol.oracle_signals(oracle)
        dates = pd.DatetimeIndex(signals[chosen]["date"].unique())
        osig = osig[osig.index.get_level_values("date").isin(dates)]
        runs["oracle"] = run_policy("oracle", policy, osig, market, start=start)
        rows.append({"name": "oracle", "kind": "oracle_policy", "chosen": False, "version": "",
                     **score_metrics(osig["expected_return"], label, horizon), **_policy_cols(runs["oracle"].metrics)})
    return runs, pd.concat([table, pd.DataFrame(rows)], ignore_index=True)


def compared_methods(signals: Mapping[str, pd.DataFrame], chosen: str,
                     policy_cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The ensemble methods the policy is backtested on: the chosen one, or all (`compare_methods`)."""
    which = policy_cfg.get("compare_methods", pol.POLICY_DEFAULTS["compare_methods"])
    if which not in ("chosen", "all"):
        raise ValueError(f"config/policy.yaml: compare_methods must be 'chosen' or 'all', not {which!r}")
    return dict(signals) if which == "all" else {chosen: signals[chosen]}


def _policy_cols(m: Mapping[str, float]) -> dict[str, float]:
    keys = ("sharpe_gross", "sharpe_net", "ann_return_net", "ann_vol", "max_drawdown", "turnover_monthly",
            "cost_retention", "gross_exposure")
    out = {k: m.get(k, float("nan")) for k in keys}
    out["hit_rate_days"] = m.get("hit_rate", float("nan"))
    return out


def run_policy_stage(paths: DataPaths, log: Log = print, policy_config=None, ensemble_config=None,
                     ) -> dict[str, Any]:
    """Stage `policy_backtest`: the cost-aware policy on every ensemble's calibrated signals (from
    `ml.ensemble_signals`), the naive and, on the synthetic market, the oracle policy for comparison;
    backtest after costs from t+1. Writes `ml.positions`, `ml.backtest_daily` and the completed
    `ml.ensemble_comparison` in one transaction and returns the report keys of the backtest."""
    from ml.evaluation import _dated, _floats, load_label, load_market, read_ensemble_signals
    from ml.tables import write_tables

    started = time.perf_counter()
    ecfg, pcfg = ens.load_config(ensemble_config), pol.load_config(policy_config)
    signals, chosen, table = read_ensemble_signals(paths)
    market = load_market(paths)
    label, _ = load_label(paths, market, ecfg)
    oracle_path = paths.oracle / "expected_returns.parquet"
    oracle = pd.read_parquet(oracle_path, columns=["date", "symbol", "er_5d"]) if oracle_path.exists() else None
    horizon_signals = read_horizon_signals(paths)
    if len(horizon_signals):
        log(f"[policy] other label horizons: {sorted(horizon_signals['horizon'].unique().tolist())} days, each at "
            "its own measured speed")
    runs, table = policy_comparison(signals, chosen, table, label, market, pcfg, oracle=oracle,
                                    horizon=int(ecfg["horizon"]), log=log, horizon_signals=horizon_signals)
    run = runs[chosen]
    daily = run.daily.assign(nav=(1.0 + run.daily["net_return"]).cumprod())
    positions = run.result.positions_frame(market)
    constants = run.result.constants if run.result.constants is not None else pd.DataFrame(
        {"date": pd.Series(dtype="datetime64[ns]"), "constant": pd.Series(dtype=str), "value": pd.Series(dtype=float)})
    write_tables(paths, {
        "positions": _dated(positions),
        "backtest_daily": _dated(daily),
        "ensemble_comparison": table,
        "policy_constants": _dated(constants.assign(method=chosen)),
    })
    m = run.metrics
    report = {
        "sharpe_gross": m["sharpe_gross"], "sharpe_net": m["sharpe_net"], "max_drawdown": m["max_drawdown"],
        "turnover_monthly": m["turnover_monthly"], "cost_retention": m["cost_retention"],
        "ann_return_net": m["ann_return_net"], "ann_vol": m["ann_vol"], "hit_rate_days": m["hit_rate"],
        "turnover_monthly_nav": m["turnover_monthly_nav"], "gross_exposure": m["gross_exposure"],
        "realized_beta": m.get("realized_beta"), "sector_exposure_abs": m.get("sector_exposure_abs"),
        "naive_sharpe_gross": runs["naive"].metrics["sharpe_gross"],
        "naive_sharpe_net": runs["naive"].metrics["sharpe_net"],
        "backtest_start": str(daily["date"].iloc[0].date()) if len(daily) else None,
        "backtest_end": str(daily["date"].iloc[-1].date()) if len(daily) else None,
    }
    if "oracle" in runs:
        om = runs["oracle"].metrics
        report.update(oracle_policy_sharpe_gross=om["sharpe_gross"], oracle_policy_sharpe_net=om["sharpe_net"],
                      oracle_policy_rank_ic=float(table.set_index("name").loc["oracle", "rank_ic"]))
    book = gr.Book.from_result(run.result, pol.SignalPanel.from_frame(signals[chosen], market).expected_return)
    guard = gr.stage_guardrails(book, run.daily, m, positions["reason"].value_counts().to_dict(), pcfg)
    report.update(policy_warnings=guard.messages, policy_diagnostics=guard.diagnostics,
                  policy_constants=latest_constants(constants))
    if report["policy_constants"]:
        log("[policy] measured constants (latest): " + ", ".join(
            f"{k} {v:.3g}" for k, v in report["policy_constants"].items()))
    for message in guard.messages:
        log(f"[policy] WARNING {message}")
    report["backtest_stage_s"] = time.perf_counter() - started
    headline = (f"Sharpe net {m['sharpe_net']:.2f} (gross {m['sharpe_gross']:.2f}), max DD {m['max_drawdown']:.1%}, "
                f"cost retention {m['cost_retention']:.0%}; " if book.has_positions else "")
    log(f"[policy] {chosen}: {headline}{gr.summary_line(guard.diagnostics, reasons=False)}; wrote ml.positions, "
        f"ml.backtest_daily, ml.ensemble_comparison in {report['backtest_stage_s']:.1f}s")
    return _floats(report)


def read_horizon_signals(paths: DataPaths) -> pd.DataFrame:
    """`ml.horizon_signals` (empty when the zoo trains no other label horizon, or an older warehouse)."""
    from ml.evaluation import SCHEMA
    from ml.horizon_signals import empty_horizon_signals

    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        frame = con.execute(f"select * from {SCHEMA}.horizon_signals").df()
    except duckdb.CatalogException:
        return empty_horizon_signals()
    finally:
        con.close()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def latest_constants(constants: pd.DataFrame) -> dict[str, float]:
    """The last measured value of each constant (report key `policy_constants`)."""
    if constants is None or constants.empty:
        return {}
    last = constants.sort_values("date").groupby("constant")["value"].last()
    return {str(k): float(v) for k, v in last.items() if np.isfinite(v)}
