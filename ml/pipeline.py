"""The daily pipeline as a plain function: the stages that exist today, in order.

Prefect flows wrap this later; keeping it here lets tests and the CLI run it without a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ml.paths import DataPaths
from ml.report import build_report, render_report


def run_pipeline(paths: DataPaths, log: Callable[[str], None] = print) -> int:
    if not paths.raw_table("prices").exists():
        log(f"no raw data in {paths.raw}: run `aurora generate` or `aurora ingest` first")
        return 1
    started = time.perf_counter()
    log(f"pipeline on {paths.root}")
    # Feature building, training and the policy join here as their issues land.
    log(f"pipeline done in {time.perf_counter() - started:.1f}s")
    print(render_report(build_report(paths)))
    return 0
