"""The `aurora` command line a new user can follow: out-of-order commands name the next step (never a
traceback), `--replace` guards re-ingesting over an earlier run, help states defaults, the data directory
and config files, `--version`, the "next:" line, units in the report, signals reach the app's server and
a closed pipe ends quietly. Tiny or no data: the whole file runs in seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from test_ingest import valid_tables, write_tables

from flows import cli
from flows.cli import main

ROOT = Path(__file__).resolve().parent.parent
PIPELINE_ORDER = ["generate", "ingest", "build-features", "features", "train", "monitor", "backtest", "run",
                  "report", "app", "docs", "serve"]


def _subparsers(parser):
    import argparse

    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


# ---------------------------------------------------------------------------------------------- help
def test_version_prints_the_package_version(capsys, monkeypatch):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"aurora {cli.package_version()}"

    from importlib import metadata

    def missing(_name):
        raise metadata.PackageNotFoundError("aurora")

    monkeypatch.setattr(metadata, "version", missing)  # not installed: pyproject.toml's version
    import tomllib

    assert cli.package_version() == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_subcommands_are_listed_in_pipeline_order():
    parser = cli.build_parser()
    assert list(_subparsers(parser).choices) == PIPELINE_ORDER
    listed = parser.format_help()
    positions = [listed.index(f"    {name}") for name in PIPELINE_ORDER]
    assert positions == sorted(positions)


def test_every_option_states_its_default_and_every_command_names_the_data_dir_and_its_config():
    subs = _subparsers(cli.build_parser()).choices
    for name, sub in subs.items():
        text = sub.format_help()
        assert "AURORA_DATA_DIR" in text, name
        assert "config:" in text, name
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            shown = formatter._get_help_string(action) % {"default": action.default}
            assert "default" in shown or "required" in shown, (name, action.option_strings, shown)
    assert "config/zoo.yaml" in subs["train"].format_help()
    assert "config/lifecycle.yaml" in subs["monitor"].format_help()
    assert "config/policy.yaml" in subs["backtest"].format_help()
    assert "(default: 8501)" in subs["app"].format_help()
    assert "(default: off" in subs["ingest"].format_help()  # --replace


# ------------------------------------------------------------------------------------ out of order
def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", ["backtest", "report", "train", "monitor", "build-features"])
@pytest.mark.parametrize("state", ["missing", "empty"])
def test_commands_on_a_missing_or_empty_data_dir_name_the_first_step(command, state, tmp_path, monkeypatch,
                                                                       capsys):
    data = tmp_path / "nonexistent"
    if state == "empty":
        data.mkdir()
    monkeypatch.setenv("AURORA_DATA_DIR", str(data))
    assert main([command]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"aurora {command}: ") and "`aurora generate`" in err and "Traceback" not in err
    assert ("no data directory" if state == "missing" else "no raw data") in err
    assert not data.exists() or not any(data.iterdir())  # a guard writes nothing


def test_train_before_build_features_and_monitor_or_backtest_before_train(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("AURORA_DATA_DIR", str(data))
    _touch(data / "raw" / "prices.parquet")
    for command in ("train", "monitor", "backtest"):
        assert main([command]) == 1
        assert "run `aurora build-features` first" in capsys.readouterr().err
    _touch(data / "features" / "labels.parquet")
    for command in ("monitor", "backtest"):
        assert main([command]) == 1
        err = capsys.readouterr().err
        assert "no trained models yet" in err and "run `aurora train` first" in err, err
    duckdb.connect(str(data / "warehouse.duckdb")).close()  # a warehouse without ml.predictions
    assert main(["monitor"]) == 1
    assert "run `aurora train` first" in capsys.readouterr().err


def test_report_on_a_mistyped_dir_refuses_and_otherwise_ends_with_the_next_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AURORA_DATA_DIR", str(tmp_path / "dta"))
    assert main(["report"]) == 1
    assert "no data directory at" in capsys.readouterr().err
    data = tmp_path / "data"
    _touch(data / "artifacts" / "report.json", json.dumps({"sharpe_net": 0.5, "max_drawdown": 0.1234}))
    monkeypatch.setenv("AURORA_DATA_DIR", str(data))
    assert main(["report"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("next: aurora generate")
    assert any("12.34%" in line and "max_drawdown" in line for line in out)  # units in the text
    assert any("bps" in line and "units" in line for line in out)
    assert main(["report", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # stdout stays JSON; the next step goes to stderr
    assert report["max_drawdown"] == 0.1234 and "next:" in captured.err


# --------------------------------------------------------------------------------- --replace guard
def _earlier_run(data: Path) -> None:
    """A data directory that holds an earlier run's results in every place `--replace` clears."""
    _touch(data / "raw" / "prices.parquet", "old raw")
    _touch(data / "artifacts" / "report.json", json.dumps({"sharpe_net": 9.9}))
    _touch(data / "artifacts" / "models" / "m.pkl", "model")
    _touch(data / "features" / "labels.parquet", "old labels")
    _touch(data / "feast" / "registry.db", "registry")
    _touch(data / "feast" / "online.db", "online")
    _touch(data / "feast" / "feature_store.yaml", "kept")
    with duckdb.connect(str(data / "warehouse.duckdb")) as con:
        for schema in ("ml", "monitoring", "research", "quality"):
            con.execute(f"create schema {schema}")
        con.execute("create table ml.predictions as select 1 as x")
        con.execute("create table monitoring.model_monthly as select 1 as x")
        con.execute("create table research.feature_summary as select 1 as x")
        con.execute("create table quality.quarantine as select 1 as x")
        con.execute("create table quality.gx_results as select 1 as x")
        con.execute("create table main.kept as select 1 as x")


