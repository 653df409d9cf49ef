"""The Streamlit app (`app/main.py` and its pages), rendered with Streamlit's AppTest.

Every page against (a) an empty data directory: no exception, a "not available yet" notice and
(b) a small populated one (`app_fixtures.build_demo_data_dir`: a generated market plus `ml.*` tables
written directly): no exception, titles, metrics and tables present. Then the app while another
process (and, separately, this process) holds DuckDB's write lock on warehouse.duckdb: the pages still
show the previous tables, with a notice, and never crash. The screenshot script runs only where
Chromium is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from app_fixtures import build_demo_data_dir
from streamlit.testing.v1 import AppTest

from app import data as app_data
from app.navigation import PAGES
from app.targets import FAIL, MISSING, PASS, TARGETS, evaluate, fmt

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app" / "main.py"
PAGE_FILES = {title: file for file, title, _, _ in PAGES}
TIMEOUT = 30


@pytest.fixture(scope="session")
def empty_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("app_empty") / "data"


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    return build_demo_data_dir(tmp_path_factory.mktemp("app_demo") / "data").root


@pytest.fixture(autouse=True)
def _fresh_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("AURORA_APP_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    app_data.clear_caches()
    yield
    app_data.clear_caches()


def render(title: str, data_dir: Path, monkeypatch, **widgets) -> AppTest:
    """Run the app on one page with AURORA_DATA_DIR=data_dir; fail on any exception."""
    monkeypatch.setenv("AURORA_DATA_DIR", str(data_dir))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if PAGE_FILES[title] != PAGES[0][0]:
        at.switch_page(PAGE_FILES[title])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [title]
    assert not at.error, [e.value for e in at.error]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def infos(at: AppTest) -> list[str]:
    return [i.value for i in at.info]


# ============================================================================================ empty
@pytest.mark.parametrize("title", list(PAGE_FILES))
def test_pages_on_an_empty_data_dir_say_not_available(title, empty_dir, monkeypatch):
    at = render(title, empty_dir, monkeypatch)
    notes = infos(at)
    assert notes and all("not available yet" in n for n in notes), notes
    assert any("`aurora run`" in n or "`aurora generate`" in n or "`aurora build-features`" in n for n in notes)
    assert not at.warning


# ============================================================================================ populated
def test_overview(demo_dir, monkeypatch):
    at = render("Overview", demo_dir, monkeypatch)
    m = metrics(at)
    for t in TARGETS:
        assert m[t.label] != "—", t.key
    assert m["Oracle rank IC"] != "—" and m["Recovery share"].endswith("%")
    # the best single model shown is the walk-forward pick; the hindsight best only in a labelled caption
    saved = json.loads((demo_dir / "artifacts" / "report.json").read_text())
    assert m["Best single model rank IC"] == fmt(saved["best_single_model_rank_ic"])
    assert saved["best_single_model_rank_ic"] != saved["best_single_model_rank_ic_hindsight"]
    hindsight = [c.value for c in at.caption if fmt(saved["best_single_model_rank_ic_hindsight"]) in c.value]
    assert len(hindsight) == 1 and "hindsight" in hindsight[0] and "walk-forward" in hindsight[0]
    assert m["Symbols"] == "24" and m["Source"] == "synthetic"
    assert any("targets met" in md.value for md in at.markdown)
    assert [s.value for s in at.subheader][:4] == ["Headline metrics vs targets", "Signal recovery", "Data",
                                                   "Stage timings"]
    assert not infos(at)
    assert at.dataframe[0].value.shape[0] == 3  # ml.run_log


def test_models(demo_dir, monkeypatch):
    at = render("Models", demo_dir, monkeypatch)
    m = metrics(at)
    assert (m["Models"], m["Active"], m["Candidates"], m["Retired"]) == ("7", "5", "1", "1")
    registry = at.dataframe[0].value
    assert {"model_id", "family", "view", "status", "rank_ic"} <= set(registry.columns) and len(registry) == 7
    # the lineage: every generation, with the rule behind each retirement
    assert any(e.label.startswith("Lineage: 1 retirements, 1 retrained successors") for e in at.expander)
    lineage = next(d.value for d in at.dataframe if "lineage_id" in d.value.columns)
    assert len(lineage) == 8 and set(lineage.loc[lineage["generation"] == 2, "parent_id"]) == {
        lineage.loc[lineage["status"] == "retired", "lineage_id"].iloc[0]}
    # monthly IC per model, computed from predictions + labels by the project's rank IC
    summary = next(d.value for d in at.dataframe if "mean_rank_ic" in d.value.columns)
    assert {"model_id", "mean_rank_ic", "months"} <= set(summary.columns) and len(summary) == 7
    assert summary["months"].min() >= 5
    assert any("Status over time" in e.label for e in at.expander)
    subheaders = [s.value for s in at.subheader]
    assert "Ensemble weights over time" in subheaders and "Lifecycle events" in subheaders
    events = at.dataframe[-1].value
    assert {"model_id", "to_status", "reason"} <= set(events.columns) and "retired" in set(events["to_status"])
    assert not infos(at)

    at.multiselect(key="models_status").set_value(["retired"]).run()
    assert not at.exception and len(at.dataframe[0].value) == 1


def test_calibration(demo_dir, monkeypatch):
    at = render("Calibration", demo_dir, monkeypatch)
    reliability = at.dataframe[0].value
    assert list(reliability["decile"]) == list(range(1, 11))
    assert reliability["predicted"].is_monotonic_increasing  # deciles of expected return
    assert reliability["realized"].iloc[-1] > reliability["realized"].iloc[0]  # the demo signal is real
    m = metrics(at)
    assert m["Signal rows"] != "—" and m["This page"].endswith("%")
    assert {"Reliability diagram", "Interval coverage (80% intervals)",
            "The calibration's track record"} <= {s.value for s in at.subheader}
    assert any("latest 0.80" in c.value for c in at.caption)  # the scale applied to the last day's signals
    assert not infos(at)
    # prob_up: the reliability curve's table (deciles of predicted probability with counts) and the Brier score
    prob = at.dataframe[1].value
    assert list(prob.columns) == ["bin", "n", "predicted", "observed"] and list(prob["bin"]) == list(range(1, 11))
    assert prob["predicted"].between(0, 1).all() and prob["predicted"].is_monotonic_increasing
    assert prob["observed"].iloc[-1] > prob["observed"].iloc[0]  # the demo signal is real
    assert 0 < float(m["Brier score"]) < 0.25 and m["Brier skill"] == "+0.0060"


def test_backtest(demo_dir, monkeypatch):
    at = render("Backtest", demo_dir, monkeypatch)
    m = metrics(at)
    assert {"Sharpe (gross)", "Sharpe (net of costs)", "Max drawdown", "Turnover per month",
            "Cost retention"} <= set(m)
    assert all(v != "—" for v in m.values())
    assert {"Equity: gross vs net of costs", "Drawdown (net)", "Turnover", "Cost retention"} <= {
        s.value for s in at.subheader}
    daily = at.dataframe[-1].value
    assert {"date", "gross_return", "net_return", "turnover"} <= set(daily.columns)
    assert not infos(at)


def test_backtest_states_window_gross_turnover_and_the_guardrail_warnings(demo_copy, monkeypatch):
    at = render("Backtest", demo_copy, monkeypatch)
    header = next(m.value for m in at.markdown if "trading days" in m.value)
    assert "mean gross exposure" in header and "x capital" in header and "x the book" in header
    assert not at.warning  # no guardrail fired in the demo's report

    from ml.report import update_saved_report

    update_saved_report(app_data.DataPaths(demo_copy), policy_warnings=["held gross exceeded the cap of 2.00x"])
    app_data.clear_caches()
    at = render("Backtest", demo_copy, monkeypatch)
    assert [w.value for w in at.warning] == ["Policy guardrail: held gross exceeded the cap of 2.00x"]


def test_backtest_says_no_positions_taken_with_the_reason_counts(demo_copy, monkeypatch):
    with duckdb.connect(str(demo_copy / "warehouse.duckdb")) as con:
        con.execute("update ml.backtest_daily set gross_exposure = 0, turnover = 0, gross_return = 0, "
                    "cost = 0, net_return = 0")
        con.execute("update ml.positions set target_weight = 0, trade = 0, reason = 'abstain: no signal'")
    at = render("Backtest", demo_copy, monkeypatch)
    notes = [w.value for w in at.warning]
    assert len(notes) == 1 and notes[0].startswith("No positions taken over this window")
    assert "abstain: no signal:" in notes[0]
    assert not any("nan" in m.value.lower() for m in at.markdown)


def _constants_table(at: AppTest):
    return next(d.value for d in at.dataframe if {"constant", "latest", "meaning"} <= set(d.value.columns))


def test_backtest_shows_the_measured_policy_constants(demo_dir, monkeypatch):
    at = render("Backtest", demo_dir, monkeypatch)
    assert "Measured policy constants" in [s.value for s in at.subheader]
    with duckdb.connect(str(demo_dir / "warehouse.duckdb"), read_only=True) as con:
        latest = dict(con.execute(
            "select constant, value from ml.policy_constants "
            "where date = (select max(date) from ml.policy_constants)").fetchall())
    table = _constants_table(at).set_index("constant")
    assert list(table.index) == [  # every constant, in the documented order
        "edge_per_bp", "edge_raw_per_bp", "edge_tstat", "holding_horizon_days", "spread_median_bps",
        "spread_share_quoted", "spread_share_estimated", "spread_share_fallback", "risk_aversion",
        "realized_risk_scale", "nav", "optimizer_relaxed", "optimizer_fallback"]
    assert table["latest"].to_dict() == pytest.approx(latest)
    assert table["meaning"].str.len().min() > 20
    assert table.loc["optimizer_relaxed", "mean over window"] > 0  # one relaxed day in the demo
    assert "Abdi-Ranaldo" in table.loc["spread_share_estimated", "meaning"]
    assert not any("abstaining" in w.value for w in at.warning)  # the demo's edge is positive


def test_backtest_says_the_policy_abstains_when_the_latest_edge_is_zero(demo_copy, monkeypatch):
    with duckdb.connect(str(demo_copy / "warehouse.duckdb")) as con:
        con.execute("""update ml.policy_constants set value = case when constant = 'edge_per_bp' then 0
                                                                    when constant = 'holding_horizon_days' then 0
                                                                    else null end
                       where constant in ('edge_per_bp', 'holding_horizon_days', 'edge_tstat', 'edge_raw_per_bp')
                         and date = (select max(date) from ml.policy_constants)""")
    at = render("Backtest", demo_copy, monkeypatch)
    abstaining = [w.value for w in at.warning if "abstaining" in w.value]
    assert len(abstaining) == 1 and "edge is not distinguishable from zero" in abstaining[0]
    table = _constants_table(at).set_index("constant")
    assert table.loc["edge_per_bp", "latest"] == 0 and table.loc["holding_horizon_days", "latest"] == 0
    assert not any("nan" in m.value.lower() for m in at.markdown)

    with duckdb.connect(str(demo_copy / "warehouse.duckdb")) as con:
        con.execute("drop table ml.policy_constants")
    app_data.clear_caches()
    at = render("Backtest", demo_copy, monkeypatch)
    assert any("ml.policy_constants" in n and "not available yet" in n for n in infos(at))
    assert "Measured policy constants" in [s.value for s in at.subheader]


def test_data_quality(demo_dir, monkeypatch):
    at = render("Data quality", demo_dir, monkeypatch)
    m = metrics(at)
    assert (m["Tests"], m["Passed"], m["Warned"], m["Models built"]) == ("5", "4", "1", "3")
    assert (m["Expectations (latest run)"], m["Failed critical"], m["Failed warnings"]) == ("9", "0", "1")
    assert (m["Failed quarantine"], m["Quarantined columns"]) == ("1", "1")
    held = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert held[["view", "column_name"]].values.tolist() == [["alt_data", "cp_iv_spread"]]
    assert held["reason"].iloc[0].startswith("null_rate: recent window")
    assert m["Latest raw price date"] == m["Latest feature date"] and m["Stale feature files"] == "0"
    fresh = next(d.value for d in at.dataframe if "business_days_behind" in d.value.columns)
    assert {"raw/prices.parquet", "features/labels.parquet", "ml.signals"} <= set(fresh["table"])
    assert set(fresh["status"]) == {"fresh"}
    assert any("psi" in d.value.columns for d in at.dataframe)  # ml.feature_drift
    assert not infos(at)


def test_signals_and_filters(demo_dir, monkeypatch):
    at = render("Signals", demo_dir, monkeypatch)
    m = metrics(at)
    assert m["Signal date"] != "—" and int(m["Names"]) > 0 and "/" in m["Long / short"]
    table = at.dataframe[0].value
    assert {"symbol", "sector", "expected_return", "lower", "upper", "target_weight", "reason"} <= set(table.columns)
    assert table["sector"].notna().all() and (table["sector"] != "unknown").all()

    sector = table["sector"].value_counts().index[0]
    at.multiselect(key="signals_sector").set_value([sector]).run()
    assert not at.exception
    filtered = at.dataframe[0].value
    assert set(filtered["sector"]) == {sector} and len(filtered) < len(table)

    symbol = filtered["symbol"].iloc[0]
    at.multiselect(key="signals_symbol").set_value([symbol]).run()
    assert not at.exception
    assert list(at.dataframe[0].value["symbol"]) == [symbol]
    assert f"{symbol}: signal history" in [s.value for s in at.subheader]


def _charts(at: AppTest) -> list[str]:
    """The Vega-Lite spec of every chart on the page (as JSON text), each checked to carry data."""
    charts = at.get("vega_lite_chart")
    assert all(c.proto.datasets or c.proto.data.data for c in charts)
    return [json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in charts]


def test_features(demo_dir, monkeypatch):
    at = render("Features", demo_dir, monkeypatch)
    assert [s.value for s in at.subheader] == ["Feature views", "All features", "Tear sheet"]
    m = metrics(at)
    assert (m["Views"], m["Features"]) == ("2", "5")
    views = at.dataframe[0].value
    assert list(views["view_name"]) == ["microstructure", "price_momentum"]
    table = at.dataframe[1].value  # the ranked table, on the primary label
    assert {"view", "feature", "mean_ic", "ic_t", "ic_1d", "ic_5d", "ic_21d", "orthogonal_ic", "coverage",
            "turnover", "net_spread_ann"} <= set(table.columns) and len(table) == 5
    assert table["ic_t"].abs().is_monotonic_decreasing
    assert (table["ic_5d"] == table["mean_ic"]).all()  # fwd_ret_sn_5d: the 5-day sector-neutral IC
    assert table.loc[table["view"] == "price_momentum", "orthogonal_ic"].isna().all()  # the baseline
    top = table.iloc[0]
    assert at.selectbox(key="features_feature").value == f"{top['view']}.{top['feature']}"  # top by |t|
    specs = _charts(at)
    for title in ("cumulative rank IC", "mean rank IC", "spread (bps, gross)", "annualized spread", "calendar year", "market volatility state",
                  "mean rank correlation", "IC after neutralizing to price_momentum"):
        assert any(title in s for s in specs), title
    assert not infos(at)

    # a feature of the baseline view: no orthogonal IC of its own; ml.feature_drift has its PSI
    at.selectbox(key="features_feature").set_value("price_momentum.vol_21d").run()
    assert not at.exception
    assert any("is the baseline" in n for n in infos(at))
    assert any('"PSI"' in s for s in _charts(at))

    # the whole view: heatmaps of IC by label, by year and vol state, and the view's correlation matrix
    at.radio(key="features_scope").set_value("View").run()
    at.selectbox(key="features_view").set_value("microstructure").run()
    assert not at.exception and not at.error
    assert metrics(at)["Features in view"] == "2"
    specs = _charts(at)
    assert sum('"rect"' in s for s in specs) >= 4  # IC by label, year, vol state, correlation
    assert any("datum.picked" in s for s in specs)  # raw vs neutralized IC of every feature of the view

    # another label: the ranking and the decay columns follow it
    at.selectbox(key="features_label").set_value("fwd_ret_21d").run()
    assert not at.exception
    table = at.dataframe[1].value
    assert (table["ic_21d"] == table["mean_ic"]).all() and table["ic_t"].abs().is_monotonic_decreasing


def test_features_without_research_marts_says_build_features(demo_copy, monkeypatch):
    with duckdb.connect(str(demo_copy / "warehouse.duckdb")) as con:
        con.execute("drop schema research cascade")
    at = render("Features", demo_copy, monkeypatch)
    notes = infos(at)
    assert len(notes) == 1 and "not available yet" in notes[0] and "`aurora build-features`" in notes[0]
    assert not at.dataframe and not at.get("vega_lite_chart")


# ============================================================================================ locks
def _backtest_rows(at: AppTest) -> int:
    return len(at.dataframe[-1].value)


def _hold_write_lock(db: Path) -> subprocess.Popen:
    """Another process opens the warehouse for writing, changes a table and keeps the lock."""
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(db)!r})
        con.execute("set checkpoint_threshold = '10GB'")
        con.execute("create or replace table ml.backtest_daily as select * from ml.backtest_daily limit 3")
        print("locked", flush=True)
        sys.stdin.read()  # until the test closes stdin
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.fixture()
def demo_copy(tmp_path, demo_dir) -> Path:
    """A private copy of the demo data dir, for tests that change its warehouse."""
    import shutil

    target = tmp_path / "data"
    shutil.copytree(demo_dir, target)
    return target


def test_pages_keep_working_while_another_process_writes(demo_copy, monkeypatch):
    before = render("Backtest", demo_copy, monkeypatch)
    n_rows = _backtest_rows(before)
    assert n_rows > 3 and not before.warning
    with duckdb.connect(str(demo_copy / "warehouse.duckdb")):  # the app closed its read-only connection
        pass

    writer = _hold_write_lock(demo_copy / "warehouse.duckdb")
    try:
        # the last good read of this process
        at = render("Backtest", demo_copy, monkeypatch)
        assert _backtest_rows(at) == n_rows
        assert any("locked by a writer" in w.value for w in at.warning)
        # never read before in this process: a copy of the warehouse file (its last checkpoint)
        app_data.clear_caches()
        at = render("Backtest", demo_copy, monkeypatch)
        assert _backtest_rows(at) == n_rows
        assert any("copy of the warehouse" in w.value for w in at.warning)
        for title in PAGE_FILES:  # every page renders while the lock is held
            render(title, demo_copy, monkeypatch)
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)

    at = render("Backtest", demo_copy, monkeypatch)  # the writer is done: its table is read
    assert _backtest_rows(at) == 3 and not at.warning


def test_pages_keep_working_while_this_process_holds_a_write_connection(demo_copy, monkeypatch):
    before = render("Signals", demo_copy, monkeypatch)
    n_names = metrics(before)["Names"]
    con = duckdb.connect(str(demo_copy / "warehouse.duckdb"))  # kept open while the pages render
    try:
        con.execute("delete from ml.signals")
        at = render("Signals", demo_copy, monkeypatch)
        assert metrics(at)["Names"] == n_names
        assert at.warning
        render("Models", demo_copy, monkeypatch)  # not read before: served from a copy
    finally:
        con.close()


def test_stored_monitoring_tables_are_preferred(demo_copy, monkeypatch):
    """ml.model_metrics_monthly and ml.feature_drift as ml.lifecycle writes them."""
    import pandas as pd

    months = pd.date_range("2017-08-01", periods=6, freq="MS")
    monthly = pd.DataFrame([{"model_id": m, "month": d.date(), "month_end": (d + pd.offsets.MonthEnd()).date(),
                             "known_at": None, "ic": 0.01 * i, "ic_sd": 0.1, "n_days": 20, "hit_rate": 0.5,
                             "valid": True} for i, m in enumerate(["a", "b"]) for d in months])
    drift = pd.DataFrame([{"view": "price_momentum", "feature": f, "month": months[-1].date(), "psi": p,
                           "null_share": 0.0, "n_rows": 100, "level": "stable", "reference_start": None,
                           "reference_end": None} for f, p in (("ret_5d", 0.02), ("vol_21d", 0.3))])
    with duckdb.connect(str(demo_copy / "warehouse.duckdb")) as con:
        for name, frame in (("model_metrics_monthly", monthly), ("feature_drift", drift)):
            con.register("incoming", frame)
            con.execute(f"create or replace table ml.{name} as select * from incoming")
            con.unregister("incoming")
    at = render("Models", demo_copy, monkeypatch)
    assert any("ml.model_metrics_monthly" in c.value for c in at.caption)
    summary = next(d.value for d in at.dataframe if "mean_rank_ic" in d.value.columns)
    assert set(summary["model_id"]) == {"a", "b"}
    at = render("Data quality", demo_copy, monkeypatch)
    assert any(set(d.value.columns) >= {"feature", "psi", "level"} for d in at.dataframe)


# ============================================================================================ units
def test_targets_pass_fail_and_missing():
    rows = {r["key"]: r for r in evaluate({
        "oos_rank_ic": 0.06, "sharpe_net": 1.2, "max_drawdown": -0.05, "turnover_monthly": None,
        "coverage_80": 0.86, "n_model_families": 5, "n_feature_views": 3, "calibration_error": float("nan"),
    })}
    assert rows["oos_rank_ic"]["status"] == PASS and rows["sharpe_net"]["status"] == FAIL
    assert rows["max_drawdown"]["status"] == PASS  # a negative drawdown convention is accepted
    assert rows["turnover_monthly"]["status"] == MISSING and rows["calibration_error"]["status"] == MISSING
    assert rows["coverage_80"]["status"] == FAIL and rows["n_model_families"]["status"] == PASS
    assert rows["n_feature_views"]["status"] == FAIL and rows["cost_retention"]["status"] == MISSING


def test_screenshot_dom_check_flags_errors():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from screenshot_app import check_dom
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    good = '<h1 id="backtest">Backtest</h1><p>Calibration error 4%</p>'
    assert check_dom(good, "Backtest") == []
    assert check_dom('<h1>Backtest</h1><div data-testid="stException">x</div>', "Backtest")
    assert check_dom("<h1>Backtest</h1><pre>KeyError: 'date'</pre>", "Backtest")
    assert check_dom("<div>You need to enable JavaScript</div>", "Backtest")  # never rendered


# ============================================================================================ browser
@pytest.mark.slow
@pytest.mark.skipif(
    not __import__("shutil").which("chromium") and not __import__("shutil").which("chromium-browser")
    and not __import__("os").environ.get("CHROMIUM"),
    reason="Chromium not installed (apt-get install -y chromium)",
)
def test_screenshots_of_every_page(demo_dir, tmp_path):
    out = tmp_path / "shots"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshot_app.py"), "--data-dir", str(demo_dir), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [r["page"] for r in summary] == list(PAGE_FILES) and all(r["ok"] for r in summary)
    for r in summary:
        assert Path(r["png"]).stat().st_size > 20_000, r  # a rendered page, not a blank shell


def test_the_track_record_query_reads_older_warehouses_without_the_column(tmp_path):
    """A warehouse written before `track_record_scale` existed: the query answers None (the page leaves the
    chart out), not an error."""
    from app.data import QUERIES, Ctx
    from ml.paths import DataPaths

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("create schema ml")
        con.execute("create table ml.signals as select date '2024-01-02' as date, 'A' as symbol, 1.0 as expected_return")
        ctx = Ctx(con, DataPaths(tmp_path), {})
        assert QUERIES["track_record"](ctx) is None
        con.execute("alter table ml.signals add column track_record_scale double default 0.5")
        assert QUERIES["track_record"](Ctx(con, DataPaths(tmp_path), {}))["scale"].tolist() == [0.5]
