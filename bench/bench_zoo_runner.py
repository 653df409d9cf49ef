"""Threads or processes for the zoo's specs: wall time and per-spec time of the same specs run
serially, on a thread pool, and on a process pool (`make run` fans specs out to 2 workers).

Why: a spec whose inner loops hold the GIL (pandas per-date work, JAX dispatch) slows the spec on the
other thread; a process pool does not share a GIL but prepares each view once per worker process.

    .venv/bin/python bench/bench_zoo_runner.py --frames data/artifacts/training \
        --families ridge,lightgbm,mlp,catboost --views price_momentum,sector_neutral --modes serial,thread,process
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows import pipeline  # noqa: E402
from ml import training  # noqa: E402


def _frame_files(frames_dir: str) -> dict[str, str]:
    return {f.stem: str(f) for f in sorted(Path(frames_dir).glob("*.parquet"))}


def _spec(frames_dir: str, family: str, view: str) -> tuple[str, str, float, float, int]:
    """Train one spec as `aurora run`'s task does (the flow's per-process prepared views); (family, view,
    spec seconds, seconds spent getting the prepared view in this call, pid)."""
    cfg = training.load_config()
    t0 = time.perf_counter()
    prep = pipeline._prepared_view(_frame_files(frames_dir), view, cfg)
    prep_s = time.perf_counter() - t0
    res = training.train_spec(prep, family, cfg)
    return family, view, res.elapsed_s, prep_s, os.getpid()


def run(mode: str, frames_dir: str, specs: list[tuple[str, str]], workers: int) -> dict:
    started = time.perf_counter()
    if mode == "serial":
        out = [_spec(frames_dir, f, v) for f, v in specs]
    else:
        pool: Executor = (ThreadPoolExecutor(workers) if mode == "thread" else ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")))
        with pool:
            out = list(pool.map(_spec, [frames_dir] * len(specs), [f for f, _ in specs], [v for _, v in specs]))
    wall = time.perf_counter() - started
    return {"mode": mode, "wall_s": wall, "spec_s": {f"{f}:{v}": s for f, v, s, _, _ in out},
            "prepare_s": sum(p for *_, p, _ in out)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", required=True, help="artifacts/training of a finished run")
    ap.add_argument("--families", required=True)
    ap.add_argument("--views", required=True)
    ap.add_argument("--modes", default="serial,thread,process")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    cfg = training.load_config()
    specs = [(f, v) for v in args.views.split(",") for f in args.families.split(",") if training.runs_on(cfg, f, v)]
    print(f"{len(specs)} specs: {specs}", flush=True)
    results = []
    for mode in args.modes.split(","):
        pipeline._BUILT.clear()  # each mode starts cold, as a run does
        pipeline._PREPARED.clear()
        r = run(mode, args.frames, specs, args.workers)
        results.append(r)
        print(f"{mode:8s} wall {r['wall_s']:7.1f}s  spec-sum {sum(r['spec_s'].values()):7.1f}s  "
              f"prepare-sum {r['prepare_s']:5.1f}s", flush=True)
    base = next((r for r in results if r["mode"] == "serial"), None)
    if base:
        print("\nper-spec time relative to serial (median over specs):")
        for r in results:
            ratios = [r["spec_s"][k] / base["spec_s"][k] for k in base["spec_s"] if base["spec_s"][k] > 0.5]
            print(f"  {r['mode']:8s} median {statistics.median(ratios):.2f}x  "
                  f"min {min(ratios):.2f}x  max {max(ratios):.2f}x")
        print("\nspec seconds:")
        for k in base["spec_s"]:
            print(f"  {k:32s} " + "  ".join(f"{r['mode']}={r['spec_s'][k]:6.1f}" for r in results))


if __name__ == "__main__":
    main()
