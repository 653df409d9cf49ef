"""The dbt feature layer, end to end on a small synthetic market (ml.warehouse.build_features)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.contract import FEATURE_VIEWS, PUBLISH_DATE, VIEW_REQUIRES
from ml.data.raw_inputs import inspect_raw
from ml.market import MarketConfig, write_market
from ml.paths import DataPaths
from ml.warehouse import MARTS, FeatureBuildError, build_features, mart_checksums

MIN_FEATURES = {"price_momentum": 8, "sector_neutral": 6, "fundamental": 8, "microstructure": 5, "alt_data": 5}
LABEL_COLUMNS = ["fwd_ret_1d", "fwd_ret_5d", "fwd_ret_21d", "fwd_ret_sn_1d", "fwd_ret_sn_5d", "fwd_ret_sn_21d"]
CONFIG = MarketConfig(n_symbols=40, n_days=400, seed=3)


def _build(root: Path, **kwargs):
    lines: list[str] = []
    result = build_features(DataPaths.from_env(root), log=lines.append, **kwargs)
    return result, lines


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    """Raw tables of a small market, written once; tests copy them into their own data dirs."""
    root = tmp_path_factory.mktemp("market")
    write_market(CONFIG, root / "raw")
    return root / "raw"


@pytest.fixture(scope="module")
def built(market, tmp_path_factory):
    root = tmp_path_factory.mktemp("built")
    shutil.copytree(market, root / "raw")
    result, lines = _build(root)
    return root, result, lines


def _read(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------
# the full build


def test_build_publishes_all_marts_with_symbol_date_leading(built):
    root, result, _ = built
    assert result.views_built == list(FEATURE_VIEWS)
    assert result.labels_built and result.views_skipped == {}
    for mart in MARTS:
        path = root / "features" / f"{mart}.parquet"
        assert result.files[mart] == path and path.exists()
        schema = pq.read_schema(path)
        assert schema.names[:2] == ["symbol", "date"]
        assert schema.field("symbol").type == pa.string()
        assert schema.field("date").type == pa.date32()
        assert all(pa.types.is_floating(t) or pa.types.is_integer(t) for t in schema.types[2:]), mart
    assert not list((root / "features").glob(".staging*"))


def test_minimum_feature_counts_and_documented_columns(built):
    root, result, _ = built
    manifest = json.loads(result.manifest_path.read_text())
    for mart in MARTS:
        columns = pq.read_schema(root / "features" / f"{mart}.parquet").names
        documented = list(manifest["nodes"][f"model.aurora.{mart}"]["columns"])
        assert columns == documented, f"{mart}: parquet columns differ from the model's YAML"
        if mart in MIN_FEATURES:
            assert len(columns) - 2 >= MIN_FEATURES[mart], mart
    assert pq.read_schema(root / "features" / "labels.parquet").names[2:] == LABEL_COLUMNS


def test_every_model_documents_exactly_its_columns(built):
    root, result, _ = built
    nodes = json.loads(result.manifest_path.read_text())["nodes"].values()
    # the monitoring marts (tag monitoring) are built by ml.monitoring, not by the feature build
    models = [n for n in nodes if n["resource_type"] == "model" and "monitoring" not in n["tags"]]
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        for node in models:
            columns = [r[0] for r in con.execute(f'describe "{node["schema"]}"."{node["name"]}"').fetchall()]
            assert columns == list(node["columns"]), f"{node['name']}: columns differ from its YAML"
            assert node["description"] and all(c["description"] for c in node["columns"].values()), node["name"]
    finally:
        con.close()
    assert len(models) >= 25


def test_marts_have_one_row_per_price_row(built, market):
    root, _, _ = built
    keys = _read(market / "prices.parquet")[["symbol", "date"]]
    for mart in MARTS:
        frame = _read(root / "features" / f"{mart}.parquet")
        assert len(frame) == len(keys) and not frame.duplicated(["symbol", "date"]).any(), mart


def test_marts_queryable_in_warehouse_and_point_at_published_files(built):
    root, _, _ = built
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        for mart in MARTS:
            n = con.execute(f"select count(*) from main.{mart}").fetchall()[0][0]
            assert n == pq.ParquetFile(root / "features" / f"{mart}.parquet").metadata.num_rows
            sql = con.execute("select sql from duckdb_views() where view_name = ?", [mart]).fetchall()[0][0]
            assert str(root / "features" / f"{mart}.parquet") in sql and ".staging" not in sql
    finally:
        con.close()


def test_all_dbt_tests_ran_and_passed(built):
    _, result, lines = built
    assert result.tests_failed == 0 and result.tests_passed >= 100
    units = [n for n in result.nodes if n.resource_type == "unit_test"]
    assert len(units) >= 5 and all(n.status == "pass" for n in units)
    # progress is summarized (a line every 50 nodes, one per node that did not pass), the detail is dbt.log
    progress = [line for line in lines if line.startswith("dbt: ") and "nodes done" in line]
    assert len(progress) >= 3 and len(progress) <= len(result.nodes) // 50 + 1
    assert not [line for line in lines if line.startswith("dbt ") and ": PASS" in line]
    assert any(line.startswith("dbt detail, node by node: ") and line.endswith("dbt.log") for line in lines)
    assert result.seconds > 0 and result.manifest_path.exists()


def test_mart_tags_match_the_contract(built):
    _, result, _ = built
    nodes = json.loads(result.manifest_path.read_text())["nodes"]
    for view in FEATURE_VIEWS:
        tags = {t.removeprefix("needs:") for t in nodes[f"model.aurora.{view}"]["tags"] if t.startswith("needs:")}
        assert tags == set(VIEW_REQUIRES[view]), view


def test_mart_checksums(built):
    root, _, _ = built
    plain = mart_checksums(DataPaths.from_env(root))
    lineage = mart_checksums(DataPaths.from_env(root), lineage=True)
    assert set(plain) == set(lineage) == set(MARTS)
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in [*plain.values(), *lineage.values()])
    assert plain == mart_checksums(DataPaths.from_env(root)) and plain != lineage


# ----------------------------------------------------------------------------------------------
# formulas checked against plain Python


def test_labels_are_the_forward_close_to_close_returns(built, market):
    root, _, _ = built
    prices = _read(market / "prices.parquet").sort_values(["symbol", "date"])
    labels = _read(root / "features" / "labels.parquet").set_index(["symbol", "date"]).sort_index()
    by_symbol = prices.groupby("symbol")["close"]
    for h in (1, 5, 21):
        expected = (by_symbol.shift(-h) / prices["close"] - 1).to_numpy()
        got = labels.loc[list(zip(prices["symbol"], prices["date"], strict=True)), f"fwd_ret_{h}d"].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, equal_nan=True)


def test_only_labels_look_forward(built):
    _, result, _ = built
    nodes = json.loads(result.manifest_path.read_text())["nodes"]
    target = result.manifest_path.parent / "compiled" / "aurora" / "models"
    forward = re.compile(r"\blead\s*\(|\d+\s+following", re.IGNORECASE)
    checked = 0
    for node in nodes.values():
        if node["resource_type"] != "model" or "monitoring" in node["tags"]:  # not compiled by the feature build
            continue
        sql = (target / Path(node["original_file_path"]).relative_to("models")).read_text()
        if node["name"] == "labels":
            assert forward.search(sql)
        else:
            assert not forward.search(sql), f"{node['name']} looks forward"
            checked += 1
    assert checked >= 20


def test_multi_factor_betas_match_least_squares(built):
    root, _, _ = built
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        frame = con.execute(
            """select b.symbol, b.date, b.ret_1d, b.market_ret, f.mkt_ret, f.smb_ret, f.hml_ret,
                      r.beta_size, r.beta_value, r.resid_ret_1d, b.sector_ret
               from main.int_returns_benchmarked b
               join main.int_factor_returns_built f using (date)
               join main.int_returns_residualized r using (symbol, date)
               order by b.symbol, b.date"""
        ).fetchdf()
    finally:
        con.close()
    symbol = frame.groupby("symbol").size().idxmax()
    one = frame[frame["symbol"] == symbol].reset_index(drop=True)
    t = len(one) - 1
    window = one.iloc[t - 125 : t + 1]
    x = window[["mkt_ret", "smb_ret", "hml_ret"]].to_numpy()
    y = window["ret_1d"].to_numpy()
    design = np.column_stack([np.ones(len(y)), x])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    assert one.loc[t, "beta_size"] == pytest.approx(coef[2], rel=1e-7, abs=1e-10)
    assert one.loc[t, "beta_value"] == pytest.approx(coef[3], rel=1e-7, abs=1e-10)
    xs = np.column_stack([window["market_ret"], window["sector_ret"] - window["market_ret"]])
    b = np.linalg.lstsq(np.column_stack([np.ones(len(y)), xs]), y, rcond=None)[0]
    resid = one.loc[t, "ret_1d"] - b[1] * one.loc[t, "market_ret"] - b[2] * (
        one.loc[t, "sector_ret"] - one.loc[t, "market_ret"])
    assert one.loc[t, "resid_ret_1d"] == pytest.approx(resid, rel=1e-7, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# point in time


def test_features_ignore_everything_published_after_the_cutoff(built, market, tmp_path):
    """Rewrite every raw value published after D; no feature of a date <= D may change."""
    root, _, _ = built
    cutoff = np.datetime64(_read(market / "prices.parquet")["date"].sort_values().unique()[300], "D")
    rng = np.random.default_rng(11)
    (tmp_path / "raw").mkdir()
    for file in market.glob("*"):
        table = file.stem
        if table not in PUBLISH_DATE:
            shutil.copy(file, tmp_path / "raw" / file.name)
            continue
        frame = _read(file)
        late = frame[PUBLISH_DATE[table]].to_numpy().astype("datetime64[D]") > cutoff
        for column in frame.select_dtypes("float").columns:
            frame.loc[late, column] *= rng.uniform(0.5, 1.5, late.sum())
        pq.write_table(pa.Table.from_pandas(frame, schema=pq.read_schema(file), preserve_index=False),
                       tmp_path / "raw" / file.name)
    _build(tmp_path, select="+price_momentum +sector_neutral +fundamental +microstructure +alt_data")
    for view in FEATURE_VIEWS:
        before = _read(root / "features" / f"{view}.parquet")
        after = _read(tmp_path / "features" / f"{view}.parquet")
        early = before["date"].to_numpy().astype("datetime64[D]") <= cutoff
        assert early.sum() > 0 and (before["date"] == after["date"]).all()
        pd.testing.assert_frame_equal(before[early], after[early], check_exact=True, obj=view)
        late = ~early
        assert not before[late].drop(columns=["symbol", "date"]).equals(after[late].drop(columns=["symbol", "date"]))


# ----------------------------------------------------------------------------------------------
# missing inputs and failures


def test_price_only_data_builds_core_views_and_skips_the_rest(market, tmp_path):
    (tmp_path / "raw").mkdir()
    shutil.copy(market / "securities.parquet", tmp_path / "raw")
    prices = pq.read_table(market / "prices.parquet").drop_columns(["vwap", "spread_bps", "order_imbalance"])
    pq.write_table(prices, tmp_path / "raw" / "prices.parquet")
    (tmp_path / "features").mkdir()
    stale = tmp_path / "features" / "fundamental.parquet"
    stale.write_bytes(b"old")

    result, lines = _build(tmp_path)

    assert result.views_built == ["price_momentum", "sector_neutral"] and result.labels_built
    assert set(result.views_skipped) == {"fundamental", "microstructure", "alt_data"}
    assert "fundamentals" in result.views_skipped["fundamental"]
    assert any(line.startswith("skipping view microstructure") for line in lines)
    assert not stale.exists()
    assert sorted(p.stem for p in (tmp_path / "features").glob("*.parquet")) == sorted(
        ["labels", "price_momentum", "sector_neutral"])
    neutral = _read(tmp_path / "features" / "sector_neutral.parquet")
    assert neutral["resid_ret_5d"].notna().mean() > 0.5 and neutral["beta_size"].notna().mean() > 0.5
    assert "beta_value" not in neutral.columns  # no fundamentals, no value factor: left out, not faked
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    finally:
        con.close()
    assert {"price_momentum", "sector_neutral", "labels"} <= views and "fundamental" not in views


def test_optional_price_columns_without_values_count_as_missing(market, tmp_path):
    (tmp_path / "raw").mkdir()
    prices = pq.read_table(market / "prices.parquet")
    i = prices.schema.get_field_index("vwap")
    pq.write_table(prices.set_column(i, "vwap", pa.nulls(len(prices), pa.float64())), tmp_path / "raw" / "prices.parquet")
    assert "vwap" not in inspect_raw(DataPaths.from_env(tmp_path)).price_columns


def test_failing_test_raises_readable_error_and_keeps_published_features(built, tmp_path):
    root, _, _ = built
    shutil.copytree(root / "raw", tmp_path / "raw")
    shutil.copytree(root / "features", tmp_path / "features")
    shutil.copy(root / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    before = {p.name: _digest(p) for p in (tmp_path / "features").glob("*.parquet")}
    prices = pq.read_table(tmp_path / "raw" / "prices.parquet")
    bad = prices.slice(7, 1)
    bad = bad.set_column(bad.schema.get_field_index("close"), "close", pa.array([-1.0]))
    pq.write_table(pa.concat_tables([prices, bad]), tmp_path / "raw" / "prices.parquet")

    with pytest.raises(FeatureBuildError) as caught:
        _build(tmp_path)

    report = str(caught.value)
    assert "published features" in report and "unchanged" in report
    assert "accepted_range on stg_prices.close" in report
    assert "unique_combination on stg_prices" in report and "n_rows" in report
    assert {n.name.split(" ")[0] for n in caught.value.failures} == {"accepted_range", "unique_combination"}
    assert caught.value.result.tests_failed == 2
    assert {p.name: _digest(p) for p in (tmp_path / "features").glob("*.parquet")} == before
    assert not list((tmp_path / "features").glob(".staging*"))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from main.price_momentum").fetchall()[0][0] > 0
    finally:
        con.close()


def test_no_raw_data_is_a_clear_error(tmp_path):
    with pytest.raises(FeatureBuildError, match="aurora generate"):
        _build(tmp_path)


def test_a_vendor_unit_change_in_raw_fundamentals_stops_the_gate_naming_the_columns(built, tmp_path):
    """book_equity reported x1000 in the last quarter's filings: the marts build (the values are
    possible), the gate stops the pipeline and names the features the change touches."""
    from ml import quality

    root, _, _ = built
    shutil.copytree(root / "raw", tmp_path / "raw")
    fundamentals = pd.read_parquet(tmp_path / "raw" / "fundamentals.parquet")
    last_price = pd.read_parquet(tmp_path / "raw" / "prices.parquet")["date"].max()
    recent = pd.to_datetime(fundamentals["report_date"]) > pd.Timestamp(last_price) - pd.Timedelta(days=91)
    assert recent.sum() >= 20
    fundamentals.loc[recent, "book_equity"] *= 1000.0
    fundamentals.to_parquet(tmp_path / "raw" / "fundamentals.parquet", index=False)

    _build(tmp_path)
    with pytest.raises(quality.DataQualityError) as caught:
        quality.check_features(DataPaths.from_env(tmp_path), log=None)
    critical = caught.value.results
    critical = critical[~critical["success"] & (critical["severity"] == "critical")]
    assert set(critical["rule"]) == {"scale_jump"}
    assert "book_to_price" in set(critical["column_name"])
    assert "book_to_price" in str(caught.value)


def test_dbt_docs_describe_the_marts_and_the_exposures_that_read_them(built):
    """`aurora docs`: the site, a catalog of the built marts, and the app's declared dependencies."""
    from ml.data.dbt_docs import generate_docs

    root, _, _ = built
    target = generate_docs(DataPaths.from_env(root), log=lambda *_a: None)
    assert (target / "index.html").exists()
    catalog = json.loads((target / "catalog.json").read_text())
    assert any(node.endswith(".price_momentum") for node in catalog["nodes"])
    manifest = json.loads((target / "manifest.json").read_text())
    app = manifest["exposures"]["exposure.aurora.streamlit_app"]
    assert "model.aurora.labels" in app["depends_on"]["nodes"]
    assert "model.aurora.monitoring_model_ic_monthly" in app["depends_on"]["nodes"]


