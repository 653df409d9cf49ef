"""Benchmark `aurora generate`: wall time and peak memory at two scales.

Each scale runs in a fresh subprocess so peak RSS (ru_maxrss of the child) belongs to that run only.
Usage: python bench/bench_generate.py [--repeats 3] [--large-symbols 3000 --large-days 2500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys, time
from pathlib import Path
from ml.market import MarketConfig, write_market
n, d, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
t0 = time.perf_counter()
write_market(MarketConfig(n_symbols=n, n_days=d, seed=11), out / "raw")
print(time.perf_counter() - t0)
"""


def run_once(symbols: int, days: int) -> tuple[float, float, float]:
    """(wall seconds of the whole process, seconds inside write_market, peak RSS GiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(symbols), str(days), tmp],
            check=True, capture_output=True, text=True,
        )
        wall = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        inner = float(proc.stdout.strip().splitlines()[-1])
    return wall, inner, max(peak_kib, before) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-symbols", type=int, default=3000)
    parser.add_argument("--large-days", type=int, default=2500)
    args = parser.parse_args()
    results = {"machine": f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"}
    for label, symbols, days, repeats in (
        ("default", 130, 2000, args.repeats),
        ("large", args.large_symbols, args.large_days, 1),
    ):
        runs = [run_once(symbols, days) for _ in range(repeats)]
        results[label] = {
            "symbols": symbols,
            "days": days,
            "repeats": repeats,
            "wall_s_median": round(statistics.median(r[0] for r in runs), 2),
            "generate_s_median": round(statistics.median(r[1] for r in runs), 2),
            "peak_rss_gib_max": round(max(r[2] for r in runs), 2),
        }
        print(json.dumps({label: results[label]}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
