"""The `aurora` command line (a stable contract: see DESIGN.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ml.paths import DataPaths


def _cmd_generate(args: argparse.Namespace) -> int:
    from ml.data.scenarios import scenario_config
    from ml.market import write_market

    paths = DataPaths.from_env()
    raw_dir = Path(args.out).resolve() if args.out else paths.raw
    config = scenario_config(args.scenario, n_symbols=args.symbols, n_days=args.days, seed=args.seed)
    _log(f"scenario {config.scenario}: {config.n_symbols} symbols x {config.n_days} days, seed {config.seed}")
    started = time.perf_counter()
    summary = write_market(config, raw_dir, log=_log)
    _log(f"wrote {summary} in {time.perf_counter() - started:.1f}s")
    return 0


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
    try:
        summary = ingest_files(files, raw_dir)
    except IngestError as err:
        print(f"aurora ingest: error: {err}", file=sys.stderr)
        print(f"aurora ingest: nothing was written; {raw_dir} is unchanged.", file=sys.stderr)
        return 1
    print(summary.render())
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ml.report import build_report, render_report

    report = build_report(DataPaths.from_env())
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
    else:
        print(render_report(report))
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
        print(f"aurora run: no raw data in {paths.raw}: run `aurora generate` or `aurora ingest` first",
              file=sys.stderr)
        return 1
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
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    paths = DataPaths.from_env()
    prefect_environment(paths)
    from flows.schedules import serve

    serve(str(paths.root), daily_cron=args.daily_cron, weekly_cron=args.weekly_cron,
          monthly_cron=args.monthly_cron)
    return 0


def _cmd_build_features(args: argparse.Namespace) -> int:
    from ml.pipeline import build_feature_layer
    from ml.quality import DataQualityError
    from ml.warehouse import FeatureBuildError

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
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ml.pipeline import train_stage
    from ml.report import update_saved_report

    paths = DataPaths.from_env()
    if not (paths.features / "labels.parquet").exists():
        print("aurora train: no features yet: run `aurora build-features` first", file=sys.stderr)
        return 1
    started = time.perf_counter()
    values = train_stage(paths, log=_log, config=args.config)
    update_saved_report(paths, **values)
    _log(
        f"zoo trained in {time.perf_counter() - started:.1f}s: best single model picked with hindsight "
        f"{values['best_single_model_hindsight']} rank IC {values['best_single_model_rank_ic_hindsight']:.4f}"
        " (a diagnostic; `aurora backtest` measures the walk-forward pick)"
        + (f" (oracle {values['oracle_rank_ic']:.4f})" if values.get("oracle_rank_ic") else "")
    )
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    """Streamlit monitoring app; it opens the warehouse read-only, so flows can keep writing."""
    import os
    import subprocess

    app_file = Path(__file__).resolve().parent.parent / "app" / "main.py"
    env = {**os.environ, "AURORA_DATA_DIR": str(DataPaths.from_env().root)}
    _log(f"Aurora app on http://{args.address}:{args.port} (data: {env['AURORA_DATA_DIR']})")
    return subprocess.call(
        [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.address", args.address,
         "--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "minimal"],
        env=env,
    )


def _cmd_backtest(args: argparse.Namespace) -> int:
    from ml.pipeline import run_stage
    from ml.report import update_saved_report

    paths = DataPaths.from_env()
    values = run_stage("ensemble_calibrate", paths, log=_log)
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
    return 0


def _log(message: str) -> None:
    print(f"[aurora {time.strftime('%H:%M:%S')}] {message}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurora", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

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
    gen.set_defaults(handler=_cmd_generate)

    ing = sub.add_parser("ingest", help="validate user CSV/Parquet files into the raw contract")
    ing.add_argument("--prices", required=True)
    ing.add_argument("--securities", required=True)
    for name in (
        "fundamentals",
        "estimates",
        "short-interest",
        "options-iv",
        "insider-trades",
        "etf-prices",
        "etf-flows",
    ):
        ing.add_argument(f"--{name}")
    ing.add_argument("--out", help="raw directory (default $AURORA_DATA_DIR/raw)")
    ing.set_defaults(handler=_cmd_ingest)

    rep = sub.add_parser("report", help="headline metrics of the latest run")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(handler=_cmd_report)

    run = sub.add_parser("run", help="the whole daily pipeline (Prefect flow daily_pipeline), locally")
    run.add_argument("--no-prefect", action="store_true", help="run the same stages as plain functions")
    run.add_argument("--allow-stale", action="store_true",
                     help="publish today's signals even when the latest raw date is further behind today than "
                          "config/quality.yaml's freshness limit allows (default: off; stale data publishes nothing)")
    run.set_defaults(handler=_cmd_run)

    srv = sub.add_parser("serve", help="serve the flows on cron schedules (Prefect)")
    srv.add_argument("--daily-cron", default="30 21 * * 1-5", help="daily pipeline, after the close")
    srv.add_argument("--weekly-cron", default="0 6 * * 6", help="weekly retraining of the zoo")
    srv.add_argument("--monthly-cron", default="0 7 1 * *", help="monthly monitoring review")
    srv.set_defaults(handler=_cmd_serve)

    bf = sub.add_parser("build-features", help="dbt build + data-quality gates + Feast apply/materialize")
    bf.add_argument("--select", help="dbt selector, e.g. '+price_momentum' (default: everything)")
    bf.set_defaults(handler=_cmd_build_features)

    dc = sub.add_parser("docs", help="dbt docs (models, columns, tests, exposures, lineage) of the data directory")
    dc.add_argument("--port", type=int, default=8080, help="serve on this port (default 8080)")
    dc.add_argument("--no-serve", action="store_true", help="only write <data>/dbt/target/index.html")
    dc.set_defaults(handler=_cmd_docs)

    ft = sub.add_parser("features", help="feature research: each feature's IC, decay, orthogonality, turnover, "
                                         "net spread (the research marts of build-features)")
    ft.add_argument("--view", help="only this feature view")
    ft.add_argument("--feature", help="one feature: its full card (by label, stability, correlates)")
    ft.add_argument("--label", default="fwd_ret_sn_5d",
                    help="labels column to rank by (default fwd_ret_sn_5d; fwd_ret[_sn]_{1,5,21}d)")
    ft.add_argument("--top", type=int, default=30, help="show the top N features (default 30; 0: all)")
    ft.add_argument("--json", action="store_true", help="machine-readable output")
    ft.set_defaults(handler=_cmd_features)

    tr = sub.add_parser("train", help="walk-forward train the model zoo (config/zoo.yaml)")
    tr.add_argument("--config", help="zoo config YAML (default config/zoo.yaml)")
    tr.set_defaults(handler=_cmd_train)

    app = sub.add_parser("app", help="the Streamlit monitoring app")
    app.add_argument("--port", type=int, default=8501)
    app.add_argument("--address", default="127.0.0.1")
    app.set_defaults(handler=_cmd_app)

    bt = sub.add_parser("backtest", help="ensembles, calibration, cost-aware policy and backtest after costs")
    bt.set_defaults(handler=_cmd_backtest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
