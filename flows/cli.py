"""The `aurora` command line (a stable contract: see DESIGN.md).

Every command works on one data directory: $AURORA_DATA_DIR (default ./data). Step by step:
generate (or ingest) -> build-features -> train -> monitor -> backtest -> report / app;
`aurora run` does build-features .. publishing in one go.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ml.paths import DataPaths

# the warehouse schemas, directories and files that hold results computed from raw/: a new raw/ (ingest or
# generate into a data directory that holds an earlier run) invalidates them; `--replace` clears them
RESULT_SCHEMAS = ("ml", "monitoring", "research")
RESULT_TABLES = ("quality.quarantine",)  # the latest build's quarantined columns (shown by `aurora report`)
RESULT_DIRS = ("artifacts", "features")  # artifacts/ holds the saved report (artifacts/report.json)
RESULT_FILES = ("feast/registry.db", "feast/online.db")  # the Feast registry and its online store


def _next(message: str, to_stderr: bool = False) -> None:
    """The one line every command ends with: what to look at or run next (stderr when stdout is JSON)."""
    print(f"next: {message}", file=sys.stderr if to_stderr else sys.stdout, flush=True)


def _error(command: str, message: str) -> int:
    print(f"aurora {command}: {message}", file=sys.stderr)
    return 1


def _data_dir_line(paths: DataPaths) -> str:
    where = "AURORA_DATA_DIR=" + os.environ["AURORA_DATA_DIR"] if os.environ.get("AURORA_DATA_DIR") else (
        "AURORA_DATA_DIR unset, so ./data")
    return f"{paths.root} ({where})"


def _has_predictions(paths: DataPaths) -> bool:
    """Whether `aurora train` has written `ml.predictions` (True when the warehouse is locked by a writer:
    the stage itself will then say what is wrong)."""
    import duckdb

    if not paths.warehouse.exists():
        return False
    try:
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            return bool(con.execute("select count(*) from information_schema.tables "
                                    "where table_schema = 'ml' and table_name = 'predictions'").fetchone()[0])
    except duckdb.Error:
        return True


def missing_step(paths: DataPaths, need: str) -> str | None:
    """What stops a command that needs `need` (raw | features | trained), with the step to run; None
    when nothing does."""
    order = ("raw", "features", "trained")
    if not paths.root.is_dir():
        return (f"no data directory at {_data_dir_line(paths)}: run `aurora generate` (a synthetic market) or "
                f"`aurora ingest` (your files) first, or point AURORA_DATA_DIR at an existing data directory")
    if not paths.raw_table("prices").exists():
        return f"no raw data in {paths.raw}: run `aurora generate` or `aurora ingest` first"
    if order.index(need) >= 1 and not (paths.features / "labels.parquet").exists():
        return f"no features yet in {paths.features}: run `aurora build-features` first"
    if order.index(need) >= 2 and not _has_predictions(paths):
        return f"no trained models yet (no ml.predictions in {paths.warehouse}): run `aurora train` first"
    return None


def next_pipeline_step(paths: DataPaths) -> str:
    """The next step of the pipeline for this data directory, from what it holds."""
    from ml.report import read_saved_report

    for need, step in (("raw", "aurora generate (or aurora ingest)"), ("features", "aurora build-features"),
                       ("trained", "aurora train")):
        if missing_step(paths, need):
            return step
    saved = read_saved_report(paths)
    if saved.get("n_models_active") is None and "monitor_stage_s" not in saved:
        return "aurora monitor (the lifecycle picks the active models)"
    if saved.get("sharpe_net") is None and not saved.get("policy_diagnostics"):
        return "aurora backtest (ensembles, calibration, the policy after costs)"
    return "aurora app (the monitoring app), or aurora run to redo the whole pipeline"


def existing_results(paths: DataPaths) -> list[Path]:
    """The results of an earlier run in this data directory (what a new raw/ would leave on show)."""
    found = [paths.warehouse] if paths.warehouse.exists() else []
    found += [paths.root / d for d in RESULT_DIRS if (paths.root / d).is_dir() and any((paths.root / d).iterdir())]
    found += [paths.root / f for f in RESULT_FILES if (paths.root / f).exists()]
    return found


def _describe_results() -> str:
    return (f"the warehouse schemas {', '.join(RESULT_SCHEMAS)} and the table {', '.join(RESULT_TABLES)}, "
            f"artifacts/ (with the saved report artifacts/report.json), features/ "
            f"and the Feast registry and online store ({', '.join(RESULT_FILES)})")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_replace(paths: DataPaths, command: str, replace: bool, inputs: list[Path] = ()) -> str | None:
    """Why `command` may not write a new raw/ into `paths` (None: it may). Without `replace`, an earlier
    run's results refuse it; with it, an input inside what would be cleared, or a warehouse another
    process holds, does."""
    found = existing_results(paths)
    if not found:
        return None
    if not replace:
        return (f"{paths.root} holds the results of an earlier run ({', '.join(str(p) for p in found)}); new raw "
                f"data would leave them on show. Rerun with --replace to clear {_describe_results()} "
                f"(raw/ is rewritten, nothing outside {paths.root} is touched), or use another AURORA_DATA_DIR")
    for given in inputs:
        for folder in RESULT_DIRS:
            if _inside(given, paths.root / folder):
                return f"--replace would delete {paths.root / folder}, which holds your input {given}: move it first"
    if paths.warehouse.exists():
        import duckdb

        try:
            duckdb.connect(str(paths.warehouse)).close()
        except duckdb.Error as err:
            return f"cannot open {paths.warehouse} to clear it (is `aurora app` or a run using it?): {err}"
    return None


def clear_results(paths: DataPaths) -> list[str]:
    """Delete what a new raw/ invalidates (RESULT_*), only under `paths.root`; returns what was cleared."""
    import shutil

    import duckdb

    cleared: list[str] = []
    if paths.warehouse.exists():
        with duckdb.connect(str(paths.warehouse)) as con:
            schemas = {r[0] for r in con.execute("select schema_name from information_schema.schemata "
                                                 "where catalog_name = current_database()").fetchall()}
            for schema in RESULT_SCHEMAS:
                if schema in schemas:
                    con.execute(f"drop schema {schema} cascade")
                    cleared.append(f"warehouse schema {schema}")
            for table in RESULT_TABLES:
                schema, name = table.split(".")
                if con.execute("select count(*) from information_schema.tables where table_schema = ? "
                               "and table_name = ?", [schema, name]).fetchone()[0]:
                    con.execute(f"drop table {table}")
                    cleared.append(f"warehouse table {table}")
    for relative in (*RESULT_DIRS, *RESULT_FILES):
        target = paths.root / relative
        if not _inside(target, paths.root) or target.is_symlink():
            continue  # never follow a link out of the data directory
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        else:
            continue
        cleared.append(str(target))
    return cleared


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
    if guarded and args.replace:
        _report_cleared(clear_results(paths))
    if guarded:
        _next("aurora build-features (dbt features from raw/), or aurora run for the whole pipeline")
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
    if guarded and args.replace:
        _report_cleared(clear_results(paths))
    if guarded:
        _next("aurora build-features (dbt features and the data-quality gate on your data)")
    else:
        _next(f"AURORA_DATA_DIR={raw_dir.parent} aurora build-features (the data directory of {raw_dir})")
    return 0


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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilogs' line breaks; appends "(default: %(default)s)" to an option's help unless the help
    already states its default (options whose default is computed say it in words)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is argparse.SUPPRESS or "default" in text or (
                "required" in text):
            return text
        if action.default is False:
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)" if action.default is not None else text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


_DATA = "data: $AURORA_DATA_DIR (default ./data)"
# per command: what it reads and writes under the data directory, and the config files it reads
EPILOGS = {
    "generate": f"{_DATA}; writes raw/ (or --out) and oracle/ beside it. Into a data directory holding an "
                "earlier run's results it refuses unless --replace.\nconfig: none (scenarios: docs/scenarios.md)",
    "ingest": f"{_DATA}; writes raw/ (or --out) and removes a synthetic oracle/ beside it. Into a data directory "
              "holding an earlier run's results it refuses unless --replace.\nconfig: none (the raw contract: "
              "docs/data_contract.md)",
    "build-features": f"{_DATA}; reads raw/, writes warehouse.duckdb, features/ and feast/.\nconfig: "
                      "dbt_project.yml, profiles.yml, selectors.yml, models/ ($AURORA_DBT_PROJECT_DIR for another "
                      "copy), config/quality.yaml, feature_repo/definitions.py",
    "features": f"{_DATA}; reads the warehouse's research schema (built by build-features).\nconfig: none",
    "train": f"{_DATA}; reads features/ through Feast, writes the warehouse's ml schema and artifacts/.\n"
             "config: config/zoo.yaml ($AURORA_ZOO_CONFIG or --config); $AURORA_ZOO_WORKERS threads",
    "monitor": f"{_DATA}; reads ml.predictions and features/labels.parquet, writes the lifecycle's ml tables "
               "and the registry's statuses.\nconfig: config/lifecycle.yaml",
    "backtest": f"{_DATA}; reads the warehouse's ml schema, writes ml.ensemble_signals, ml.signals, the "
                "backtest tables and artifacts/report.json.\nconfig: config/ensemble.yaml, config/policy.yaml",
    "run": f"{_DATA}; Prefect state under $AURORA_DATA_DIR/prefect.\nconfig: every stage's: "
           "config/quality.yaml, config/zoo.yaml, config/lifecycle.yaml, config/ensemble.yaml, config/policy.yaml",
    "report": f"{_DATA}; reads artifacts/report.json, raw/ and the warehouse.\nconfig: none",
    "app": f"{_DATA}; opens the warehouse read-only.\nconfig: none (Streamlit's own .streamlit/ if present)",
    "docs": f"{_DATA}; writes dbt/target/ under it.\nconfig: dbt_project.yml, profiles.yml, models/",
    "serve": f"{_DATA}; Prefect state under $AURORA_DATA_DIR/prefect.\nconfig: every stage's (see aurora run -h)",
}


def package_version() -> str:
    """The installed package's version, else pyproject.toml's."""
    from importlib import metadata

    try:
        return metadata.version("aurora")
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aurora", description=__doc__,
                     epilog="every command reads $AURORA_DATA_DIR (default ./data); `aurora COMMAND -h` names the "
                            "config files it reads")
    parser.add_argument("--version", action="version", version=f"aurora {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND",
                                title="commands, in pipeline order")

    gen = sub.add_parser("generate", help="write the embedded synthetic market (raw tables + oracle)")
    from ml.data.scenarios import SCENARIOS

    gen.add_argument(
        "--scenario", choices=list(SCENARIOS), default="default",
        help="which market (default: default, today's market); see docs/scenarios.md",
    )
    gen.add_argument("--symbols", type=int, help="number of names (default: the scenario's, 130 for default)")
    gen.add_argument("--days", type=int, help="business days (default: the scenario's, 2016 for default)")
    gen.add_argument("--seed", type=int, help="random seed (default: the scenario's, 7 for default)")
    gen.add_argument("--out", help="raw directory (default $AURORA_DATA_DIR/raw); oracle/ goes beside it")
    gen.add_argument("--replace", action="store_true",
                     help="the data directory holds an earlier run: clear its results (" + _describe_results()
                          + ") so none is left on show (default: off, refuse)")
    gen.set_defaults(handler=_cmd_generate)

    ing = sub.add_parser("ingest", help="validate user CSV/Parquet files into the raw contract")
    ing.add_argument("--prices", required=True, help="daily prices file, CSV or Parquet (required)")
    ing.add_argument("--securities", required=True, help="securities file (symbol, sector, ...) (required)")
    for name in (
        "fundamentals",
        "estimates",
        "short-interest",
        "options-iv",
        "insider-trades",
        "etf-prices",
        "etf-flows",
    ):
        ing.add_argument(f"--{name}", help=f"optional {name.replace('-', ' ')} file (default: none, the views "
                                           "that need it are left out)")
    ing.add_argument("--out", help="raw directory (default $AURORA_DATA_DIR/raw)")
    ing.add_argument("--replace", action="store_true",
                     help="the data directory holds an earlier run: clear its results (" + _describe_results()
                          + ") once the files are valid; your input files are never deleted (default: off, refuse)")
    ing.set_defaults(handler=_cmd_ingest)

    bf = sub.add_parser("build-features", help="dbt build + data-quality gates + Feast apply/materialize")
    bf.add_argument("--select", help="dbt selector, e.g. '+price_momentum' (default: everything)")
    bf.set_defaults(handler=_cmd_build_features)

    ft = sub.add_parser("features", help="feature research: each feature's IC, decay, orthogonality, turnover, "
                                         "net spread (the research marts of build-features)")
    ft.add_argument("--view", help="only this feature view (default: every view)")
    ft.add_argument("--feature", help="one feature: its full card (by label, stability, correlates) "
                                      "(default: none, the ranking)")
    ft.add_argument("--label", default="fwd_ret_sn_5d",
                    help="labels column to rank by (default fwd_ret_sn_5d; fwd_ret[_sn]_{1,5,21}d)")
    ft.add_argument("--top", type=int, default=30, help="show the top N features (default 30; 0: all)")
    ft.add_argument("--json", action="store_true", help="machine-readable output")
    ft.set_defaults(handler=_cmd_features)

    tr = sub.add_parser("train", help="walk-forward train the model zoo (config/zoo.yaml)")
    tr.add_argument("--config", help="zoo config YAML (default config/zoo.yaml, or $AURORA_ZOO_CONFIG)")
    tr.set_defaults(handler=_cmd_train)

    mon = sub.add_parser("monitor", help="the model lifecycle alone: which models are active, retired, "
                                         "promoted; drift and regimes (config/lifecycle.yaml)")
    mon.set_defaults(handler=_cmd_monitor)

    bt = sub.add_parser("backtest", help="ensembles, calibration, cost-aware policy and backtest after costs")
    bt.set_defaults(handler=_cmd_backtest)

    run = sub.add_parser("run", help="the whole daily pipeline (Prefect flow daily_pipeline), locally")
    run.add_argument("--no-prefect", action="store_true", help="run the same stages as plain functions")
    run.add_argument("--allow-stale", action="store_true",
                     help="publish today's signals even when the latest raw date is further behind today than "
                          "config/quality.yaml's freshness limit allows (default: off; stale data publishes nothing)")
    run.set_defaults(handler=_cmd_run)

    rep = sub.add_parser("report", help="headline metrics of the latest run")
    rep.add_argument("--json", action="store_true", help="machine-readable output (every key, null until its "
                                                         "stage has run)")
    rep.set_defaults(handler=_cmd_report)

    app = sub.add_parser("app", help="the Streamlit monitoring app")
    app.add_argument("--port", type=int, default=8501, help="serve on this port")
    app.add_argument("--address", default="127.0.0.1", help="listen on this address (0.0.0.0: every interface)")
    app.set_defaults(handler=_cmd_app)

    dc = sub.add_parser("docs", help="dbt docs (models, columns, tests, exposures, lineage) of the data directory")
    dc.add_argument("--port", type=int, default=8080, help="serve on this port (default 8080)")
    dc.add_argument("--no-serve", action="store_true", help="only write <data>/dbt/target/index.html")
    dc.set_defaults(handler=_cmd_docs)

    srv = sub.add_parser("serve", help="serve the flows on cron schedules against a Prefect server (started here "
                                        "under <data>/prefect unless PREFECT_API_URL is set) until Ctrl-C/SIGTERM")
    srv.add_argument("--daily-cron", default="30 21 * * 1-5", help="daily pipeline, after the close")
    srv.add_argument("--weekly-cron", default="0 6 * * 6", help="weekly retraining of the zoo")
    srv.add_argument("--monthly-cron", default="0 7 1 * *", help="monthly monitoring review")
    srv.add_argument("--timezone", default="UTC",
                     help="time zone of the crons, an IANA name (default UTC; e.g. America/New_York)")
    srv.add_argument("--port", type=int, default=None,
                     help="port of the Prefect server started here (default: a free one)")
    srv.set_defaults(handler=_cmd_serve)

    for name, command in sub.choices.items():  # what each command reads: the data directory and its config
        if not command.epilog and name in EPILOGS:
            command.epilog = EPILOGS[name]
        if not command.description:
            command.description = sub._choices_actions[list(sub.choices).index(name)].help
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = int(args.handler(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # `aurora report | head -1`: the reader left; stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        except (OSError, ValueError, AttributeError):
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a program killed by a closed pipe


if __name__ == "__main__":
    sys.exit(main())
