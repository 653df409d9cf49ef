"""The backtest's numerical noise floor: how far the held-book policy's result moves when its inputs move
by rounding alone.

The optimizer takes discrete decisions every day (trade or hold, which limit binds), so a perturbation
of 1e-12 in the expected returns can flip one of them, and the books then drift apart along the path.
Two backtests that differ by less than that drift cannot be told apart, however large their paired t
looks. On each finished run (a data directory after `aurora backtest`), this re-runs the policy stage's
chosen signals `--repeats` times with every expected return multiplied by (1 + eps * N(0, 1)), seeded,
and reports the spread of the Sharpe ratio and the paired t of the daily net return against the
unperturbed run. Writes nothing to the warehouse.

Usage: python bench/bench_policy_noise.py DATA_DIR [DATA_DIR ...] [--repeats 5] [--eps 1e-12] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml import policy as pol
from ml.backtest import sharpe
from ml.evaluation import load_market, read_ensemble_signals
from ml.metrics import ic_summary
from ml.paths import DataPaths
from ml.policy_stage import read_horizon_signals, run_policy


def perturbed(frame: pd.DataFrame, eps: float, rng: np.random.Generator) -> pd.DataFrame:
    """The signals with every expected return (and its interval and uncertainty) scaled by 1 + eps * z."""
    out = frame.copy()
    factor = 1.0 + eps * rng.standard_normal(len(out))
    for column in ("expected_return", "lower", "upper", "uncertainty"):
        if column in out.columns:
            out[column] = out[column].to_numpy(dtype="float64") * factor
    return out


def paired_t(a: pd.Series, b: pd.Series) -> float:
    """t of the mean daily difference b - a (`ml.metrics.ic_summary`'s t, daily: a path's drift is what is
    measured here); 0 for identical paths."""
    d = (b - a).dropna()
    return 0.0 if not d.abs().any() else float(ic_summary(d)["t_stat"])


def noise_floor(data_dir: Path, repeats: int, eps: float, seed: int = 0) -> dict:
    paths = DataPaths(data_dir)
    signals, chosen, _ = read_ensemble_signals(paths)
    market = load_market(paths)
    horizon_signals = read_horizon_signals(paths)
    policy = pol.policy_from_config(pol.load_config())
    started = time.perf_counter()
    base = run_policy(chosen, policy, signals[chosen], market, horizon_signals=horizon_signals)
    net0 = base.daily.set_index("date")["net_return"]
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(repeats):
        run = run_policy(chosen, policy, perturbed(signals[chosen], eps, rng), market,
                         horizon_signals=perturbed(horizon_signals, eps, rng) if len(horizon_signals) else None)
        net = run.daily.set_index("date")["net_return"]
        rows.append({"sharpe_net": sharpe(net), "paired_t": paired_t(net0, net),
                     "max_abs_daily_diff": float((net - net0).abs().max()),
                     "max_abs_weight_diff": float(np.abs(run.result.weights - base.result.weights).max())})
        print(f"[noise] {data_dir.name}: Sharpe net {rows[-1]['sharpe_net']:.3f} (base {sharpe(net0):.3f}), "
              f"paired t {rows[-1]['paired_t']:+.2f}", flush=True)
    frame = pd.DataFrame(rows)
    return {"market": data_dir.name, "days": len(net0), "sharpe_net": sharpe(net0),
            "sharpe_min": float(frame["sharpe_net"].min()), "sharpe_max": float(frame["sharpe_net"].max()),
            "abs_t_median": float(frame["paired_t"].abs().median()), "abs_t_max": float(frame["paired_t"].abs().max()),
            "max_abs_daily_diff": float(frame["max_abs_daily_diff"].max()),
            "max_abs_weight_diff": float(frame["max_abs_weight_diff"].max()),
            "seconds": time.perf_counter() - started}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dirs", nargs="+", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--eps", type=float, default=1e-12)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = [noise_floor(d, args.repeats, args.eps) for d in args.data_dirs]
    print(f"\nrelative perturbation {args.eps:g}, {args.repeats} repeats each; machine: {platform.node()}, "
          f"python {platform.python_version()}")
    print("| market | days | Sharpe net | perturbed: min – max | \\|paired t\\|: median, max | max \\|Δ daily net\\| "
          "| max \\|Δ weight\\| | s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['market']} | {r['days']} | {r['sharpe_net']:.3f} | {r['sharpe_min']:.3f} – {r['sharpe_max']:.3f} "
              f"| {r['abs_t_median']:.2f}, {r['abs_t_max']:.2f} | {r['max_abs_daily_diff']:.1e} "
              f"| {r['max_abs_weight_diff']:.1e} | {r['seconds']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
