"""The `aurora` commands' handlers (flows/cli.py builds the parser and dispatches to them)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from flows.guards import check_replace, clear_results, missing_step, next_pipeline_step
from ml.paths import DataPaths


def _next(message: str, to_stderr: bool = False) -> None:
    """The one line every command ends with: what to look at or run next (stderr when stdout is JSON)."""
    print(f"next: {message}", file=sys.stderr if to_stderr else sys.stdout, flush=True)


def _error(command: str, message: str) -> int:
    print(f"aurora {command}: {message}", file=sys.stderr)
    return 1


def _cmd_generate(args: argparse.Namespace) -> int:
    from ml.data.scenarios import scenario_config
    from ml.market import write_market

    paths = DataPaths.from_env()
    raw_dir = Path(args.out).resolve() if args.out else paths.raw
    guarded = raw_dir == paths.raw  # --out elsewhere leaves this data directory's raw/ and results alone
    refusal = check_replace(paths, "generate", args.replace) if guarded else None
    if refusal:
        return _error("generate", refusal)
    config = scenario_config(args.scenario, n_symbols=args.symbols, n_days=args.days, seed=args.seed)
    _log(f"scenario {config.scenario}: {config.n_symbols} symbols x {config.n_days} days, seed {config.seed}")
    started = time.perf_counter()
    summary = write_market(config, raw_dir, log=_log)
    _log(f"wrote {summary} in {time.perf_counter() - started:.1f}s")
    return _raw_written(paths, raw_dir, guarded, args.replace,
                        "aurora build-features (dbt features from raw/), or aurora run for the whole pipeline")


def _raw_written(paths: DataPaths, raw_dir: Path, guarded: bool, replace: bool, next_step: str) -> int:
    """After generate or ingest wrote raw/: clear what it invalidates (--replace) and say what is next."""
    if guarded and replace:
        _report_cleared(clear_results(paths))
    if guarded:
        _next(next_step)
    else:
        _next(f"AURORA_DATA_DIR={raw_dir.parent} aurora build-features (the data directory of {raw_dir})")
    return 0


def _report_cleared(cleared: list[str]) -> None:
    _log("--replace cleared the earlier run's results: " + ("; ".join(cleared) if cleared else "nothing to clear"))


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ml.ingest import IngestError, ingest_files

    paths = DataPaths.from_env()
    raw_dir = Path(args.out).resolve() if args.out else paths.raw
    files = {
        table: Path(value)
        for table, value in {
            "prices": args.prices,
            "securities": args.securities,
            "fundamentals": args.fundamentals,
            "estimates": args.estimates,
            "short_interest": args.short_interest,
            "options_iv": args.options_iv,
            "insider_trades": args.insider_trades,
            "etf_prices": args.etf_prices,
            "etf_flows": args.etf_flows,
        }.items()
        if value
    }
    guarded = raw_dir == paths.raw  # --out elsewhere leaves this data directory's raw/ and results alone
    refusal = check_replace(paths, "ingest", args.replace, list(files.values())) if guarded else None
    if refusal:
        return _error("ingest", refusal)
    try:
        summary = ingest_files(files, raw_dir)
    except IngestError as err:
        print(f"aurora ingest: error: {err}", file=sys.stderr)
        print(f"aurora ingest: nothing was written; {raw_dir} is unchanged.", file=sys.stderr)
        return 1
    print(summary.render())
    return _raw_written(paths, raw_dir, guarded, args.replace,
                        "aurora build-features (dbt features and the data-quality gate on your data)")


def _cmd_report(args: argparse.Namespace) -> int:
    from ml.report import build_report, render_report

    paths = DataPaths.from_env()
    if not paths.root.is_dir() or not (paths.raw_table("prices").exists()
                                       or (paths.artifacts / "report.json").exists()):
        return _error("report", missing_step(paths, "raw") or f"nothing to report in {paths.root}")
    report = build_report(paths)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
    else:
        print(render_report(report))
    _next(next_pipeline_step(paths), to_stderr=args.json)
    return 0


def prefect_environment(paths: DataPaths) -> None:
    """Keep Prefect's state (ephemeral API database, cached results) beside the data it describes."""
    import os

    home = paths.root / "prefect"
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(home / "storage"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def _cmd_run(args: argparse.Namespace) -> int:
    from ml.pipeline import StageUnavailable
    from ml.quality import DataQualityError
    from ml.report import build_report, render_report
    from ml.warehouse import FeatureBuildError

    paths = DataPaths.from_env()
    if not paths.raw_table("prices").exists():
        return _error("run", missing_step(paths, "raw") or f"no raw data in {paths.raw}")
    if args.allow_stale:
        import os

        os.environ["AURORA_ALLOW_STALE"] = "1"
    started = time.perf_counter()
    try:
        if args.no_prefect:
            from ml.pipeline import run_pipeline

            return run_pipeline(paths, log=_log)
        prefect_environment(paths)
        from flows.pipeline import daily_pipeline

        _log(f"daily_pipeline (Prefect, local ephemeral API) on {paths.root}")
        daily_pipeline(str(paths.root))
    except (FeatureBuildError, DataQualityError) as err:
        print(f"aurora run: stopped by a data-quality gate:\n{err}", file=sys.stderr)
        return 1
    except StageUnavailable as err:
        print(f"aurora run: failed before running: {err}", file=sys.stderr)
        return 1
    _log(f"daily_pipeline done in {time.perf_counter() - started:.1f}s")
    print(render_report(build_report(paths)))
    _next("aurora app (models, calibration, backtest, signals), or aurora report --json")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    """The flows on their cron schedules against a real Prefect server (flows/schedules.py)."""
    import os
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:  # before Prefect is imported or configured
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"aurora serve: unknown time zone {args.timezone!r} (an IANA name, e.g. UTC or America/New_York)",
              file=sys.stderr)
        return 2
    paths = DataPaths.from_env()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")  # a served run's progress on this console
    prefect_environment(paths)
    from flows.schedules import serve
    from flows.server import ServerError

    try:
        serve(str(paths.root), daily_cron=args.daily_cron, weekly_cron=args.weekly_cron,
              monthly_cron=args.monthly_cron, timezone=args.timezone, log=_log, port=args.port)
    except ServerError as err:
        print(f"aurora serve: {err}", file=sys.stderr)
        return 1
    return 0


