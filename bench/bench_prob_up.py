"""prob_up on built scenario runs (issue 16, item 4): re-run the ensemble_calibrate stage on each data
dir (no retraining: it reads the run's `ml.predictions`) and report, for the chosen ensemble, the
Brier score, the Brier skill against the base rate known at the time, the candidate `auto` used at
the latest refit and a reliability table (deciles of prob_up: mean predicted, observed share, count).

    python bench/bench_prob_up.py --dirs /tmp/p4/default,/tmp/p4/no_alpha [--json OUT] [--no-rerun]

Point it at copies: the stage replaces the dir's ml.signals, ml.ensemble_* tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml import ensemble as ens  # noqa: E402
from ml.evaluation import load_label, load_market, run_ensemble_stage  # noqa: E402
from ml.paths import DataPaths  # noqa: E402
from ml.probability import brier_score, reliability_table, up_outcome  # noqa: E402


def measure(data_dir: Path, rerun: bool = True) -> dict:
    paths = DataPaths.from_env(data_dir)
    started = time.perf_counter()
    if rerun:
        run_ensemble_stage(paths, log=lambda _m: None)
    seconds = time.perf_counter() - started
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        signals = con.execute("select date, symbol, prob_up from ml.signals").df()
        table = con.execute("select * from ml.ensemble_comparison where kind = 'ensemble'").df()
    label, _ = load_label(paths, load_market(paths), ens.load_config())
    index = pd.MultiIndex.from_arrays([pd.to_datetime(signals["date"]), signals["symbol"].astype(str)])
    prob = pd.Series(signals["prob_up"].to_numpy(dtype="float64"), index=index)
    y = up_outcome(label).reindex(index)
    rel = reliability_table(prob, y, n_bins=10)
    chosen = table[table["chosen"].astype(bool)].iloc[0]
    return {
        "market": data_dir.name, "ensemble": str(chosen["name"]), "rows": int(y.notna().sum()),
        "brier_score": float(chosen["brier_score"]), "brier_skill": float(chosen["brier_skill"]),
        "brier_recomputed": brier_score(prob, y), "base_rate": float(chosen["base_rate"]),
        "prob_method": str(chosen["prob_method"]), "rank_ic": float(chosen["rank_ic"]),
        "prob_min": float(prob.min()), "prob_max": float(prob.max()),
        "every_ensemble": {str(r["name"]): {"brier_score": float(r["brier_score"]), "brier_skill": float(r["brier_skill"]),
                                            "prob_method": str(r["prob_method"])} for _, r in table.iterrows()},
        "reliability": rel.to_dict(orient="records"), "stage_s": round(seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dirs", required=True, help="comma-separated built data dirs (copies)")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--no-rerun", action="store_true", help="read what the last stage run wrote")
    args = parser.parse_args()
    rows = []
    for d in args.dirs.split(","):
        row = measure(Path(d).resolve(), rerun=not args.no_rerun)
        rows.append(row)
        print(f"{row['market']:<12} {row['ensemble']:<12} Brier {row['brier_score']:.5f}  skill "
              f"{row['brier_skill']:+.5f}  base {row['base_rate']:.3f}  {row['prob_method']:<8} prob_up "
              f"[{row['prob_min']:.3f}, {row['prob_max']:.3f}]  rank IC {row['rank_ic']:+.4f}  ({row['stage_s']}s)",
              flush=True)
        print(pd.DataFrame(row["reliability"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
