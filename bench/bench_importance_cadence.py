"""What feature importance at every refit costs: spec seconds of the same specs with importance off,
measured once a year (the session-9 default: `interval: Y`, 42 dates, a predict per feature), and at
every refit on the yearly date budget (`interval: null`, `dates_per_year: 42`, linear families by score
shifts). One process, the same prepared views, specs run one after another.

    .venv/bin/python bench/bench_importance_cadence.py --frames data/artifacts/training \\
        --specs ridge:all,regime_ridge:all,lightgbm:all,mlp:sector_neutral,gru:price_momentum
"""

from __future__ import annotations

import argparse
import sys
from copy import deepcopy
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ml.importance as imp  # noqa: E402
from ml import training  # noqa: E402

SETTINGS = {
    "off": {"enabled": False},
    "yearly": {"interval": "Y", "dates_per_year": 42, "max_dates": 42, "min_dates": 10, "_linear_shift": False},
    "every refit": {"interval": None, "dates_per_year": 42, "max_dates": 42, "_linear_shift": True},
}


def run(prep, family: str, cfg: dict, setting: dict) -> tuple[float, float, int]:
    c = deepcopy(cfg)
    setting = dict(setting)
    shift = setting.pop("_linear_shift", True)
    c["importance"] = {**c.get("importance", {}), **setting}
    original = imp.linear_coefficients
    if not shift:
        imp.linear_coefficients = lambda model, columns: None
    try:
        res = training.train_spec(prep, family, c, fit_final=False)
    finally:
        imp.linear_coefficients = original
    folds = res.folds
    return res.elapsed_s, float(folds["importance_s"].sum()), int((folds["importance_s"] > 0).sum())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", required=True)
    ap.add_argument("--specs", required=True, help="family:view,...")
    args = ap.parse_args(argv)
    cfg = training.load_config()
    frames = {f.stem: pd.read_parquet(f) for f in Path(args.frames).glob("*.parquet")}
    built = training.build_view_frames(frames, cfg)
    preps: dict = {}
    print("| spec | refits | off (s) | yearly: spec s / importance s / measured | every refit: spec s / importance s "
          "/ measured | every refit vs yearly, spec time |")
    print("|---|---|---|---|---|---|")
    for item in args.specs.split(","):
        family, view = item.split(":")
        if view not in preps:
            preps[view] = training.prepare_view(built[view], view, cfg)
        out = {name: run(preps[view], family, cfg, s) for name, s in SETTINGS.items()}
        y, e = out["yearly"], out["every refit"]
        print(f"| {family} x {view} | {e[2]} | {out['off'][0]:.1f} | {y[0]:.1f} / {y[1]:.1f} / {y[2]} | "
              f"{e[0]:.1f} / {e[1]:.1f} / {e[2]} | {e[0] / y[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
