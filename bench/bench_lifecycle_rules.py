"""The lifecycle's levels on every scenario at once: false retirements of healthy models against
detection of a dying channel, for the shipped levels and their neighbours.

For each finished scenario run (a data directory with `ml.predictions`, labels and the generator's
manifest), the monitor's inputs are computed once (`ml.monitoring.stage.compute_ics`), then
`run_lifecycle` runs under each variant below and `bench/lifecycle_metrics.py` scores it. Nothing is
written to the runs. The levels are chosen where the whole table is acceptable, never on one row.

Usage: python bench/bench_lifecycle_rules.py --runs /tmp/scen_final [--runs /tmp/scen_real] [--markdown F]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lifecycle_metrics import lifecycle_metrics, market_truth, read_manifest, retirements_after  # noqa: E402

from ml.monitoring.config import load_config  # noqa: E402
from ml.monitoring.stage import compute_ics, run_lifecycle_groups  # noqa: E402
from ml.paths import DataPaths  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "shipped": {},
    "negative edge z 1.645": {"retirement": {"z": 1.645}},
    "negative edge z 3.09": {"retirement": {"z": 3.09}},
    "change point ARL0 20,000": {"changepoint": {"arl0_blocks": 20000}},
    "change point ARL0 320,000": {"changepoint": {"arl0_blocks": 320000}},
    "re-qualification off": {"requalification": {"enabled": False}},
    # the same nominal false-alarm rate per day on weekly / monthly block means, whose sd (measured at the
    # block's own scale) includes the IC's persistence: a lull lasting weeks is part of the in-control noise
    "change point on 5-day blocks": {"changepoint": {"block": 5, "arl0_blocks": 16000}},
    "change point on 21-day blocks": {"changepoint": {"block": 21, "arl0_blocks": 3810}},
    "judged against peers": {"peers": {"enabled": True}},
    "judged against other views' models": {"peers": {"enabled": True, "exclude": "view"}},
}


def runs_under(roots: list[Path]) -> list[tuple[str, Path]]:
    out = []
    for root in roots:
        for d in sorted(p for p in root.iterdir() if (p / "warehouse.duckdb").exists()):
            out.append((d.name, d))
    return out


def bench(runs: list[tuple[str, Path]], variants: list[str] | None = None) -> pd.DataFrame:
    chosen = {v: VARIANTS[v] for v in (variants or VARIANTS)}
    rows = []
    for name, data_dir in runs:
        started = time.perf_counter()
        cfg = load_config()
        try:
            inputs = compute_ics(DataPaths(data_dir), cfg, log=lambda m: None)
        except Exception as exc:  # a stopped run: say so and go on
            print(f"[bench] {name}: skipped ({exc})", flush=True)
            continue
        truth = market_truth(read_manifest(data_dir), name)
        t_inputs = time.perf_counter() - started
        for variant, over in chosen.items():
            t0 = time.perf_counter()
            res = run_lifecycle_groups(inputs, load_config(_merged(over)))
            m = lifecycle_metrics(res.events, res.status_daily, inputs.views, truth["dying_views"],
                                  truth["death_date"], truth["has_alpha"], res.lineage)
            after = retirements_after(res.events, inputs.groups[0].daily)  # the primary label's models
            rows.append({"scenario": name, "variant": variant, **m, **after, "seconds": time.perf_counter() - t0})
        print(f"[bench] {name}: inputs {t_inputs:.0f}s, {len(chosen)} variants in "
              f"{time.perf_counter() - started - t_inputs:.0f}s", flush=True)
    return pd.DataFrame(rows)


def _merged(over: dict[str, Any]) -> dict[str, Any]:
    """The shipped config file overlaid with a variant."""
    import yaml

    from ml.monitoring.config import DEFAULT_CONFIG_PATH

    base = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()) or {}
    for key, value in over.items():
        base[key] = {**base.get(key, {}), **value}
    return base


def markdown(frame: pd.DataFrame) -> str:
    """One row per variant, one column per scenario: false retirements /20y of healthy models, for
    markets with a dying channel the dying view retired within 3 months, the share live at the end, and
    the retired models' mean percentile among their peers the year after (n retirements)."""
    def cell(r: pd.Series) -> str:
        rate = "—" if pd.isna(r["false_retirements_per_20y"]) else f"{r['false_retirements_per_20y']:.2f}"
        k_of_n = r.get("dying_view_retired_within_3m")
        dying = f", dying {k_of_n}" if isinstance(k_of_n, str) and k_of_n else ""
        after = (f", after {r['retired_after_percentile']:.2f} (n {int(r['retired_after_n'])})"
                 if r.get("retired_after_n") else "")
        return f"{rate}{dying}, live {r['share_active_end']:.0%}{after}"
    table = frame.assign(cell=frame.apply(cell, axis=1)).pivot(index="variant", columns="scenario", values="cell")
    table = table.reindex([v for v in VARIANTS if v in set(frame["variant"])])
    head = "| variant | " + " | ".join(table.columns) + " |"
    rule = "|---" * (len(table.columns) + 1) + "|"
    body = [f"| {v} | " + " | ".join(str(x) for x in row) + " |" for v, row in table.iterrows()]
    return "\n".join([head, rule, *body])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", action="append", required=True, help="a directory of finished scenario runs")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS), help="only these (default: all)")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--csv", help="write every metric here")
    args = parser.parse_args()
    frame = bench(runs_under([Path(r) for r in args.runs]), args.variant)
    text = markdown(frame)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.csv:
        frame.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
