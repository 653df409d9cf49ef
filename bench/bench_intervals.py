"""Interval methods side by side (issue 16): conformal (the calibration's, today's default) against
intervals from a bootstrap std (ml/uncertainty.py), on coverage (nominal 80%) and sharpness.

For each (family, view) it trains a `BootstrapEnsemble` of the family walk-forward on the zoo's folds
(the family's base parameters plus the middle value of each grid entry, no tuning: a benchmark, not
the zoo), then calibrates the bootstrap-mean score like the ensemble stage (isotonic ER, conformal
intervals scaled by trailing volatility) and builds, from the same ER, the bootstrap-std intervals and
a volatility-only reference (the same normalized conformal with the std switched off); with
--mc-families, neural families (residual_mlp, ft_transformer) fitted once per fold give their MC-dropout
std instead of a bootstrap. If the data
directory has a completed ensemble stage (`ml.ensemble_signals`), each ensemble method's signals get
the same comparison, with the ensemble's score std approximated from the bootstrapped models.

Usage: python bench/bench_intervals.py --data-dir DIR [--families ridge,lightgbm] [--views price_momentum]
                                       [--n-boot 8] [--mc-families residual_mlp] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ml import ensemble as ens
from ml.backtest import horizon_scale
from ml.calibration import Calibrator, interval_coverage
from ml.cv import WalkForward
from ml.evaluation import load_label, load_market
from ml.metrics import daily_rank_ic
from ml.paths import DataPaths
from ml.training import build_view_frames, family_settings, load_config, load_view_frames, prepare_view
from ml.uncertainty import BootstrapEnsemble, StdIntervals, ensemble_score_std, interval_score, interval_width
from ml.zoo import FAMILIES, make_model


def bootstrap_walk_forward(prep, family: str, cfg, n_boot: int, seed: int, mc_dropout: bool = False,
                           ) -> tuple[pd.Series, pd.Series]:
    """Out-of-sample bootstrap mean score and std per row of the view, on the zoo's folds; with
    `mc_dropout`, one fit of the (neural) family per fold and its MC-dropout `predict_std` instead."""
    settings = family_settings(cfg, family)
    cv = cfg["cv"]
    params = {**settings["params"], **{k: v[len(v) // 2] for k, v in (settings["grid"] or {}).items()}}
    wf = WalkForward(cadence=settings["cadence"], horizon=int(cv["horizon"]), embargo=int(cv["embargo"]),
                     min_train_days=int(cv["min_train_days"]), max_train_days=settings["max_train_days"],
                     first_test_date=cv.get("first_test_date"))
    cls = FAMILIES[family]
    means, stds, rows_out = [], [], []
    for a, b, s, e in wf.calendar_folds(prep.calendar):
        model = make_model(family, **params) if mc_dropout else \
            BootstrapEnsemble(make_model(family, **params), n_boot=n_boot, block="date", seed=seed)
        if cls.uses_moments:
            model.fit_moments(prep.moments.subset(np.arange(a, b + 1)), prep.features)
        else:
            rows = np.arange(prep.bounds[a], prep.bounds[b + 1])
            rows = rows[np.isfinite(prep.y[rows])]
            cap = settings["max_train_rows"]
            if cap and len(rows) > cap:
                rows = np.sort(np.random.default_rng([seed, a, b]).choice(rows, size=int(cap), replace=False))
            X = prep.design(rows, cls.needs_state)
            model.fit(X, pd.Series(prep.y[rows], index=X.index))
        test = prep.rows(s, e)
        X_test = prep.design(test, cls.needs_state)
        mean, std = (model.predict(X_test), model.predict_std(X_test)) if mc_dropout else model.predict_mean_std(X_test)
        means.append(mean)
        stds.append(std)
        rows_out.append(np.arange(test.start, test.stop))
    idx = prep.X.index[np.concatenate(rows_out)]
    return pd.Series(np.concatenate(means), index=idx), pd.Series(np.concatenate(stds), index=idx)


def compare_intervals(signals: pd.DataFrame, std: pd.Series, label: pd.Series, scale: pd.Series, ecfg) -> dict:
    """Coverage, mean width and interval score of conformal, bootstrap-std and volatility-only intervals
    around the same expected return (`signals`: index (date, symbol), expected_return, lower, upper)."""
    cal = ecfg["calibration"]
    common = dict(horizon=int(ecfg["horizon"]), refit=cal["refit"], coverage=float(cal["coverage"]),
                  min_train_days=int(cal["min_train_days"]), window=cal["window"])
    out = {}
    bands = {"conformal": signals[["lower", "upper"]],
             "bootstrap": StdIntervals(**common).fit_predict(signals["expected_return"], std, label, scale),
             "vol_only": StdIntervals(**common, power=0.0).fit_predict(signals["expected_return"], std, label, scale)}
    both = bands["conformal"].notna().all(axis=1) & bands["bootstrap"].reindex(signals.index).notna().all(axis=1)
    for name, frame in bands.items():
        frame = frame.reindex(signals.index)[both]
        out[name] = {"coverage_80": interval_coverage(frame, label), "mean_width_bps": interval_width(frame),
                     "interval_score_bps": interval_score(frame, label, float(cal["coverage"]))}
    out["rows"] = int(both.sum())
    return out


def run(paths: DataPaths, families: list[str], views: list[str], n_boot: int, log,
        mc_families: tuple[str, ...] = ()) -> dict:
    cfg = load_config(None)
    ecfg = ens.load_config()
    market = load_market(paths)
    label, _ = load_label(paths, market, ecfg)
    scale = horizon_scale(market, int(ecfg["horizon"]))
    frames = build_view_frames(load_view_frames(paths, views), {**cfg, "views": views})
    calibrator = Calibrator(horizon=int(ecfg["horizon"]), **ecfg["calibration"])
    report, raw_means, raw_stds = {"models": {}, "ensembles": {}}, {}, {}
    for view in views:
        prep = prepare_view(frames[view], view, cfg)
        for family in [*families, *mc_families]:
            t0 = time.perf_counter()
            mc = family in mc_families
            mean, std = bootstrap_walk_forward(prep, family, cfg, n_boot, int(cfg["seed"]), mc_dropout=mc)
            fit_s = time.perf_counter() - t0
            key = f"{family}-{view}" + (" (MC dropout)" if mc else "")
            raw_means[key], raw_stds[key] = mean, std
            signals = calibrator.fit_predict(mean, label, scale)
            ic = daily_rank_ic(mean.to_frame("s").sort_index(), label)["s"].mean()
            res = {"rank_ic": float(ic), "fit_s": round(fit_s, 1), "n_boot": 0 if mc else n_boot,
                   **compare_intervals(signals, std.reindex(signals.index), label, scale, ecfg)}
            report["models"][key] = res
            log(f"{key}: {json.dumps(res, default=float)}")
    report["ensembles"] = ensemble_intervals(paths, raw_means, raw_stds, label, scale, ecfg, log)
    report["machine"] = {"cpus": os.cpu_count(), "load_avg_end": os.getloadavg()}
    return report


def ensemble_intervals(paths, raw_means, raw_stds, label, scale, ecfg, log) -> dict:
    """Each ensemble method of the last ensemble stage: its conformal intervals against intervals from
    the bootstrapped models' std (equal-weighted, in standardized units: a proxy for the ensemble's)."""
    try:
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            every = con.execute("select * from ml.ensemble_signals").df()
    except (duckdb.Error, OSError):
        return {}
    raw = pd.DataFrame(raw_means).sort_index()
    std = ensemble_score_std(raw, pd.DataFrame(raw_stds).reindex(raw.index),
                             pd.DataFrame(1.0, index=raw.index.get_level_values("date").unique(), columns=raw.columns))
    out = {}
    for method, frame in every.groupby("method"):
        sig = frame.assign(date=pd.to_datetime(frame["date"])).set_index(["date", "symbol"]).sort_index()
        out[str(method)] = compare_intervals(sig, std.reindex(sig.index), label, scale, ecfg)
        log(f"ensemble {method}: {json.dumps(out[str(method)], default=float)}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--families", default="ridge,lightgbm")
    parser.add_argument("--views", default="price_momentum")
    parser.add_argument("--n-boot", type=int, default=8)
    parser.add_argument("--mc-families", default="", help="neural families whose MC-dropout std is compared too")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    report = run(DataPaths(Path(args.data_dir)), args.families.split(","), args.views.split(","), args.n_boot,
                 lambda msg: print(msg, flush=True), tuple(f for f in args.mc_families.split(",") if f))
    report["total_s"] = round(time.perf_counter() - started, 1)
    print(f"total {report['total_s']}s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
