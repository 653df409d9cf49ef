"""The `aurora` command line (a stable contract: see DESIGN.md).

Every command works on one data directory: $AURORA_DATA_DIR (default ./data). Step by step:
generate (or ingest) -> build-features -> train -> monitor -> backtest -> report / app;
`aurora run` does build-features .. publishing in one go.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flows.commands import (  # noqa: F401  (prefect_environment, wait_forwarding_signals: used by tests)
    _cmd_app,
    _cmd_backtest,
    _cmd_build_features,
    _cmd_docs,
    _cmd_features,
    _cmd_generate,
    _cmd_ingest,
    _cmd_monitor,
    _cmd_report,
    _cmd_run,
    _cmd_serve,
    _cmd_train,
    prefect_environment,
    wait_forwarding_signals,
)
from flows.guards import describe_results


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
             "config: config/zoo.yaml ($AURORA_ZOO_CONFIG or --config). One spec at a time; `aurora run` fans "
             "them out ($AURORA_ZOO_WORKERS workers, $AURORA_ZOO_RUNNER process or thread)",
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
                     help="the data directory holds an earlier run: clear its results (" + describe_results()
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
                     help="the data directory holds an earlier run: clear its results (" + describe_results()
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
