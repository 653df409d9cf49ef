"""Benchmark the feature build (`dbt build`, tests and the research marts included) at several sizes.

Each size gets its own data directory with a freshly generated market (default 2,016 days), then
`ml.warehouse.build_features` runs `repeats` times; the median wall time is reported, with the time
its research models took (the sum of their node times) and the wall time of rebuilding the research
marts alone (`ml.data.research.build_research_marts`: one more dbt start, then the same models).
Usage: python bench/bench_features.py [--symbols 130 500 1500] [--days 2016] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from ml.data.research import build_research_marts
from ml.market import MarketConfig, write_market
from ml.paths import DataPaths
from ml.warehouse import build_features


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, nargs="+", default=[130, 500, 1500])
    parser.add_argument("--days", type=int, default=2016)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = []
    for n in args.symbols:
        with tempfile.TemporaryDirectory(prefix=f"bench-features-{n}-") as tmp:
            paths = DataPaths(Path(tmp))
            write_market(MarketConfig(n_symbols=n, n_days=args.days, seed=11), paths.raw)
            times, research_nodes, research_alone = [], [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                result = build_features(paths, log=lambda *_a, **_k: None)
                times.append(time.perf_counter() - started)
                research_nodes.append(sum(n.seconds for n in result.nodes if n.research))
                started = time.perf_counter()
                build_research_marts(paths, log=lambda *_a, **_k: None)
                research_alone.append(time.perf_counter() - started)
            rows = sum(1 for _ in (paths.features).glob("*.parquet"))
            row = {
                "symbols": n,
                "days": args.days,
                "repeats": args.repeats,
                "median_s": round(statistics.median(times), 2),
                "min_s": round(min(times), 2),
                "research_nodes_s": round(statistics.median(research_nodes), 2),
                "research_alone_s": round(statistics.median(research_alone), 2),
                "marts": rows,
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    if len(results) > 1:
        base = results[0]
        for row in results[1:]:
            ratio = row["median_s"] / base["median_s"]
            print(f"{row['symbols']} vs {base['symbols']} symbols: {ratio:.2f}x the time for "
                  f"{row['symbols'] / base['symbols']:.1f}x the names")


if __name__ == "__main__":
    main()
