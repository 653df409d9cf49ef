"""Side by side: the three ensembles, our cost-aware policy, a naive policy and the oracle policy;
and the two pipeline stages behind them: `ensemble_calibrate` (`run_ensemble_stage`: writes
`ml.signals`, `ml.ensemble_signals`, `ml.ensemble_weights`, `ml.ensemble_comparison`) and `policy_backtest`
(`run_policy_stage`: reads `ml.ensemble_signals`, writes `ml.positions`, `ml.backtest_daily` and the
completed `ml.ensemble_comparison`). Each stage writes its tables in one transaction. The policy side
(`run_policy`, `policy_comparison`, `run_policy_stage`) lives in `ml.policy_stage`, re-exported here.

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
from ml import horizon_signals as hz
from ml import uncertainty as unc
from ml.backtest import (
    MarketPanel,
    forward_label,
    horizon_scale,
    market_panel,
    market_panel_from_mart,
)
from ml.calibration import Calibrator, calibration_error, interval_coverage
from ml.data.market_mart import read_market_mart
from ml.data.predictions import read_score_panel, table_exists
from ml.metrics import daily_ic, hit_rate, ic_summary
from ml.paths import DataPaths
from ml.policy_stage import (  # the policy side, re-exported
    PolicyRun,
    latest_constants,  # noqa: F401
    policy_comparison,
    run_policy,  # noqa: F401
    run_policy_stage,
)
from ml.probability import ProbabilityCalibrator, probability_from_config, probability_metrics, up_outcome
from ml.tables import write_tables

Log = Callable[[str], None]
SCHEMA = "ml"
SIGNAL_COLUMNS = ["date", "symbol", "expected_return", "lower", "upper", "uncertainty", "ensemble_version",
                  "prob_up", "track_record_scale"]
# what `best_single_model` says in the report: the single model a forecaster could have picked at each date
BEST_SINGLE_WALK_FORWARD = "walk-forward pick: best trailing ICIR known at each date"


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
              probs: pd.DataFrame | None = None) -> pd.DataFrame:
    """`ml.signals` rows (date, symbol, expected_return, lower, upper, uncertainty, ensemble_version,
    prob_up) from an ensemble: walk-forward calibration, intervals scaled by each name's trailing
    volatility; `probs`: `prob_up_frame` of the same ensemble (computed here when None)."""
    out = calibrator.fit_predict(result.score, label, horizon_scale(market, calibrator.horizon),
                                 result.dispersion)
    if probs is None:
        probs = prob_up_frame(result, label, calibrator, ProbabilityCalibrator(
            horizon=calibrator.horizon, refit=calibrator.refit, min_train_days=calibrator.min_train_days,
            window=calibrator.windows[0]))
    out["prob_up"] = probs["prob_up"].reindex(out.index)
    out = out.drop(columns=["x"]).reset_index()
    out["ensemble_version"] = result.version
    return out[SIGNAL_COLUMNS]


def prob_up_frame(result: ens.EnsembleResult, label: pd.Series, calibrator: Calibrator,
                  probability: ProbabilityCalibrator) -> pd.DataFrame:
    """Walk-forward P(label > 0) of an ensemble (`ml.probability`), on the score as the expected-return
    calibration transforms it."""
    return probability.fit_predict(calibrator.transform_score(result.score.sort_index()), up_outcome(label))


def signal_metrics(signals: pd.DataFrame, label: pd.Series) -> dict[str, float]:
    frame = signals.set_index(["date", "symbol"])
    return {"coverage_80": interval_coverage(frame, label), "interval_width": unc.interval_width(frame),
            "calibration_error": calibration_error(frame, label)}


def window_summary(chosen: list) -> str:
    """'expanding from 2010-05-03, 504 from 2011-02-01, ...' (the last few changes) of a calibrator's
    `chosen_window`."""
    parts = [f"{'expanding' if w is None else w} from {pd.Timestamp(d).date()}" for d, w in chosen]
    return (f"{len(parts)} changes, the last: " if len(parts) > 4 else "") + ", ".join(parts[-4:])


def calibrator_from_config(cfg: Mapping[str, Any]) -> Calibrator:
    return Calibrator(horizon=int(cfg["horizon"]), **(cfg.get("calibration") or {}))


# ================================================================================ side by side
@dataclass
class EnsembleStep:
    """What the ensemble-and-calibration step produced: every ensemble, its calibrated signals and a
    comparison table of their score metrics (plus the best single model, with and without hindsight);
    `best_single`: (description, rank IC) of the walk-forward pick, the one the report headlines."""

    chosen: str
    panel: pd.DataFrame
    ensembles: dict[str, ens.EnsembleResult]
    signals: dict[str, pd.DataFrame]
    table: pd.DataFrame
    best_single: tuple[str, float]


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


def ensemble_and_calibrate(
    predictions: pd.DataFrame,
    label: pd.Series,
    market: MarketPanel,
    ensemble_cfg: Mapping[str, Any],
    families: Mapping[str, str] | None = None,
    active: list[str] | None = None,
    log: Log = print,
    date_multipliers: pd.DataFrame | None = None,
    score_std: pd.DataFrame | None = None,
) -> EnsembleStep:
    """Build every ensemble and calibrate each into expected returns with intervals; score
    them (rank IC, ICIR, interval coverage, calibration error) next to the best single model.
    `score_std`: per-model score stds (`ml.prediction_std`) for the non-conformal `intervals` methods."""
    horizon = int(ensemble_cfg["horizon"])
    started = time.perf_counter()
    panel, results = ens.ensembles_from_config(predictions, label, ensemble_cfg, families=families, active=active,
                                               date_multipliers=date_multipliers)
    log(f"[ensemble] {panel.shape[1]} models, {len(panel):,} rows; ensembles built in "
        f"{time.perf_counter() - started:.1f}s")
    chosen = ensemble_cfg["method"]
    calibrator = calibrator_from_config(ensemble_cfg)
    probability = probability_from_config(ensemble_cfg)
    signals, rows = {}, []
    for method, result in results.items():
        t0 = time.perf_counter()
        probs = prob_up_frame(result, label, calibrator, probability)
        signals[method] = calibrate(result, label, market, calibrator, probs)
        signals[method] = unc.signal_intervals(signals[method], result.weights, predictions, score_std, label,
                                               horizon_scale(market, horizon), ensemble_cfg, log)
        judged = probs.reindex(signals[method].set_index(["date", "symbol"]).index).dropna(subset=["prob_up"])
        row = {"name": method, "kind": "ensemble", "chosen": method == chosen, "version": result.version,
               **score_metrics(result.score, label, horizon), **signal_metrics(signals[method], label),
               **probability_metrics(judged, up_outcome(label))}
        rows.append(row)
        log(f"[ensemble] {method:<12} rank IC {row['rank_ic']:+.4f}  ICIR {row['icir']:.3f}  coverage "
            f"{row['coverage_80']:.3f}  cal.err {row['calibration_error']:.3f}  Brier {row['brier_score']:.4f} "
            f"(skill {row['brier_skill']:+.4f}, {row['prob_method']})  ({time.perf_counter() - t0:.1f}s)")
        if method == chosen and calibrator.chosen_window:
            log(f"[ensemble] calibration window, chosen walk-forward: {window_summary(calibrator.chosen_window)}")
    single_ic = ens.shared_daily_rank_ic(panel, label).mean()  # every model at once; full metrics for the best only
    best = str(single_ic.fillna(-np.inf).idxmax())
    best_metrics = score_metrics(panel[best].dropna(), label, horizon)
    rows.append({"name": best, "kind": "best_single_hindsight", "chosen": False, "version": "", **best_metrics})
    picked = ens.build_ensemble(panel, label, ens.BestTrailing(horizon=horizon), method="best_trailing")
    walk_forward = score_metrics(picked.score, label, horizon)
    rows.append({"name": "best_trailing", "kind": "best_single_walk_forward", "chosen": False, "version": "",
                 **walk_forward})
    return EnsembleStep(chosen=chosen, panel=panel, ensembles=results, signals=signals, table=pd.DataFrame(rows),
                        best_single=(BEST_SINGLE_WALK_FORWARD, float(walk_forward["rank_ic"])))


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
    date_multipliers: pd.DataFrame | None = None,
) -> Comparison:
    """Both steps in memory (benchmarks, tests): `ensemble_and_calibrate` then `policy_comparison`.
    `label`: the realized forward return the ensembles and calibration learn from (default: from the
    market's closes, sector-neutral)."""
    horizon = int(ensemble_cfg["horizon"])
    if label is None:
        label = forward_label(market, horizon, "sector")
    step = ensemble_and_calibrate(predictions, label, market, ensemble_cfg, families=families, active=active,
                                  log=log, date_multipliers=date_multipliers)
    runs, table = policy_comparison(step.signals, step.chosen, step.table, label, market, policy_cfg,
                                    oracle=oracle, horizon=horizon, log=log)
    return Comparison(chosen=step.chosen, panel=step.panel, ensembles=step.ensembles, signals=step.signals,
                      runs=runs, table=table, best_single=step.best_single)


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


@dataclass
class PredictionPanel:
    """`ml.predictions` ready for the ensemble: the wide score panel, {model_id: family}, the ids
    usable by the ensemble (None: every model, the panel already masked point in time) and the
    lifecycle's weight multipliers per date (None without `ml.model_status_daily`)."""

    scores: pd.DataFrame
    families: dict[str, str]
    active: list[str] | None
    multipliers: pd.DataFrame | None = None


def read_predictions(paths: DataPaths) -> tuple[pd.DataFrame, dict[str, str], list[str] | None]:
    """(scores, families, active) of `read_prediction_panel`."""
    read = read_prediction_panel(paths)
    return read.scores, read.families, read.active


def read_prediction_panel(paths: DataPaths) -> PredictionPanel:
    """`ml.predictions` as a wide score panel (index date, symbol; one column per model; DuckDB codes
    the keys and the rows are scattered into one array, so the long table never sits in pandas),
    {model_id: family}, and the ids usable by the ensemble. With the lifecycle's
    `ml.model_status_daily`, each model's scores are kept only on dates when it was active or
    promoted (point in time), the ids are None and the multipliers (2 for promoted) come along;
    otherwise the registry's active models, else every non-retired one (None: no registry), as for a
    hand-kept registry. A warehouse where the monitor ran but its dated statuses are missing is refused:
    today's statuses applied to the whole history would select models with hindsight."""
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
        if status_daily is None and table_exists(con, "lifecycle_events"):  # the monitor ran, its dated table is gone
            raise RuntimeError(
                f"{paths.warehouse}: {SCHEMA}.model_status_daily is missing but the monitor has run "
                f"({SCHEMA}.lifecycle_events exists); the registry's current statuses would select models "
                "with hindsight over the whole history. Re-run `aurora monitor` first.")
        panel = read_score_panel(con)  # one scatter into a dense array, never the long table in pandas
    finally:
        con.close()
    families = dict(zip(reg["model_id"].astype(str), reg["family"].astype(str), strict=True))
    if status_daily is not None and len(status_daily):
        # point-in-time lifecycle: a model's scores count only on dates when it was active or promoted
        # (today's registry status would select models with hindsight)
        from ml.monitoring.lifecycle import multiplier_panel

        usable = multiplier_panel(status_daily, dates=panel.index.get_level_values("date").unique(),
                                  models=panel.columns)
        mask = usable.reindex(panel.index.get_level_values("date")).to_numpy() > 0
        return PredictionPanel(panel.where(mask), families, None, usable)
    if reg.empty:
        return PredictionPanel(panel, families, None)
    active = reg.loc[reg["status"].isin(["active", "promoted"]), "model_id"].astype(str).tolist()
    if not active:
        active = reg.loc[reg["status"] != "retired", "model_id"].astype(str).tolist()
    return PredictionPanel(panel, families, active)


def weights_frame(ensembles: Mapping[str, ens.EnsembleResult]) -> pd.DataFrame:
    """`ml.ensemble_weights`: each ensemble's model weights per date (normalized to sum to one over
    the models with a score that day; zero weights left out)."""
    frames = []
    for method, result in ensembles.items():
        w = result.weights.copy()
        w.index.name, w.columns.name = "date", "model_id"
        long = w.stack().rename("weight").reset_index()
        long = long[long["weight"] > 0]
        long["weight"] = long["weight"] / long.groupby("date")["weight"].transform("sum")
        frames.append(long.assign(method=method, ensemble_version=result.version))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["date", "model_id", "weight", "method", "ensemble_version"])
    return out[["date", "method", "model_id", "weight", "ensemble_version"]]


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(date=pd.to_datetime(frame["date"]).dt.date)


