"""The primary ensemble with and without the other horizons' models (`other_horizons` in config/ensemble.yaml).

Reads a finished run's warehouse (`ml.predictions` masked by each model's point-in-time lifecycle status, the
registry, the label) and builds every configured ensemble method on the primary label from
  - the primary horizon's models only (`other_horizons: none`),
  - those plus each other horizon's models, one horizon at a time (with the 1-day ones alone: `shorter`,
    the shipped default, when 1 is the only shorter horizon),
  - those plus every other horizon's models (`other_horizons: all`),
then prints each method's out-of-sample mean daily rank IC against the primary label, and the t of the
configured method's daily IC difference from the primary-only arm (paired by date, on len / horizon
independent dates, as the labels overlap). Every arm is
walk-forward (the weights at t use labels known by t); nothing reads the oracle.

Usage: python bench/bench_ensemble_horizons.py --data-dir DIR [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ml import ensemble as ens
from ml import horizon_signals as hz
from ml.evaluation import load_label, load_market, read_prediction_panel
from ml.metrics import daily_rank_ic
from ml.paths import DataPaths


def arms(primary: list[str], others: dict[int, list[str]]) -> dict[str, list[str]]:
    """{arm name: model ids}: the primary alone, plus each other horizon, plus all of them."""
    out = {"primary only": list(primary)}
    for h, models in others.items():
        out[f"+ {h}d models"] = list(primary) + list(models)
    if len(others) > 1:
        out["+ every horizon (other_horizons: all)"] = list(primary) + [m for h in sorted(others) for m in others[h]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a finished run's data directory")
    parser.add_argument("--json", type=Path, default=None, help="write the table as JSON here")
    args = parser.parse_args()
    paths = DataPaths(args.data_dir)
    cfg = ens.load_config(None)
    read = read_prediction_panel(paths)
    market = load_market(paths)
    label, source = load_label(paths, market, cfg)
    usable = [m for m in read.scores.columns if read.active is None or m in set(read.active)]
    by_horizon = hz.models_by_horizon(usable, int(cfg["horizon"]))
    primary = by_horizon.pop(int(cfg["horizon"]), [])
    print(f"{args.data_dir}: label {source}; models per horizon: primary {len(primary)}, "
          + ", ".join(f"{h}d {len(v)}" for h, v in by_horizon.items()), flush=True)
    rows, chosen, base = [], str(cfg["method"]), None
    horizon = int(cfg["horizon"])
    with ens.shared_daily_ic():
        for name, models in arms(primary, by_horizon).items():
            started = time.perf_counter()
            _, results = ens.ensembles_from_config(read.scores[models], label, cfg, families=read.families,
                                                   date_multipliers=read.multipliers)
            row = {"arm": name, "models": len(models), "seconds": round(time.perf_counter() - started, 1)}
            daily = {m: daily_rank_ic(r.score.to_frame("s"), label)["s"] for m, r in results.items()}
            for method, ic in daily.items():
                row[method] = round(float(ic.mean()), 4)
            if base is None:
                base = daily[chosen]
            else:  # the configured method against the primary-only arm, paired by date
                diff = (daily[chosen] - base).dropna()
                # 5-day labels overlap: count len / horizon independent dates
                row[f"t_vs_primary_{chosen}"] = round(float(diff.mean() / (diff.std() / np.sqrt(len(diff) / horizon))), 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
