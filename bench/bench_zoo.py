"""Benchmark the model zoo: walk-forward time per family and view, and out-of-sample rank IC next to
the oracle's rank IC over the same dates (synthetic market only; this script, an evaluation, is the
only zoo code that reads `oracle/`).

Reads the feature marts under the data directory (`$AURORA_DATA_DIR`, or --data-dir), building them
with `ml.warehouse.build_features` when they are missing. With --scale N [N ...] it also generates
markets of N symbols in temporary directories, builds their features and times the same zoo there.

Usage: python bench/bench_zoo.py [--data-dir DIR] [--config config/zoo.yaml] [--families a,b]
                                 [--views v,w] [--scale 130 260] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml.metrics import daily_ic
from ml.paths import DataPaths
from ml.training import ALL_VIEW, load_config, load_view_frames, train_zoo


def ensure_features(paths: DataPaths, log) -> None:
    if (paths.features / "labels.parquet").exists():
        return
    from ml.warehouse import build_features

    log(f"building features in {paths.root}")
    build_features(paths, log=lambda *_a, **_k: None)


def oracle_rank_ic(paths: DataPaths, label: str) -> pd.Series | None:
    """Daily rank IC of the oracle's 5-day expected return against the realized label."""
    path = paths.oracle / "expected_returns.parquet"
    if not path.exists():
        return None
    oracle = pd.read_parquet(path, columns=["date", "symbol", "er_5d"])
    labels = pd.read_parquet(paths.features / "labels.parquet", columns=["date", "symbol", label])
    for frame in (oracle, labels):
        frame["date"] = pd.to_datetime(frame["date"])
        frame["symbol"] = frame["symbol"].astype(str)
    merged = labels.merge(oracle, on=["date", "symbol"], how="inner")
    return daily_ic(merged, "er_5d", label)


def same_dates_rank_ic(specs, labels: pd.DataFrame, label: str) -> tuple[list[float], int]:
    """Each spec's mean daily rank IC over the dates every spec predicted (their intersection), so
    families with different cadences or warm-ups compare on the same days; and that number of days."""
    days = None
    for spec in specs:
        d = set(pd.to_datetime(spec.predictions["date"]).unique())
        days = d if days is None else days & d
    lab = labels[["date", "symbol", label]].assign(date=pd.to_datetime(labels["date"]),
                                                   symbol=labels["symbol"].astype(str))
    out = []
    for spec in specs:
        pred = spec.predictions[pd.to_datetime(spec.predictions["date"]).isin(list(days or ()))]
        merged = pred.assign(date=pd.to_datetime(pred["date"])).merge(lab, on=["date", "symbol"], how="inner")
        out.append(float(daily_ic(merged, "score", label).mean()) if len(merged) else float("nan"))
    return out, len(days or ())


def run(paths: DataPaths, config, families, views, log) -> dict:
    ensure_features(paths, log)
    cfg = load_config(config)
    frames = load_view_frames(paths)
    n_symbols = int(frames["labels"]["symbol"].nunique())
    n_days = int(frames["labels"]["date"].nunique())
    started = time.perf_counter()
    result = train_zoo(frames, cfg, log=log, families=families, views=views)
    total = time.perf_counter() - started
    metrics = result.metrics.copy()
    label = cfg["evaluation"]["labels"][int(cfg["evaluation"]["primary"])]
    metrics["rank_ic_same_dates"], n_same = same_dates_rank_ic(result.specs, frames["labels"], label)
    oracle = oracle_rank_ic(paths, label)
    if oracle is not None:
        oracle_by_spec = []
        for spec in result.specs:
            days = pd.DatetimeIndex(spec.predictions["date"].unique())
            oracle_by_spec.append(float(oracle[oracle.index.isin(days)].mean()))
        metrics["oracle_rank_ic"] = oracle_by_spec
        metrics["share_of_oracle"] = metrics["rank_ic"] / metrics["oracle_rank_ic"]
    per_family = metrics.groupby("family")["seconds"].sum().sort_values(ascending=False)
    per_view = {v: result.timings.get(f"prepare:{v}", 0.0) + metrics.loc[metrics["view"] == v, "seconds"].sum()
                for v in metrics["view"].unique()}
    best = metrics.loc[metrics["rank_ic"].idxmax()]
    return {
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_end": os.getloadavg()},
        "data": {"dir": str(paths.root), "symbols": n_symbols, "days": n_days,
                 "rows": int(len(frames["labels"]))},
        "total_s": round(total, 1),
        "same_dates": n_same,
        "per_family_s": {k: round(v, 1) for k, v in per_family.items()},
        "per_view_s": {k: round(v, 1) for k, v in per_view.items()},
        "best": {"model_id": best["model_id"], "family": best["family"], "view": best["view"],
                 "rank_ic": round(float(best["rank_ic"]), 4),
                 "oracle_rank_ic": round(float(best.get("oracle_rank_ic", np.nan)), 4),
                 "share_of_oracle": round(float(best.get("share_of_oracle", np.nan)), 3)},
        "metrics": metrics,
    }


