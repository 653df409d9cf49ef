"""How far could any combination of what a run has built go, over the last third of its dates?

Issue 13 asks the published signals to reach 1.5x the best textbook signal over the last third of a real
panel's dates. This bench asks whether anything Aurora has could reach it, even picked with hindsight. Over the
last third of the published signals' dates (as `bench/textbook.py`), it regresses the label's per-date rank
(pooled least squares) on the per-date ranks of
  - the published signals, the textbook signals (`ml.baselines.textbook_signals`), and a few price-only
    families the zoo does not build (`price_families`: lottery, skewness, idiosyncratic volatility, return
    seasonality), and
  - those plus every model's out-of-sample score in `ml.predictions` (every horizon, every status),
then scores the fit by the project's rank IC against the label, two ways:
  - in-sample: fit and scored on the same dates (the most hindsight can claim);
  - cross-fitted: fit on alternate blocks of `--block` dates, scored on the blocks left out (still picked with
    hindsight of the regime, but not scored on its own fit).
Nothing here is walk-forward: these are ceilings, never headlines. A target above the cross-fitted ceiling is
one no learner could be expected to reach from this information.

Usage: python bench/bench_panel_ceiling.py DIR [DIR ...] [--block 126] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from textbook import HORIZON, LABEL  # the scenario bench's textbook columns: same label, same dates

from ml.baselines import textbook_signals
from ml.data.predictions import read_score_panel
from ml.evaluation import load_market
from ml.metrics import daily_rank_ic, ic_summary
from ml.paths import DataPaths


def price_families(market) -> dict[str, np.ndarray]:
    """Price-only families from the literature that the zoo's views do not carry (dates x names, known at t):
    the largest and smallest daily return of 21 days (lottery), 63-day skewness, 63-day volatility of the
    sector-relative return (idiosyncratic risk), and the mean return over the same 5 and 21 days of each of
    the last five years (return seasonality; NaN until five years of history)."""
    ret = pd.DataFrame(market.returns)
    onehot = market.sector_onehot()
    ok = ret.notna().to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        sector_mean = (np.nan_to_num(ret.to_numpy()) @ onehot) / (ok @ onehot)
    rel = ret - np.nan_to_num(sector_mean) @ onehot.T
    log = np.log1p(ret.fillna(0.0))
    out = {"max_ret_21d": ret.rolling(21, min_periods=15).max(), "min_ret_21d": ret.rolling(21, min_periods=15).min(),
           "skew_63d": ret.rolling(63, min_periods=40).skew(), "idio_vol_63d": rel.rolling(63, min_periods=40).std()}
    for window in (5, 21):
        past = log.rolling(window).sum()
        out[f"seasonal_{window}d"] = sum(past.shift(252 * k - window) for k in range(1, 6)) / 5
    live = np.where(market.tradable, 1.0, np.nan)
    return {name: frame.to_numpy() * live for name, frame in out.items()}


def per_date_rank(values: np.ndarray) -> np.ndarray:
    """Per-date percentile rank centred on 0; 0 (neutral) where missing."""
    return np.nan_to_num(pd.DataFrame(values).rank(axis=1, pct=True).to_numpy() - 0.5)


def read_run(paths: DataPaths, market) -> tuple[dict[str, np.ndarray], list[str], dict[str, np.ndarray], np.ndarray,
                                                 pd.DatetimeIndex]:
    """The small set's regressors (name -> dates x names), the textbook signals' names among them, every model's
    scores, the label (dates x names) and the published signals' dates."""
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        signals = con.execute("select date, symbol, expected_return from ml.signals").df()
        scores = read_score_panel(con)
    labels = pd.read_parquet(paths.features / "labels.parquet", columns=["date", "symbol", LABEL])

    def grid(frame: pd.DataFrame, column: str) -> np.ndarray:
        keys = [pd.to_datetime(frame["date"]), frame["symbol"].astype(str)]
        return market.grid(pd.Series(frame[column].to_numpy(), index=pd.MultiIndex.from_arrays(
            keys, names=["date", "symbol"])))

    textbook = textbook_signals(market)
    small = {"signals": grid(signals, "expected_return"), **textbook, **price_families(market)}
    models = {f"model:{m}": market.grid(scores[m].dropna()) for m in sorted(scores.columns)}
    dates = pd.DatetimeIndex(sorted(pd.to_datetime(signals["date"]).unique()))
    return small, list(textbook), models, grid(labels, LABEL), dates


