"""Is the ensemble at least as good as the best single model picked walk-forward? (issue 12, target 4)

For each finished scenario run, the shipped ensembles (`config/ensemble.yaml`, the lifecycle's
point-in-time mask and multipliers, as the `ensemble_calibrate` stage builds them) and the
walk-forward pick (`ml.ensemble.BestTrailing`: each date, the model with the best trailing ICIR
known then) are scored over the same dates by the project's rank IC (`ml.metrics.daily_rank_ic`).
The difference of the daily ICs gets a Newey-West t (overlapping 5-day labels): a shortfall whose t
is above -2 is a tie, not a loss. Stacked variants with other ridge strengths are shown beside the
shipped one (`--alphas`), chosen walk-forward or fixed.

Usage: python bench/bench_ensemble_vs_best.py DIR [DIR ...] [--markdown F]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml import ensemble as ens  # noqa: E402
from ml.evaluation import load_label, read_prediction_panel  # noqa: E402
from ml.metrics import daily_rank_ic  # noqa: E402
from ml.monitoring.ic import nw_t_stat  # noqa: E402
from ml.paths import DataPaths  # noqa: E402


def compare(data_dir: Path, extra: dict[str, ens.Weighter]) -> dict[str, float | str]:
    """Mean daily rank IC of each ensemble and of the walk-forward pick over their common dates, and
    the Newey-West t of the chosen ensemble's daily difference to the pick."""
    paths = DataPaths(data_dir)
    cfg = ens.load_config()
    horizon = int(cfg["horizon"])
    pp = read_prediction_panel(paths)
    label, _ = load_label(paths, None, cfg)
    panel = ens.standardize(pp.scores, float(cfg["standardize"]["clip"]), cfg["standardize"]["method"])
    weighters = {m: ens.make_weighter(m, cfg, horizon) for m in ens.METHODS}
    weighters.update(extra)
    weighters["walk-forward best single"] = ens.BestTrailing(horizon=horizon)
    scores = {name: ens.build_ensemble(panel, label, w, date_multipliers=pp.multipliers).score
              for name, w in weighters.items()}
    daily = daily_rank_ic(pd.DataFrame(scores).dropna(), label).dropna()
    out: dict[str, float | str] = {"scenario": data_dir.name, "dates": len(daily)}
    out.update({k: float(v) for k, v in daily.mean().items()})
    diff = daily[cfg["method"]] - daily["walk-forward best single"]
    mean, t, _ = nw_t_stat(diff.to_numpy(), horizon)
    out["chosen - best"] = mean
    out["t (NW)"] = t
    out["verdict"] = "ahead" if mean >= 0 else ("tie (t > -2)" if t > -2 else "behind")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--alphas", default="", help="comma-separated extra stacked ridge strengths, "
                        "'grid' for the walk-forward choice among 0.1,1,10")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    extra: dict[str, ens.Weighter] = {}
    for a in filter(None, args.alphas.split(",")):
        extra[f"stacked alpha {a}"] = ens.Stacked(alpha=[0.1, 1.0, 10.0] if a == "grid" else float(a))
    rows = []
    for d in args.dirs:
        started = time.perf_counter()
        rows.append(compare(Path(d), extra))
        print(f"[bench] {Path(d).name} in {time.perf_counter() - started:.0f}s", flush=True)
    table = pd.DataFrame(rows)
    text = table.to_markdown(index=False, floatfmt=".4f")
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