def load_market(paths: DataPaths) -> MarketPanel:
    """The market panel: the dbt mart `market_panel` when the warehouse holds it for the raw prices
    (`ml.data.market_mart`), else built from the raw prices and securities."""
    mart = read_market_mart(paths)
    if mart is not None:
        return market_panel_from_mart(mart)
    prices = pd.read_parquet(paths.raw_table("prices"))
    securities = pd.read_parquet(paths.raw_table("securities")) if paths.raw_table("securities").exists() else None
    return market_panel(prices, securities)


def _floats(report: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in report.items()}


def _score_std(paths: DataPaths, cfg: Mapping[str, Any]) -> pd.DataFrame | None:
    """Per-model score stds, read only when the configured intervals need them."""
    return None if unc.interval_settings(cfg)["method"] == "conformal" else unc.read_prediction_std(paths)


def run_ensemble_stage(paths: DataPaths, log: Log = print, ensemble_config=None) -> dict[str, Any]:
    """Stage `ensemble_calibrate`: read predictions (masked by each model's point-in-time lifecycle
    status), build and calibrate the three ensembles, write `ml.signals` (the configured method),
    `ml.ensemble_signals` (every method, for the policy stage), `ml.horizon_signals` (one ensemble per
    other label horizon, when the zoo trains some: ml/horizon_signals.py), `ml.ensemble_weights` (each method's
    model weights per date, promotions applied) and `ml.ensemble_comparison` (score metrics) in one
    transaction, and return the report keys of the signal."""
    started = time.perf_counter()
    ecfg = ens.load_config(ensemble_config)
    read = read_prediction_panel(paths)
    preds, families, active = read.scores, read.families, read.active
    if preds.empty or preds.shape[1] == 0:
        raise ValueError(f"ml.predictions is empty in {paths.warehouse}: train the zoo first")
    market = load_market(paths)
    log(f"[ensemble] market {len(market.dates)} days x {len(market.symbols)} symbols; "
        f"{preds.shape[1]} models in ml.predictions, {'all' if active is None else len(active)} usable")
    label, label_source = load_label(paths, market, ecfg)
    log(f"[ensemble] label: {label_source}")
    # models of other label horizons (`<family>@<h>d-...`) get an ensemble of their own (ml/horizon_signals.py)
    by_horizon = hz.models_by_horizon([m for m in preds.columns if active is None or m in set(active)],
                                      int(ecfg["horizon"]))
    primary_models = by_horizon.pop(int(ecfg["horizon"]), [])
    if not primary_models:
        raise ValueError(f"no usable model of the primary {ecfg['horizon']}-day horizon in ml.predictions")
    primary_models = hz.primary_candidates(primary_models, by_horizon, ecfg)
    with ens.shared_daily_ic():  # the weighters share each panel's daily IC
        step = ensemble_and_calibrate(preds[primary_models], label, market, ecfg, families=families, active=None,
                                      log=log, date_multipliers=read.multipliers, score_std=_score_std(paths, ecfg))
        horizon_signals = hz.build_horizon_signals(
            preds, by_horizon, ecfg, label_for=lambda cfg: load_label(paths, market, cfg)[0],
            calibrate=lambda result, lab, cfg: calibrate(result, lab, market, calibrator_from_config(cfg)),
            families=families, date_multipliers=read.multipliers, log=log)
    chosen = step.chosen
    every = pd.concat([frame.assign(method=method) for method, frame in step.signals.items()], ignore_index=True)
    write_tables(paths, {
        "horizon_signals": _dated(horizon_signals),
        "signals": _dated(step.signals[chosen]),
        "ensemble_signals": _dated(every),
        "ensemble_weights": _dated(weights_frame(step.ensembles).assign(chosen=lambda f: f["method"] == chosen)),
        "ensemble_comparison": step.table,
    })
    table = step.table.set_index("name")
    row = table.loc[chosen]
    report = {
        "oos_rank_ic": float(row["rank_ic"]), "oos_ic": float(row["ic"]), "icir": float(row["icir"]),
        "coverage_80": float(row["coverage_80"]), "calibration_error": float(row["calibration_error"]),
        "brier_score": float(row["brier_score"]), "brier_skill": float(row["brier_skill"]),
        "ensemble_method": chosen, "ensemble_version": step.ensembles[chosen].version,
        "ensemble_label": label_source,
        "ensemble_rank_ic": {name: float(r["rank_ic"]) for name, r in table[table["kind"] == "ensemble"].iterrows()},
        "best_single_model_rank_ic": step.best_single[1], "best_single_model": step.best_single[0],
        "ensemble_stage_s": time.perf_counter() - started,
    }
    log(f"[ensemble] {chosen}: rank IC {report['oos_rank_ic']:+.4f} (best single model, picked walk-forward: "
        f"{report['best_single_model_rank_ic']:+.4f}), 80% coverage {report['coverage_80']:.3f}, "
        f"calibration error {report['calibration_error']:.3f}{_track_record_note(step.signals[chosen])}; wrote "
        f"ml.signals, ml.ensemble_signals, ml.ensemble_weights, ml.ensemble_comparison in {report['ensemble_stage_s']:.1f}s")
    return _floats(report)