def _schemas(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}


def test_ingest_over_an_earlier_run_refuses_without_replace_and_clears_it_with(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("AURORA_DATA_DIR", str(data))
    _earlier_run(data)
    outside = _touch(tmp_path / "artifacts" / "keep.txt", "outside the data dir")
    inputs = write_tables(data / "inputs", valid_tables())  # the user's files, inside the data dir
    args = ["ingest", "--prices", str(inputs["prices"]), "--securities", str(inputs["securities"])]

    assert main(args) == 1
    err = capsys.readouterr().err
    assert "holds the results of an earlier run" in err and "--replace" in err
    assert "artifacts/" in err and "research" in err and "registry.db" in err  # says what it would clear
    assert (data / "raw" / "prices.parquet").read_text() == "old raw"  # nothing written
    assert (data / "artifacts" / "report.json").exists()

    assert main([*args, "--replace"]) == 0
    out = capsys.readouterr().out
    assert "--replace cleared" in out and out.splitlines()[-1].startswith("next: aurora build-features")
    assert not (data / "artifacts").exists() and not (data / "features").exists()
    assert not (data / "feast" / "registry.db").exists() and not (data / "feast" / "online.db").exists()
    assert (data / "feast" / "feature_store.yaml").exists()
    assert _schemas(data / "warehouse.duckdb") == {"quality.gx_results", "main.kept"}
    assert (data / "raw" / "prices.parquet").read_bytes() != b"old raw"  # the new raw data
    assert inputs["prices"].exists() and inputs["securities"].exists() and outside.exists()

    monkeypatch.setenv("AURORA_DATA_DIR", str(tmp_path / "fresh"))  # nothing to clear: no flag needed
    assert main(args) == 0


def test_replace_never_deletes_an_input_kept_where_it_would_clear(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("AURORA_DATA_DIR", str(data))
    _earlier_run(data)
    inputs = write_tables(data / "features" / "mine", valid_tables())
    assert main(["ingest", "--prices", str(inputs["prices"]), "--securities", str(inputs["securities"]),
                 "--replace"]) == 1
    assert "holds your input" in capsys.readouterr().err
    assert inputs["prices"].exists() and (data / "artifacts" / "report.json").exists()


def test_generate_over_an_earlier_run_refuses_without_replace(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("AURORA_DATA_DIR", str(data))
    _earlier_run(data)
    assert main(["generate", "--symbols", "30", "--days", "320"]) == 1
    assert "--replace" in capsys.readouterr().err
    assert (data / "raw" / "prices.parquet").read_text() == "old raw"
    # --out elsewhere leaves this data directory's results alone: no guard
    assert main(["generate", "--symbols", "30", "--days", "320", "--out", str(tmp_path / "x" / "raw")]) == 0
    assert (data / "artifacts" / "report.json").exists()


# ----------------------------------------------------------------------------- app, broken pipe
def test_app_forwards_sigterm_to_the_server_and_waits_for_it():
    class Child:
        def __init__(self):
            self.signals, self.returncode, self.calls = [], None, 0

        def poll(self):
            return self.returncode

        def send_signal(self, signum):
            self.signals.append(signum)
            self.returncode = -signum

        def kill(self):
            self.returncode = -9

        def wait(self, timeout=None):
            self.calls += 1
            if self.calls == 1:
                os.kill(os.getpid(), signal.SIGTERM)  # `kill <aurora app>`: handled, not fatal
                raise subprocess.TimeoutExpired("streamlit", timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired("streamlit", timeout)
            return self.returncode

    before = signal.getsignal(signal.SIGTERM)
    child = Child()
    assert cli.wait_forwarding_signals(child) == 128 + signal.SIGTERM
    assert child.signals == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_a_closed_pipe_ends_quietly(tmp_path, monkeypatch):
    data = tmp_path / "data"
    timings = {f"stage_{i}": float(i) for i in range(60_000)}  # a report far larger than the pipe's buffer
    _touch(data / "artifacts" / "report.json", json.dumps({"timings_s": timings}))
    env = {**os.environ, "AURORA_DATA_DIR": str(data)}
    done = subprocess.run(["bash", "-c", f"'{sys.executable}' -m flows.cli report | head -1; "
                                         "echo \"rc=${PIPESTATUS[0]}\" >&2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("data: ") and len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] in ("rc=0", "rc=141")


def test_main_returns_141_when_stdout_is_closed(monkeypatch, tmp_path):
    class Closed:
        def write(self, _text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    _touch(tmp_path / "artifacts" / "report.json", "{}")
    monkeypatch.setenv("AURORA_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["report"]) == 141