def _cmd_build_features(args: argparse.Namespace) -> int:
    from ml.pipeline import build_feature_layer
    from ml.quality import DataQualityError
    from ml.warehouse import FeatureBuildError

    missing = missing_step(DataPaths.from_env(), "raw")
    if missing:
        return _error("build-features", missing)
    started = time.perf_counter()
    try:
        timings = build_feature_layer(DataPaths.from_env(), log=_log, select=args.select)
    except (FeatureBuildError, DataQualityError) as err:
        print(f"aurora build-features: stopped by a data-quality gate:\n{err}", file=sys.stderr)
        return 1
    from ml.report import update_saved_report

    update_saved_report(DataPaths.from_env(), timings_s=timings)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
    _log(f"features ready in {time.perf_counter() - started:.1f}s ({stages})")
    _next("aurora train (or aurora features to see what the features say)")
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from ml.data.dbt_docs import DocsError, generate_docs, serve_docs

    try:
        if args.no_serve:
            generate_docs(DataPaths.from_env(), log=_log)
        else:
            serve_docs(DataPaths.from_env(), port=args.port, log=_log)
    except DocsError as err:
        print(f"aurora docs: {err}", file=sys.stderr)
        return 1
    if args.no_serve:
        _next(f"open {DataPaths.from_env().root / 'dbt' / 'target' / 'index.html'} in a browser, or aurora docs to serve it")
    else:
        _next("aurora features (what the features say), or aurora app")
    return 0


def _cmd_features(args: argparse.Namespace) -> int:
    from ml.data import research
    from ml.jsonable import json_safe

    paths = DataPaths.from_env()
    try:
        if args.feature:
            views = [args.view] if args.view else research.feature_table(
                paths, feature=args.feature, label=args.label)["view"].unique().tolist()
            if not views:
                raise KeyError(f"no feature {args.feature!r} in the research marts")
            cards = [research.feature_card(paths, v, args.feature, args.label) for v in views]
            if args.json:
                print(json.dumps(json_safe(cards), indent=2))
                _next("aurora train, or aurora app (Features page)", to_stderr=True)
                return 0
            for card in cards:
                import pandas as pd

                feature = card["feature"]
                print(f"{feature['view']}.{feature['feature']} against {args.label}")
                print(research.render(pd.DataFrame([feature]).drop(columns=["view", "feature"])))
                print("\nby label (IC decay over 1/5/21 days; spreads gross per horizon, net annualized)")
                print(research.render(pd.DataFrame(card["by_label"])))
                print("\nstability (mean IC by calendar year and by the market's volatility state)")
                print(research.render(pd.DataFrame(card["stability"])))
                print("\nmost correlated features (mean cross-sectional rank correlation)")
                print(research.render(pd.DataFrame(card["correlates"])))
            _next("aurora train (the zoo trains on every view), or aurora app (Features page: the tear sheet)")
            return 0
        table = research.feature_table(paths, view=args.view, label=args.label)
        views = research.view_table(paths)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"aurora features: {err}", file=sys.stderr)
        return 1
    if args.view and table.empty:
        print(f"aurora features: no view {args.view!r} in the research marts; views: "
              + ", ".join(views["view_name"]), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(json_safe({"label": args.label, "views": views.to_dict("records"),
                                   "features": table.to_dict("records")}), indent=2))
        _next("aurora train, or aurora features --feature NAME for one feature's card", to_stderr=True)
        return 0
    if not args.view:
        print("views (primary label; orthogonal_share: IC left after neutralizing to price_momentum)")
        print(research.render(views[["view_name", "n_features", "n_significant", "mean_abs_ic", "best_feature",
                                     "best_ic_t", "orthogonal_share", "mean_abs_corr_within",
                                     "mean_abs_corr_across"]]))
        print()
    shown = table if args.top <= 0 else table.head(args.top)
    print(f"features ranked by |Newey-West t| of the rank IC with {args.label} "
          f"({len(shown)} of {len(table)}; --top 0 for all, --feature F for one)")
    print(research.render(shown.drop(columns=["icir", "n_dates"])))
    _next("aurora features --feature NAME for one feature's card, or aurora train")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ml.pipeline import train_stage
    from ml.report import update_saved_report

    paths = DataPaths.from_env()
    missing = missing_step(paths, "features")
    if missing:
        return _error("train", missing)
    started = time.perf_counter()
    values = train_stage(paths, log=_log, config=args.config)
    update_saved_report(paths, **values)
    _log(
        f"zoo trained in {time.perf_counter() - started:.1f}s: best single model picked with hindsight "
        f"{values['best_single_model_hindsight']} rank IC {values['best_single_model_rank_ic_hindsight']:.4f}"
        " (a diagnostic; `aurora backtest` measures the walk-forward pick)"
        + (f" (oracle {values['oracle_rank_ic']:.4f})" if values.get("oracle_rank_ic") else "")
    )
    _next("aurora monitor (the lifecycle picks which models are active)")
    return 0


