"""Benchmark the Feast layer: full point-in-time training frame and online-retrieval latency.

Given `AURORA_DATA_DIR` with built feature marts (features/<view>.parquet, features/labels.parquet):
  1. `feast apply` (ml.feature_store.apply),
  2. the full default training frame: every (symbol, date) of the labels mart x all views + labels,
     through `get_historical_features` (ml.feature_store.training_frame),
  3. materializing the whole date range into the SQLite online store,
  4. online latency: all features of all symbols (latest vectors) per call, `--repeats` calls after
     `--warmup` calls, through ml.feature_store.online_vectors and through the bare
     FeatureStore.get_online_features (the difference is the API's DataFrame building).
The GX quality checkpoint (ml.quality.check_features) is timed too, with `--quality`.
Prints one JSON object.

Usage:
  AURORA_DATA_DIR=data .venv/bin/python bench/bench_feast.py [--repeats 200] [--quality]
  .venv/bin/python bench/bench_feast.py --standin [--symbols 130 --days 2016]   # random stand-in marts
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from ml import feature_store as fstore  # noqa: E402
from ml.paths import DataPaths  # noqa: E402


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000.0
    return {
        "calls": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def run(paths: DataPaths, repeats: int, warmup: int, quality: bool) -> dict:
    out: dict = {
        "machine": f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}",
        "data_dir": str(paths.root),
    }
    t0 = time.perf_counter()
    fs = fstore.apply(paths)
    out["apply_s"] = round(time.perf_counter() - t0, 3)

    entities = fstore.entity_frame(paths)
    t0 = time.perf_counter()
    frame = fstore.training_frame(paths, entities, views=None, with_labels=True)
    out["training_frame"] = {
        "seconds": round(time.perf_counter() - t0, 3),
        "rows": len(frame),
        "symbols": int(frame["symbol"].nunique()),
        "dates": int(frame["date"].nunique()),
        "feature_columns": len(fstore.feature_columns(frame)),
        "label_columns": len(fstore.label_columns(frame)),
        "non_null_share": round(float(frame.iloc[:, 2:].notna().to_numpy().mean()), 4),
    }

    t0 = time.perf_counter()
    fstore.materialize(paths, None, None, log=None)
    out["materialize_s"] = round(time.perf_counter() - t0, 3)

    symbols = sorted(entities["symbol"].unique().tolist())
    for _ in range(warmup):
        fstore.online_vectors(paths, symbols)
    api = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        vectors = fstore.online_vectors(paths, symbols)
        api.append(time.perf_counter() - t0)
    refs = [
        f"{c.split(fstore.SEP, 1)[0]}:{c.split(fstore.SEP, 1)[1]}" for c in fstore.feature_columns(vectors)
    ]
    bare = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fs.get_online_features(
            features=refs, entity_rows={"symbol": symbols}, full_feature_names=True
        ).to_dict()
        bare.append(time.perf_counter() - t0)
    out["online"] = {
        "symbols": len(symbols),
        "features": len(refs),
        "api_online_vectors": _percentiles(api),
        "bare_get_online_features": _percentiles(bare),
    }

    if quality:
        from ml import quality as q

        t0 = time.perf_counter()
        results = q.check_features(paths, log=None, raise_on_failure=False)
        out["quality"] = {
            "seconds_incl_gx_import": round(time.perf_counter() - t0, 3),
            "expectations": len(results),
            "failed": int((~results["success"]).sum()),
        }
        t0 = time.perf_counter()
        q.check_features(paths, log=None, raise_on_failure=False)
        out["quality"]["seconds_warm"] = round(time.perf_counter() - t0, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--quality", action="store_true", help="also time the GX quality checkpoint")
    parser.add_argument(
        "--standin", action="store_true", help="benchmark random stand-in marts in a temp dir"
    )
    parser.add_argument("--symbols", type=int, default=130)
    parser.add_argument("--days", type=int, default=2016)
    args = parser.parse_args()
    if args.standin:
        sys.path.insert(0, str(ROOT / "tests"))
        from standin_features import write_standin_features

        with tempfile.TemporaryDirectory(prefix="aurora-bench-feast-") as tmp:
            paths = DataPaths(Path(tmp))
            write_standin_features(paths.features, n_symbols=args.symbols, n_days=args.days)
            result = run(paths, args.repeats, args.warmup, args.quality)
            result["data"] = f"stand-in marts, {args.symbols} symbols x {args.days} business days"
    else:
        paths = DataPaths.from_env()
        if not (paths.features / "price_momentum.parquet").exists():
            sys.exit(f"no feature marts in {paths.features}: build features first, or pass --standin")
        result = run(paths, args.repeats, args.warmup, args.quality)
        result["data"] = "feature marts"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