def test_dbt_docs_without_a_warehouse_is_a_clear_error(tmp_path):
    from ml.data.dbt_docs import DocsError, generate_docs

    with pytest.raises(DocsError, match="build-features"):
        generate_docs(DataPaths.from_env(tmp_path), log=lambda *_a: None)


# ----------------------------------------------------------------------------------------------
# contracts and the research marts

PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "models", "macros", "tests/dbt")


def _project_copy(target: Path) -> Path:
    repo = Path(__file__).resolve().parents[1]
    for name in PROJECT_FILES:
        if (repo / name).is_dir():
            shutil.copytree(repo / name, target / name)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, target / name)
    return target


def test_feature_marts_labels_and_monitoring_marts_enforce_their_contracts(built):
    root, result, _ = built
    nodes = json.loads(result.manifest_path.read_text())["nodes"].values()
    contracted = {n["name"] for n in nodes if n["resource_type"] == "model" and n["config"]["contract"]["enforced"]}
    assert set(MARTS) <= contracted
    assert {"monitoring_model_status", "monitoring_model_ic_monthly", "monitoring_backtest_summary",
            "monitoring_latest_signals_by_sector"} <= contracted


def test_a_column_whose_type_breaks_the_contract_stops_the_build(market, tmp_path, monkeypatch):
    project = _project_copy(tmp_path / "project")
    yml = project / "models" / "features" / "price_momentum.yml"
    text = yml.read_text()
    yml.write_text(text.replace("      - name: ret_1d\n        data_type: double", "      - name: ret_1d\n        data_type: varchar", 1))
    assert yml.read_text() != text
    monkeypatch.setenv("AURORA_DBT_PROJECT_DIR", str(project))
    shutil.copytree(market, tmp_path / "data" / "raw")
    with pytest.raises(FeatureBuildError) as caught:
        _build(tmp_path / "data", select="+price_momentum")
    assert "price_momentum" in str(caught.value) and "contract" in str(caught.value).lower()
    assert not (tmp_path / "data" / "features" / "price_momentum.parquet").exists()


def test_a_failing_research_mart_warns_and_the_features_are_still_published(tmp_path, monkeypatch):
    project = _project_copy(tmp_path / "project")
    sql = project / "models" / "research" / "research_view_summary.sql"
    sql.write_text(sql.read_text().replace("select\n    features.view_name,", "select\n    error('broken on purpose') as boom,\n    features.view_name,", 1))
    monkeypatch.setenv("AURORA_DBT_PROJECT_DIR", str(project))
    write_market(MarketConfig(n_symbols=24, n_days=300, seed=4), tmp_path / "data" / "raw")
    result, lines = _build(tmp_path / "data")
    assert result.research_error and "research_view_summary" in result.research_error
    assert "broken on purpose" in result.research_error
    assert any("warning: feature research marts failed" in line for line in lines)
    assert set(result.views_built) == set(FEATURE_VIEWS) and result.labels_built
    assert all((tmp_path / "data" / "features" / f"{m}.parquet").exists() for m in MARTS)