def _cmd_monitor(args: argparse.Namespace) -> int:
    """The lifecycle stage alone (what the pipeline's `monitor` stage runs): activation, retirement,
    drift and regimes over the zoo's out-of-sample predictions; moves the registry's statuses."""
    from ml.pipeline import run_stage
    from ml.report import update_saved_report

    paths = DataPaths.from_env()
    missing = missing_step(paths, "trained")
    if missing:
        return _error("monitor", missing)
    started = time.perf_counter()
    values = run_stage("monitor", paths, log=_log)
    update_saved_report(paths, **values)
    if values.get("monitor_skipped"):
        print(f"aurora monitor: the lifecycle was skipped ({values['monitor_skipped']}): no model was activated",
              file=sys.stderr)
        return 1
    _log(f"monitor done in {time.perf_counter() - started:.1f}s: {values.get('n_models_active')} models active, "
         f"{values.get('n_models_retired')} retired")
    _next("aurora backtest (ensembles of the active models, calibration, the policy after costs)")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    """Streamlit monitoring app; it opens the warehouse read-only, so flows can keep writing."""
    import subprocess

    app_file = Path(__file__).resolve().parent.parent / "app" / "main.py"
    paths = DataPaths.from_env()
    env = {**os.environ, "AURORA_DATA_DIR": str(paths.root)}
    if not paths.root.is_dir():
        _log(f"warning: {missing_step(paths, 'raw')}; the app will show empty pages")
    _log(f"Aurora app on http://{args.address}:{args.port} (data: {env['AURORA_DATA_DIR']}); Ctrl-C stops it")
    child = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.address", args.address,
         "--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "minimal"],
        env=env,
    )
    code = wait_forwarding_signals(child)
    _next("aurora report (the headline metrics in the terminal)")
    return code


def wait_forwarding_signals(child, grace_s: float = 10.0) -> int:
    """Wait for `child`, passing SIGINT/SIGTERM on to it, so stopping `aurora app` stops the server; a
    child still running `grace_s` after the first signal is killed. Returns its exit status (128 + the
    signal's number when a signal ended it)."""
    import signal
    import subprocess

    stop_by: list[float] = []

    def forward(signum, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)
        stop_by.append(time.monotonic() + grace_s)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if stop_by and time.monotonic() > min(stop_by) and child.poll() is None:
                    child.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def _cmd_backtest(args: argparse.Namespace) -> int:
    from ml.pipeline import run_stage
    from ml.report import update_saved_report

    paths = DataPaths.from_env()
    try:
        values = run_stage("ensemble_calibrate", paths, log=_log)
    except Exception:
        missing = missing_step(paths, "trained")  # out of order: name the step to run, not a traceback
        if missing:
            return _error("backtest", missing)
        raise
    update_saved_report(paths, **values)
    values.update(run_stage("policy_backtest", paths, log=_log))
    update_saved_report(paths, **values)
    from ml.portfolio.guardrails import guardrail_messages, summary_line

    diagnostics = values.get("policy_diagnostics") or {}
    if diagnostics.get("positions_taken", True):
        _log(f"backtest: Sharpe net {values['sharpe_net']:.2f}, max drawdown {values['max_drawdown']:.1%}, "
             f"turnover {values['turnover_monthly']:.2f}x/month, cost retention {values['cost_retention']:.0%}")
    _log(f"backtest: {summary_line(diagnostics)}")
    if values.get("policy_constants"):
        from ml.report import constants_line

        _log(f"backtest: measured {constants_line(values['policy_constants'])}")
    for message in guardrail_messages(values.get("policy_warnings")):
        _log(f"backtest: WARNING {message}")
    _next("aurora report (headline metrics), or aurora app (the Backtest and Signals pages)")
    return 0


def _log(message: str) -> None:
    print(f"[aurora {time.strftime('%H:%M:%S')}] {message}", flush=True)
