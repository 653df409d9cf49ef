"""The scenario bench: the whole pipeline (`aurora run`) on markets Aurora was not tuned on.

Each scenario is a synthetic market from a different data-generating process (`aurora generate
--scenario NAME`, see docs/scenarios.md), plus two real panels ingested with `aurora ingest`: 20 US
large caps, 1990-2022 (`real_sp20`), and 64 UK large caps, 2000-2023 (`real_ftse64`), daily closes only
(ml/data/sample_panels.py). For each, in its own data directory, the bench runs
`aurora run` as a user would and reads back what the run wrote:

- OOS rank IC of the traded ensemble, and its share of the oracle's rank IC (synthetic markets with
  alpha only; `no_alpha` has none);
- the best single model picked walk-forward (`best_trailing`: each month, the model with the best
  trailing IC so far), never the hindsight best;
- a plain baseline: the textbook 5-day reversal through a book that trades 5% of the way to its
  dollar-neutral rank target each day, with the policy's own cost model, over the policy's dates;
- Sharpe gross and net, the oracle's expected returns through the same policy, max drawdown,
  monthly turnover (share of the book), mean gross exposure, models active and retired, runtime;
- the lifecycle (a second table, `bench/lifecycle_metrics.py`): the share of the zoo live at the end,
  retirements by rule, false retirements of healthy models per 20 live model-years (the `all` view
  apart), the dying channel's view retired within 3 months of its death and the detection lag, and
  whether the traded ensemble's IC reaches the walk-forward best single model's.

Usage:
    python bench/bench_scenarios.py [--scenarios default,price_only,...] [--fast] [--work DIR]
                                    [--json OUT] [--markdown OUT]
    python bench/bench_scenarios.py --collect-only --work DIR [--json OUT]   # re-read finished runs
    python bench/bench_scenarios.py --rerun-from monitor --work DIR [--json OUT]
`--fast` runs every scenario at a small size with the small test zoo (what `make test` runs).
`--rerun-from STAGE` re-runs the stages after training, from STAGE (monitor, ensemble_calibrate or
policy_backtest) through policy_backtest, on each finished run under --work (the zoo is not retrained;
the report is updated with each stage's values), then collects; `--rerun-tail` adds publish_signals and
monitoring_marts. The runtimes in the rows stay those of the original runs (read from --json).
`--zoo-horizons` trains the shipped zoo plus extra label horizons (HORIZONS, ml/models/horizons.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lifecycle_metrics import at_least, scenario_lifecycle  # noqa: E402
from scenario_tables import COLUMNS, lifecycle_markdown, markdown, textbook_markdown  # noqa: E402, F401
from textbook import textbook_row  # noqa: E402

from ml import policy as pol  # noqa: E402
from ml.backtest import market_panel  # noqa: E402
from ml.baselines import baseline_metrics, plain_book_from_config, reversal_5d  # noqa: E402
from ml.metrics import daily_ic  # noqa: E402

REAL = "real_sp20"
REAL_PANELS = {REAL: "sp20", "real_ftse64": "ftse64"}   # scenario -> ml.data.sample_panels.PANELS
SCENARIOS = ("default", "price_only", "sparse", "slow", "no_alpha", "wide", *REAL_PANELS)
FAST_SIZE = {"symbols": 40, "days": 420}
FAST_REAL_START = "2020-06-01"
FAST_ZOO = ROOT / "tests" / "fixtures" / "zoo_small.yaml"


@dataclass
class Outcome:
    scenario: str
    data_dir: Path
    returncode: int
    seconds: float
    log_tail: str


# Fast sizes leave about 300 out-of-sample days: the shipped warm-ups (126 known IC days before a model
# is active, then 126 days with data before the first calibrator) would leave almost no backtest. The
# fast variant shortens only these, over the shipped files.
FAST_WARMUPS = {
    "lifecycle": {"activation": {"min_days": 42}, "requalification": {"min_days": 42},
                  "retirement": {"min_days": 63, "window_days": 126}, "promotion": {"min_days": 21}},
    "ensemble": {"calibration": {"min_train_days": 42}, "stacked": {"min_train_days": 21},
                 "ic_weighted": {"min_periods": 21}},
}


def fast_configs(data_dir: Path) -> dict[str, str]:
    """AURORA_<NAME>_CONFIG for the fast variant: the shipped YAML with FAST_WARMUPS over it, written
    under the run's data directory."""
    import yaml

    out = {}
    folder = data_dir / "fast_config"
    folder.mkdir(parents=True, exist_ok=True)
    for name, over in FAST_WARMUPS.items():
        cfg = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()) or {}
        for key, value in over.items():
            cfg[key] = {**(cfg.get(key) or {}), **value}
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        out[f"AURORA_{name.upper()}_CONFIG"] = str(path)
    return out