def render(report: dict) -> str:
    m = report["metrics"]
    lines = [f"data: {report['data']}", f"machine: {report['machine']}",
             f"total: {report['total_s']}s", "seconds per family (all views): " + json.dumps(report["per_family_s"]),
             "seconds per view (incl. preprocessing): " + json.dumps(report["per_view_s"])]
    views = [v for v in dict.fromkeys(m["view"]) if v != ALL_VIEW] + ([ALL_VIEW] if ALL_VIEW in set(m["view"]) else [])
    table = m.pivot(index="family", columns="view", values="rank_ic")[views]
    table = table.loc[list(dict.fromkeys(m["family"]))]
    lines.append("\nOOS rank IC (5-day sector-neutral label), family x view:")
    lines.append(table.to_string(float_format=lambda x: f"{x:+.4f}"))
    if "rank_ic_same_dates" in m:
        same = m.pivot(index="family", columns="view", values="rank_ic_same_dates")[views].loc[table.index]
        lines.append(f"\nOOS rank IC on the {report.get('same_dates', '?')} dates every spec predicted:")
        lines.append(same.to_string(float_format=lambda x: f"{x:+.4f}"))
    if "oracle_rank_ic" in m:
        lines.append(f"oracle rank IC over the same dates: {m['oracle_rank_ic'].mean():.4f}")
    cols = ["family", "view", "rank_ic", "rank_ic_same_dates", "ic", "icir", "t_stat", "hit_rate", "decile_spread",
            "ic_decay_1", "ic_decay_5", "ic_decay_21", "seconds"]
    lines.append("\n" + m[[c for c in cols if c in m]].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    lines.append(f"\nbest single model: {report['best']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--config", default=None)
    parser.add_argument("--families", default=None, help="comma-separated subset")
    parser.add_argument("--views", default=None, help="comma-separated subset")
    parser.add_argument("--scale", type=int, nargs="*", default=[], help="also time generated markets of N symbols")
    parser.add_argument("--days", type=int, default=2016)
    parser.add_argument("--json", default=None, help="write the reports (with all metrics) here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    log = (lambda *_a, **_k: None) if args.quiet else (lambda msg: print(msg, flush=True))
    families = args.families.split(",") if args.families else None
    views = args.views.split(",") if args.views else None
    reports = []
    report = run(DataPaths.from_env(args.data_dir), args.config, families, views, log)
    print(render(report), flush=True)
    reports.append(report)
    for n in args.scale:
        from ml.market import MarketConfig, write_market

        with tempfile.TemporaryDirectory(prefix=f"bench-zoo-{n}-") as tmp:
            paths = DataPaths(Path(tmp))
            write_market(MarketConfig(n_symbols=n, n_days=args.days, seed=11), paths.raw)
            rep = run(paths, args.config, families, views, log)
            print(f"\n== {n} symbols: total {rep['total_s']}s, per family {rep['per_family_s']}", flush=True)
            print(f"   best {rep['best']}", flush=True)
            reports.append(rep)
    if args.json:
        out = [{**r, "metrics": r["metrics"].to_dict(orient="records")} for r in reports]
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
