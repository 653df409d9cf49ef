"""How alike two zoo families score: the mean daily rank correlation of their out-of-sample scores, per
view, on finished runs (a scenario bench's data directories). Two families that score nearly alike on
every market buy the ensemble little for the time of both (BENCHMARKS.md, "make run and make test time").

Usage: python bench/bench_family_similarity.py --dirs /tmp/scen/default /tmp/scen/slow ...
                                               [--pairs lightgbm:xgboost,lightgbm:extra_trees]
Reads `ml.model_metrics` and `ml.predictions` (5-day models only; the extra-horizon `@<h>d` models are left
out) and prints one row per (market, view), one column per pair present.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
import pandas as pd

DEFAULT_PAIRS = ("lightgbm:xgboost", "lightgbm:extra_trees", "xgboost:extra_trees", "catboost:lightgbm",
                 "random_forest:extra_trees", "mlp:ridge")


def mean_rank_correlation(scores: pd.DataFrame, a: str, b: str) -> float:
    """Mean over dates of the Spearman correlation of columns a and b (rows where both score)."""
    both = scores[[a, b]].dropna()
    ranks = both.groupby(level="date").rank()
    per_date = ranks.groupby(level="date").corr().xs(a, level=1)[b]
    return float(per_date.mean())


def similarity(data_dir: Path, pairs: list[tuple[str, str]]) -> list[dict]:
    """One row per view of one run: the pairs' mean daily rank correlations."""
    rows = []
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        models = con.execute("select model_id, family, view from ml.model_metrics").df()
        models = models[~models["model_id"].str.contains("@")]
        for view, group in models.groupby("view"):
            ids = group.set_index("family")["model_id"].to_dict()
            wanted = sorted({ids[f] for pair in pairs for f in pair if all(g in ids for g in pair)})
            if not wanted:
                continue
            preds = con.execute("select date, symbol, model_id, score from ml.predictions where model_id in "
                                f"({', '.join('?' * len(wanted))})", wanted).df()
            scores = preds.pivot_table(index=["date", "symbol"], columns="model_id", values="score")
            row = {"market": data_dir.name, "view": view}
            for a, b in pairs:
                if a in ids and b in ids:
                    row[f"{a}~{b}"] = round(mean_rank_correlation(scores, ids[a], ids[b]), 3)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dirs", nargs="+", required=True, help="finished runs' data directories")
    parser.add_argument("--pairs", default=",".join(DEFAULT_PAIRS), help="family:family, comma separated")
    args = parser.parse_args()
    pairs = [tuple(p.split(":", 1)) for p in args.pairs.split(",") if ":" in p]
    rows = [r for d in args.dirs for r in similarity(Path(d), pairs)]
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False) if len(table) else "no run with both families of any pair")


if __name__ == "__main__":
    main()
