"""Does down-weighting old training dates help where effects drift? The linear families' `halflife`
(each training date's rows weigh 0.5^(age / halflife)) against the expanding window, on finished runs.

For each data directory (a finished run's features), every arm walk-forward trains the same linear
families on every view with the shipped config/zoo.yaml (no extra horizons, no importance), changing only
the half-life: the expanding window (what ships), fixed half-lives, and the half-life chosen in each
family's grid on the inner validation tail (as every other grid parameter). It reports each arm's mean
daily rank IC on the 5-day label over the same dates, over the whole out-of-sample span and over its last
third (where a drifting market should show the difference), the mean over specs and the arm's best spec,
and a paired t of each arm's daily mean-over-specs IC against the expanding window's
(overlap-corrected, `ml.metrics.ic_summary`).

Usage: python bench/bench_halflife.py DIR [DIR ...] [--families ridge,screened_ridge]
                                      [--halflives 252,756] [--json OUT]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import pandas as pd

from ml.metrics import daily_ic, ic_summary
from ml.paths import DataPaths
from ml.training import load_config, load_view_frames, train_zoo

LABEL = "fwd_ret_sn_5d"
HORIZON = 5  # trading days the label spans


def arm_config(base: dict, families: list[str], halflife, grid_halflives: list[float]) -> dict:
    """The shipped config with one half-life: a number (fixed), None (expanding) or 'grid' (chosen from
    None and `grid_halflives` in each family's grid)."""
    cfg = copy.deepcopy(base)
    cfg["horizons"] = {}
    cfg["importance"] = {**(cfg.get("importance") or {}), "enabled": False}
    for family in families:
        spec = cfg["families"].setdefault(family, {})
        if halflife == "grid":
            spec["grid"] = {**(spec.get("grid") or {}), "halflife": [None, *grid_halflives]}
        elif halflife is not None:
            spec["params"] = {**(spec.get("params") or {}), "halflife": float(halflife)}
    return cfg


def daily_by_spec(specs, labels: pd.DataFrame) -> pd.DataFrame:
    """dates x model_id daily rank IC against the 5-day label."""
    lab = labels[["date", "symbol", LABEL]].assign(date=pd.to_datetime(labels["date"]),
                                                   symbol=labels["symbol"].astype(str))
    out = {}
    for spec in specs:
        pred = spec.predictions.assign(date=pd.to_datetime(spec.predictions["date"]))
        merged = pred.merge(lab, on=["date", "symbol"], how="inner")
        out[(spec.family, spec.view)] = daily_ic(merged, "score", LABEL)
    return pd.DataFrame(out)


def _t(diff: pd.Series) -> float:
    """Paired t of a daily difference, overlap-corrected as every t in the project (`ml.metrics`)."""
    return 0.0 if diff.abs().sum() == 0 else ic_summary(diff, horizon=HORIZON)["t_stat"]


def summarize(daily: dict[str, pd.DataFrame]) -> list[dict]:
    """Per arm: mean over specs (full, last third), best spec, paired t against the expanding arm."""
    days = None
    for frame in daily.values():
        idx = frame.dropna(how="any").index
        days = idx if days is None else days.intersection(idx)
    days = days.sort_values()
    last = days[len(days) - len(days) // 3:]
    base = daily["expanding"].loc[days].mean(axis=1)
    rows = []
    for arm, frame in daily.items():
        f = frame.loc[days]
        mean_all, mean_last = f.mean(axis=1), f.loc[last].mean(axis=1)
        diff, diff_last = mean_all - base, mean_last - base.loc[last]
        per_spec = f.mean()
        best = per_spec.idxmax()
        rows.append({
            "arm": arm, "dates": len(days), "mean_ic": float(mean_all.mean()),
            "mean_ic_last_third": float(mean_last.mean()),
            "t_vs_expanding": _t(diff), "t_vs_expanding_last_third": _t(diff_last),
            "best_spec": "-".join(best), "best_spec_ic": float(per_spec[best]),
            "best_spec_ic_last_third": float(f.loc[last, best].mean()),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--families", default="ridge,screened_ridge")
    parser.add_argument("--halflives", default="252,756")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    families = args.families.split(",")
    halflives = [float(h) for h in args.halflives.split(",") if h]
    base = load_config(None)
    arms = {"expanding": None, **{f"halflife {h:g}": h for h in halflives}, "grid": "grid"}
    report = {}
    for folder in args.dirs:
        frames = load_view_frames(DataPaths(Path(folder)))
        daily = {}
        for arm, halflife in arms.items():
            started = time.perf_counter()
            result = train_zoo(frames, arm_config(base, families, halflife, halflives), log=None, families=families)
            daily[arm] = daily_by_spec(result.specs, frames["labels"])
            print(f"[halflife] {folder}: {arm} trained in {time.perf_counter() - started:.0f}s", flush=True)
        rows = summarize(daily)
        report[folder] = rows
        print(f"\n{folder}\n" + pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}"),
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