HORIZONS = {1: {"label": "fwd_ret_sn_1d", "families": ["ridge", "screened_ridge"]},
            21: {"label": "fwd_ret_sn_21d", "families": ["ridge", "screened_ridge"]}}


def zoo_with_horizons(work: Path) -> Path:
    """config/zoo.yaml with `horizons: HORIZONS`, written under `work` (for --zoo-horizons)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "zoo.yaml").read_text()) or {}
    cfg["horizons"] = HORIZONS
    work.mkdir(parents=True, exist_ok=True)
    path = work / "zoo_horizons.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _env(data_dir: Path, fast: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["AURORA_DATA_DIR"] = str(data_dir)
    if fast:
        env["AURORA_ZOO_CONFIG"] = str(FAST_ZOO)
        env.update(fast_configs(data_dir))
    return env


def _aurora(data_dir: Path, fast: bool, *args: str, timeout: float = 7200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=_env(data_dir, fast),
                          capture_output=True, text=True, timeout=timeout)


def prepare(scenario: str, data_dir: Path, fast: bool, seed: int | None = None) -> None:
    """Write the scenario's raw data (and oracle) into a fresh `data_dir`."""
    if (data_dir / "raw" / "prices.parquet").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    if scenario in REAL_PANELS:
        from ml.data.sample_panels import write_panel_inputs

        files = write_panel_inputs(REAL_PANELS[scenario], data_dir / "inputs",
                                   start=FAST_REAL_START if fast else None)
        done = _aurora(data_dir, fast, "ingest", "--prices", str(files["prices"]), "--securities",
                       str(files["securities"]))
    else:
        args = ["generate", "--scenario", scenario]
        if fast:
            args += ["--symbols", str(FAST_SIZE["symbols"]), "--days", str(FAST_SIZE["days"])]
        if seed is not None:
            args += ["--seed", str(seed)]
        done = _aurora(data_dir, fast, *args)
    if done.returncode != 0:
        raise RuntimeError(f"preparing {scenario} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def run(scenario: str, data_dir: Path, fast: bool, no_prefect: bool = False) -> Outcome:
    """`aurora run` on the data directory, timed; the log goes to `data_dir/run.log`."""
    started = time.perf_counter()
    args = ["run", "--no-prefect"] if no_prefect else ["run"]
    done = _aurora(data_dir, fast, *args)
    seconds = time.perf_counter() - started
    (data_dir / "run.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    tail = (done.stdout[-1500:] + "\n" + done.stderr[-1500:]).strip()
    return Outcome(scenario, data_dir, done.returncode, seconds, tail)


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def collect(outcome: Outcome) -> dict[str, Any]:
    """One row of the scenario table, read from what the run wrote."""
    data_dir = outcome.data_dir
    row: dict[str, Any] = {"scenario": outcome.scenario, "ok": outcome.returncode == 0,
                           "runtime_s": round(outcome.seconds, 1)}
    report_file = data_dir / "artifacts" / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        comparison = con.execute("select * from ml.ensemble_comparison").df()
        daily = con.execute("select * from ml.backtest_daily order by date").df()
        quarantined = _quarantined(con)
        lifecycle = scenario_lifecycle(con, data_dir, outcome.scenario)
        signals = con.execute("select date, symbol, expected_return from ml.signals").df()
    raw = data_dir / "raw"
    prices = pd.read_parquet(raw / "prices.parquet")
    market = market_panel(prices, pd.read_parquet(raw / "securities.parquet"))
    rows = comparison.set_index("name")
    chosen = comparison.loc[comparison["chosen"].astype(bool), "name"]
    chosen_name = str(chosen.iloc[0]) if len(chosen) else None
    oracle_ic = _oracle_ic(data_dir, report)
    rank_ic = _num(report.get("oos_rank_ic"))
    walk_forward = comparison.loc[comparison["kind"] == "best_single_walk_forward", "rank_ic"]
    oracle_row = rows.loc["oracle"] if "oracle" in rows.index else None
    start = pd.to_datetime(daily["date"]).min() if len(daily) else None
    costs, capital = plain_book_from_config(pol.load_config())
    base = baseline_metrics(market, costs, capital, start_date=start)
    row.update({
        "symbols": int(prices["symbol"].nunique()),
        "days": int(prices["date"].nunique()),
        "backtest_days": int(len(daily)),
        "rank_ic": rank_ic,
        "oracle_rank_ic": oracle_ic,
        "share_of_oracle": rank_ic / oracle_ic if oracle_ic and np.isfinite(oracle_ic) and oracle_ic > 0.005
        else float("nan"),
        "best_walk_forward_rank_ic": _num(walk_forward.iloc[0]) if len(walk_forward) else float("nan"),
        "baseline_rank_ic": _baseline_ic(data_dir, market, daily),
        "baseline_sharpe_net": _num(base.get("sharpe_net")),
        "sharpe_gross": _num(report.get("sharpe_gross")),
        "sharpe_net": _num(report.get("sharpe_net")),
        "oracle_sharpe_net": _num(oracle_row["sharpe_net"]) if oracle_row is not None else float("nan"),
        "max_drawdown": _num(report.get("max_drawdown")),
        "ann_return_net": _num(report.get("ann_return_net")),
        "edge_per_bp": _num((report.get("policy_constants") or {}).get("edge_per_bp")),
        "turnover_monthly": _num(report.get("turnover_monthly")),
        "gross_exposure": float(daily["gross_exposure"].mean()) if len(daily) else float("nan"),
        "max_gross_exposure": float(daily["gross_exposure"].max()) if len(daily) else float("nan"),
        "models_active": report.get("n_models_active"),
        "models_retired": report.get("n_models_retired"),
        "quarantined": len(quarantined),
        "policy_warnings": len(report.get("policy_warnings") or []),
        "traded_ensemble": chosen_name,
    })
    row["ensemble_ge_wf_best"] = at_least(row["rank_ic"], row["best_walk_forward_rank_ic"])
    row.update(lifecycle)
    row.update(textbook_row(data_dir, market, signals))
    return row


def _quarantined(con) -> list[str]:
    """The latest accepted build's quarantined columns (`quality.quarantine` holds only those)."""
    try:
        frame = con.execute("select \"view\", column_name from quality.quarantine").df()
    except duckdb.Error:
        return []
    return sorted(f"{v}.{c}" for v, c in zip(frame["view"], frame["column_name"], strict=True))


def _oracle_ic(data_dir: Path, report: dict[str, Any]) -> float:
    """The oracle's rank IC on the run's dates and label (from the report), when there is an oracle."""
    if not (data_dir / "oracle" / "expected_returns.parquet").exists():
        return float("nan")
    er = pd.read_parquet(data_dir / "oracle" / "expected_returns.parquet", columns=["er_5d"])
    if not np.any(er["er_5d"].to_numpy() != 0):  # a market with no alpha has no oracle to share
        return float("nan")
    return _num(report.get("oracle_rank_ic"))


def _baseline_ic(data_dir: Path, market, daily: pd.DataFrame) -> float:
    """Rank IC of the 5-day reversal against the ensemble's label over the backtest's dates."""
    labels_file = data_dir / "features" / "labels.parquet"
    if not labels_file.exists() or daily.empty:
        return float("nan")
    labels = pd.read_parquet(labels_file, columns=["symbol", "date", "fwd_ret_sn_5d"])
    labels["date"] = pd.to_datetime(labels["date"])
    score = market.long(reversal_5d(market), "reversal_5d").reset_index()
    frame = score.merge(labels, on=["date", "symbol"])
    frame = frame[frame["date"].isin(pd.to_datetime(daily["date"]))]
    ic = daily_ic(frame, "reversal_5d", "fwd_ret_sn_5d")
    return float(ic.mean()) if len(ic) else float("nan")


def machine() -> str:
    return f"{platform.node()}: {os.cpu_count()} cpus, {platform.machine()}, python {platform.python_version()}"


def bench(scenarios: list[str], work: Path, fast: bool, seed: int | None = None, no_prefect: bool = False,
          log=print, on_row=None) -> list[dict[str, Any]]:
    """Prepare and run each scenario in turn; `on_row(rows)` after each (partial results survive a stop)."""
    rows: list[dict[str, Any]] = []
    on_row = on_row or (lambda _rows: None)
    for scenario in scenarios:
        data_dir = work / scenario
        log(f"[bench] {scenario}: preparing {data_dir}")
        prepare(scenario, data_dir, fast, seed)
        outcome = run(scenario, data_dir, fast, no_prefect)
        if outcome.returncode != 0:
            log(f"[bench] {scenario}: aurora run FAILED (exit {outcome.returncode}) after {outcome.seconds:.0f}s\n"
                f"{outcome.log_tail}")
            rows.append({"scenario": scenario, "ok": False, "runtime_s": round(outcome.seconds, 1),
                         "error": outcome.log_tail[-800:]})
            on_row(rows)
            continue
        row = collect(outcome)
        rows.append(row)
        on_row(rows)
        log(f"[bench] {scenario}: done in {outcome.seconds:.0f}s: rank IC {row['rank_ic']:.4f}, Sharpe net "
            f"{row['sharpe_net']:.2f} (baseline {row['baseline_sharpe_net']:.2f}, oracle {row['oracle_sharpe_net']:.2f})")
    return rows


# ------------------------------------------------------------------ re-running the stages after training
RERUN_FROM = ("monitor", "ensemble_calibrate", "policy_backtest")
LAST_RERUN_STAGE = "policy_backtest"  # publish_signals and monitoring_marts only with `tail`


def _flushed(message: str) -> None:
    print(message, flush=True)


def rerun_stages_here(start: str, tail: bool = False, log=_flushed) -> int:
    """In this process, on $AURORA_DATA_DIR: the pipeline's stages from `start` (through policy_backtest,
    or to the end with `tail`), each stage's values merged into the saved report as `aurora run` does."""
    from ml.paths import DataPaths
    from ml.pipeline import available_stages, run_stage
    from ml.report import update_saved_report

    paths = DataPaths.from_env()
    stages = available_stages()
    if start not in stages:
        log(f"[rerun] unknown stage {start!r}; the pipeline's stages: {', '.join(stages)}")
        return 2
    stop = len(stages) if tail or LAST_RERUN_STAGE not in stages else stages.index(LAST_RERUN_STAGE) + 1
    timings: dict[str, float] = {}
    for stage in stages[stages.index(start):stop]:
        started = time.perf_counter()
        update_saved_report(paths, **run_stage(stage, paths, log=log))
        timings[stage] = round(time.perf_counter() - started, 1)
        log(f"[rerun] stage {stage} done in {timings[stage]:.0f}s")
    update_saved_report(paths, rerun_from=start, rerun_timings_s=timings)
    return 0


def rerun(scenario: str, data_dir: Path, start: str, fast: bool, tail: bool = False, log=print,
          timeout: float = 7200) -> Outcome:
    """The stages from `start` on a finished run, in a fresh `python` with AURORA_DATA_DIR=`data_dir`
    (so a rewritten module is the one imported); its log goes to `data_dir/rerun.log`."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import bench_scenarios as b; "
            f"sys.exit(b.rerun_stages_here({start!r}, tail={tail!r}))")
    started = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=_env(data_dir, fast), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1) as child:
        watchdog = threading.Timer(timeout, child.kill)
        watchdog.start()
        try:
            assert child.stdout is not None
            for line in child.stdout:
                lines.append(line)
                if line.startswith("[rerun]"):
                    log(f"[bench] {scenario}: {line.strip()} ({time.perf_counter() - started:.0f}s in)")
            returncode = child.wait()
        finally:
            watchdog.cancel()
    seconds = time.perf_counter() - started
    text = "".join(lines)
    (data_dir / "rerun.log").write_text(text)
    return Outcome(scenario, data_dir, returncode, seconds, text[-3000:].strip())


def rerun_all(scenarios: list[str], work: Path, start: str, fast: bool, saved: Path | None, tail: bool = False,
              log=print) -> list[dict[str, Any]]:
    """Re-run the stages from `start` on each finished run under `work`, then collect its row."""
    rows = []
    for scenario in scenarios:
        data_dir = work / scenario
        if not finished(data_dir):
            log(f"[bench] {scenario}: no finished run in {data_dir}, skipped")
            continue
        log(f"[bench] {scenario}: re-running from {start} in {data_dir}")
        outcome = rerun(scenario, data_dir, start, fast, tail, log=log)
        if outcome.returncode != 0:
            log(f"[bench] {scenario}: re-run FAILED (exit {outcome.returncode}) after {outcome.seconds:.0f}s\n"
                f"{outcome.log_tail[-1500:]}")
            rows.append({"scenario": scenario, "ok": False, "rerun_s": round(outcome.seconds, 1),
                         "error": outcome.log_tail[-800:]})
            continue
        row = recollect([scenario], work, saved, log=log)[0]
        row["rerun_from"], row["rerun_s"] = start, round(outcome.seconds, 1)
        rows.append(row)
        log(f"[bench] {scenario}: re-run done in {outcome.seconds:.0f}s: rank IC {row['rank_ic']:.4f}, "
            f"Sharpe net {row['sharpe_net']:.2f}, live at end {row.get('models_live_end')}, "
            f"retired {row.get('retired_by_rule')}")
    return rows


def finished(data_dir: Path) -> bool:
    """Whether `data_dir` holds a run that got as far as the ensemble (a stopped run may not have)."""
    if not (data_dir / "warehouse.duckdb").exists():
        return False
    try:
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            con.execute("select 1 from ml.ensemble_comparison limit 1")
    except duckdb.Error:
        return False
    return True


def recollect(scenarios: list[str], work: Path, saved: Path | None, log=print) -> list[dict[str, Any]]:
    """The rows of finished runs, read again (after a change to what a row reports)."""
    before = {r["scenario"]: r for r in json.loads(saved.read_text())} if saved and saved.exists() else {}
    rows = []
    for scenario in scenarios:
        data_dir = work / scenario
        if not finished(data_dir):
            if data_dir.exists():
                log(f"[bench] {scenario}: no finished run in {data_dir}, skipped")
            continue
        old = before.get(scenario, {})
        outcome = Outcome(scenario, data_dir, 0 if old.get("ok", True) else 1, float(old.get("runtime_s", "nan")), "")
        rows.append(collect(outcome) if outcome.returncode == 0 else old)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated (default: all)")
    parser.add_argument("--fast", action="store_true", help="small sizes and the small test zoo")
    parser.add_argument("--work", default=str(ROOT / "data" / "scenarios"),
                        help="one data directory per scenario is made under it (default data/scenarios)")
    parser.add_argument("--seed", type=int, default=None, help="override each scenario's seed")
    parser.add_argument("--no-prefect", action="store_true", help="aurora run --no-prefect")
    parser.add_argument("--json", default=None, help="write the rows as JSON here")
    parser.add_argument("--markdown", default=None, help="write the markdown table here")
    parser.add_argument("--collect-only", action="store_true",
                        help="re-read the rows from the finished runs under --work (runtimes from --json)")
    parser.add_argument("--rerun-from", choices=RERUN_FROM, default=None,
                        help="on each finished run under --work, re-run the stages from this one through "
                             "policy_backtest (no retraining), then collect (runtimes from --json)")
    parser.add_argument("--rerun-tail", action="store_true",
                        help="with --rerun-from: also publish_signals and monitoring_marts")
    parser.add_argument("--zoo-horizons", action="store_true",
                        help="the shipped zoo plus HORIZONS (1- and 21-day labels for the linear families)")
    args = parser.parse_args()
    if args.zoo_horizons:
        os.environ["AURORA_ZOO_CONFIG"] = str(zoo_with_horizons(Path(args.work).resolve()))
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    started = time.perf_counter()
    def save(rows: list[dict[str, Any]]) -> None:
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(rows, indent=1, default=str))

    if args.rerun_from:
        rows = rerun_all(names, Path(args.work).resolve(), args.rerun_from, args.fast,
                         Path(args.json) if args.json else None, args.rerun_tail, log=lambda m: print(m, flush=True))
    elif args.collect_only:
        rows = recollect(names, Path(args.work).resolve(), Path(args.json) if args.json else None)
    else:
        rows = bench(names, Path(args.work).resolve(), args.fast, args.seed, args.no_prefect,
                     log=lambda m: print(m, flush=True), on_row=save)
    save(rows)
    table = (markdown(rows) + "\n\nLifecycle per scenario:\n\n" + lifecycle_markdown(rows)
             + "\n\nTextbook baselines on the published signals' dates (rank IC against fwd_ret_sn_5d):\n\n"
             + textbook_markdown(rows))
    footer = (f"\nmachine: {machine()}; {'fast' if args.fast else 'full'} sizes; "
              f"total {time.perf_counter() - started:.0f} s")
    print("\n" + table + footer)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n" + footer + "\n")
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