def _track_record_note(signals: pd.DataFrame) -> str:
    """The log's note of the last date's track-record scale, when the calibration's track record scaled the
    signals (empty otherwise)."""
    scale = signals.get("track_record_scale")
    if scale is None or not len(signals) or (scale == 1.0).all():
        return ""
    last = signals.loc[signals["date"] == signals["date"].max(), "track_record_scale"]
    return f" (expected returns scaled by the calibration's track record: x{float(last.iloc[0]):.2f} on the last date)"


def read_ensemble_signals(paths: DataPaths) -> tuple[dict[str, pd.DataFrame], str, pd.DataFrame]:
    """What `run_ensemble_stage` wrote: {method: calibrated signals}, the chosen method, and the
    comparison table."""
    try:
        con = duckdb.connect(str(paths.warehouse), read_only=True)
    except duckdb.IOException as err:
        raise ValueError(f"no warehouse at {paths.warehouse}: run the ensemble_calibrate stage first") from err
    try:
        every = con.execute(f"select * from {SCHEMA}.ensemble_signals order by method, date, symbol").df()
        table = con.execute(f"select * from {SCHEMA}.ensemble_comparison").df()
    except duckdb.CatalogException as err:
        raise ValueError(f"{paths.warehouse} has no ml.ensemble_signals: run the ensemble_calibrate stage "
                         "first") from err
    finally:
        con.close()
    table = table[table["kind"].isin(["ensemble", "best_single_hindsight", "best_single_walk_forward"])]
    chosen_rows = table.loc[table["chosen"].astype(bool), "name"]
    if every.empty or chosen_rows.empty:
        raise ValueError("ml.ensemble_signals is empty: run the ensemble_calibrate stage first")
    every["date"] = pd.to_datetime(every["date"])
    # reindex: a warehouse written before prob_up existed reads with it empty
    signals = {str(m): frame.reindex(columns=SIGNAL_COLUMNS).reset_index(drop=True)
               for m, frame in every.groupby("method", sort=False)}
    return signals, str(chosen_rows.iloc[0]), table.reset_index(drop=True)


def run_backtest_stage(paths: DataPaths, log: Log = print, ensemble_config=None, policy_config=None,
                       ) -> dict[str, Any]:
    """Both stages, ensemble_calibrate then policy_backtest (`aurora backtest`)."""
    report = run_ensemble_stage(paths, log=log, ensemble_config=ensemble_config)
    report.update(run_policy_stage(paths, log=log, policy_config=policy_config, ensemble_config=ensemble_config))
    return report
