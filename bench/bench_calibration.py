"""How much resolution and calibration the published expected return has, on finished runs.

For each data directory: the share of a day's names with a distinct expected return in `ml.signals`
(ties from the calibration curve), the rank IC of that expected return against the 5-day sector-neutral
label, the calibration error (`ml.calibration.calibration_error`) and its standard deviation under a
block bootstrap of the dates (21-day blocks, so overlapping labels stay together): how far two runs'
calibration errors can differ by chance.

Usage: python bench/bench_calibration.py DIR [DIR ...] [--draws 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.calibration import calibration_error  # noqa: E402
from ml.metrics import daily_rank_ic  # noqa: E402

LABEL = "fwd_ret_sn_5d"
BLOCK = 21


def signals_with_label(data_dir: Path) -> pd.DataFrame:
    """ml.signals' expected return beside the label demeaned per date (what a neutral book earns)."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        signals = con.execute("select date, symbol, expected_return from ml.signals").df()
    labels = pd.read_parquet(data_dir / "features" / "labels.parquet", columns=["date", "symbol", LABEL])
    for frame in (signals, labels):
        frame["date"] = pd.to_datetime(frame["date"])
    out = signals.merge(labels, on=["date", "symbol"])
    out[LABEL] -= out.groupby("date")[LABEL].transform("mean")
    return out


def bootstrap_sd(frame: pd.DataFrame, draws: int, seed: int) -> float:
    """Sd of the calibration error over resampled blocks of consecutive dates (each draw's copies of a
    block get their own date keys, so a date drawn twice counts twice)."""
    dates = np.sort(frame["date"].unique())
    block_of_date = pd.Series(np.arange(len(dates)) // BLOCK, index=dates)
    blocks = block_of_date.reindex(frame["date"]).to_numpy()
    n_blocks = int(blocks.max()) + 1
    rows_of = [np.flatnonzero(blocks == b) for b in range(n_blocks)]
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(draws):
        pick = rng.integers(0, n_blocks, n_blocks)
        rows = np.concatenate([rows_of[b] for b in pick])
        copy = np.repeat(np.arange(n_blocks), [len(rows_of[b]) for b in pick])
        sample = frame.iloc[rows].assign(date=lambda f, c=copy: f["date"] + pd.to_timedelta(c, unit="ns"))
        indexed = sample.set_index(["date", "symbol"])
        errors.append(calibration_error(indexed[["expected_return"]], indexed[LABEL]))
    return float(np.nanstd(errors))


def measure(data_dir: Path, draws: int, seed: int) -> dict[str, float | str]:
    frame = signals_with_label(data_dir)
    indexed = frame.set_index(["date", "symbol"])
    per_date = frame.groupby("date")["expected_return"]
    return {
        "run": str(data_dir),
        "distinct_share": float((per_date.nunique() / per_date.size()).median()),
        "er_rank_ic": float(daily_rank_ic(indexed[["expected_return"]], indexed[LABEL]).mean().iloc[0]),
        "calibration_error": calibration_error(indexed[["expected_return"]], indexed[LABEL]),
        "calibration_error_bootstrap_sd": bootstrap_sd(frame, draws, seed),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [measure(d, args.draws, args.seed) for d in args.dirs]
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
