"""Other label horizons at their own speed (issue 13, item 3): the held-book policy on the chosen
ensemble's signals with and without the other horizons' signals, on built data directories whose zoo
trained extra-horizon models (`horizons:` in config/zoo.yaml).

For each directory: re-run the ensemble stage (writes ml.signals and ml.horizon_signals), then run the
configured policy twice on the chosen method's signals (without / with `ml.horizon_signals`) over the
same dates, and print Sharpe (net, gross), turnover, cost retention and each horizon's measured edge
and life (medians over the backtest). Walk-forward throughout: nothing here is picked with hindsight.

Usage: python bench/bench_horizons.py --dirs DIR[,DIR...] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ml import policy as pol
from ml.evaluation import load_market, read_ensemble_signals, run_ensemble_stage
from ml.paths import DataPaths
from ml.policy_stage import read_horizon_signals, run_policy


def one(directory: Path, log) -> dict:
    paths = DataPaths(directory)
    t0 = time.perf_counter()
    report = run_ensemble_stage(paths, log=log)
    signals, chosen, _ = read_ensemble_signals(paths)
    hsig = read_horizon_signals(paths)
    market = load_market(paths)
    policy = pol.policy_from_config(pol.load_config())
    out = {"dir": str(directory), "chosen": chosen, "oos_rank_ic": report["oos_rank_ic"],
           "horizons": sorted(int(h) for h in hsig["horizon"].unique()) if len(hsig) else []}
    base = run_policy(chosen, policy, signals[chosen], market)
    start = base.result.start
    runs = {"without": base}
    if len(hsig):
        runs["with"] = run_policy(chosen, policy, signals[chosen], market, start=start, horizon_signals=hsig)
    for name, run in runs.items():
        m = run.metrics
        out[name] = {k: float(m[k]) for k in ("sharpe_net", "sharpe_gross", "turnover_monthly", "cost_retention",
                                                 "max_drawdown", "ann_return_net")}
        const = run.result.constants
        if const is not None and len(const):
            med = const.groupby("constant")["value"].median()
            out[name]["constants"] = {k: float(v) for k, v in med.items()
                                      if k.startswith(("edge_per_bp", "holding_horizon_days"))}
    out["seconds"] = time.perf_counter() - t0
    log(json.dumps(out, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dirs", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    results = [one(Path(d), log) for d in args.dirs.split(",")]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    for r in results:
        w, wo = r.get("with"), r["without"]
        print(f"{r['dir']}: horizons {r['horizons']}; Sharpe net {wo['sharpe_net']:.2f}"
              + (f" -> {w['sharpe_net']:.2f}, turnover {wo['turnover_monthly']:.2f} -> {w['turnover_monthly']:.2f}"
                 if w else " (no other horizons)"))


if __name__ == "__main__":
    main()