def fitted(ranks: dict[str, np.ndarray], names: list[str], label_rank: np.ndarray, fit_rows: np.ndarray,
           score_rows: np.ndarray) -> np.ndarray:
    """Pooled least squares of the label's rank on `names`' ranks over `fit_rows` (dates), predicted on
    `score_rows`; NaN where the label is missing."""
    has = np.isfinite(label_rank)
    x = np.stack([ranks[n][fit_rows][has[fit_rows]] for n in names], axis=1)
    beta, *_ = np.linalg.lstsq(x, label_rank[fit_rows][has[fit_rows]], rcond=None)
    pred = sum(b * ranks[n][score_rows] for b, n in zip(beta, names, strict=True))
    return np.where(has[score_rows], pred, np.nan)


def ceilings(directory: Path, block: int) -> dict:
    paths = DataPaths(directory)
    market = load_market(paths)
    small, textbook, models, label, dates = read_run(paths, market)
    rows = market.dates.get_indexer(dates[len(dates) * 2 // 3:])
    label_rank = np.where(np.isfinite(label), per_date_rank(label), np.nan)
    ranks = {name: per_date_rank(values) for name, values in {**small, **models}.items()}
    index = pd.MultiIndex.from_product([market.dates[rows], market.symbols], names=["date", "symbol"])
    lab = pd.Series(label[rows].ravel(), index=index)

    def daily(values: np.ndarray) -> pd.Series:
        """Daily rank IC over the last third of `values` (last third's rows x names)."""
        return daily_rank_ic(pd.DataFrame({"x": values.ravel()}, index=index), lab)["x"]

    single = {name: daily(values[rows]) for name, values in small.items()}
    sets = {"signals + textbook + price families": list(small), "+ every model's score": list(ranks)}
    alternate = (np.arange(len(rows)) // block) % 2
    out = {"dir": str(directory), "last_third_dates": len(rows), "models": len(models),
           "single": {name: float(series.mean()) for name, series in single.items()}}
    for tag, names in sets.items():
        cross = np.full((len(rows), len(market.symbols)), np.nan)
        for b in (0, 1):
            cross[alternate == b] = fitted(ranks, names, label_rank, rows[alternate != b], rows[alternate == b])
        out[tag] = {"regressors": len(names),
                    "in_sample": float(daily(fitted(ranks, names, label_rank, rows, rows)).mean()),
                    "cross_fitted": float(daily(cross).mean())}
    best = max(textbook, key=lambda k: out["single"][k])
    out["best_textbook"], out["best_textbook_name"] = out["single"][best], best
    # how precisely the last third measures the signals and their gap to the best textbook signal (the labels
    # overlap: the t is corrected as every t in the project)
    for tag, series in (("signals", single["signals"]), ("gap", single["signals"] - single[best])):
        summary = ic_summary(series, horizon=HORIZON)
        out[f"{tag}_se"] = summary["std"] / np.sqrt(summary["n"] / HORIZON)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--block", type=int, default=126, help="dates per cross-fitting block (default: half a year)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    report = []
    for folder in args.dirs:
        started = time.perf_counter()
        res = ceilings(Path(folder), args.block)
        best = res["best_textbook"]
        print(f"\n{folder}: last third {res['last_third_dates']} dates, {res['models']} models "
              f"({time.perf_counter() - started:.0f}s)", flush=True)
        def ratio(value: float, best: float = best) -> str:  # against the best textbook signal, if it has an edge
            return f"{value / best:.2f}x" if best > 0 else "-"

        for name, value in res["single"].items():
            print(f"  {name:28s} {value:+.4f}  ({ratio(value)})")
        print(f"  signals' IC: standard error {res['signals_se']:.4f}; gap to {res['best_textbook_name']}: "
              f"standard error {res['gap_se']:.4f}")
        for tag in ("signals + textbook + price families", "+ every model's score"):
            r = res[tag]
            print(f"  ceiling, {tag} ({r['regressors']} regressors): in-sample {r['in_sample']:+.4f} "
                  f"({ratio(r['in_sample'])}), cross-fitted {r['cross_fitted']:+.4f} ({ratio(r['cross_fitted'])})")
        report.append(res)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
