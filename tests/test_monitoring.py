"""dbt monitoring marts (models/monitoring, tag `monitoring`) built by ml.monitoring over the ml tables."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import lifecycle as lc
from ml.market import MarketConfig, write_market
from ml.monitoring import MONITORING_SCHEMA, build_monitoring_marts, monitoring_marts
from ml.paths import DataPaths

MARTS = {"monitoring_model_ic_monthly", "monitoring_latest_signals_by_sector", "monitoring_backtest_summary",
         "monitoring_model_status"}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A small market with its labels mart built (the feature build must leave the monitoring marts out)."""
    from ml.warehouse import build_features

    root = tmp_path_factory.mktemp("monitoring")
    write_market(MarketConfig(n_symbols=40, n_days=420, seed=3), root / "raw")
    paths = DataPaths(root)
    result = build_features(paths, log=lambda m: None, select="+labels")
    assert result.labels_built
    assert not [n for n in result.nodes if n.name.startswith("monitoring_") or "monitoring_" in n.unique_id]
    return paths


def _write_ml_tables(paths: DataPaths) -> pd.DataFrame:
    """ml.predictions (two 5-day models and one trained on the 21-day label), a registry, ml.signals and
    ml.backtest_daily in their writers' layouts."""
    rng = np.random.default_rng(0)
    labels = pd.read_parquet(paths.features / "labels.parquet",
                             columns=["symbol", "date", "fwd_ret_sn_5d", "fwd_ret_sn_21d"])
    labels["date"] = pd.to_datetime(labels["date"])
    dates = np.sort(labels["date"].unique())
    oos = labels[labels["date"] >= dates[60]]
    y = oos["fwd_ret_sn_5d"].fillna(0).to_numpy()
    preds = pd.concat([
        oos[["date", "symbol"]].assign(model_id="good", score=y + 0.03 * rng.standard_normal(len(oos))),
        oos[["date", "symbol"]].assign(model_id="noise", score=rng.standard_normal(len(oos))),
        oos[["date", "symbol"]].assign(model_id="slow@21d", score=oos["fwd_ret_sn_21d"].fillna(0).to_numpy()
                                       + 0.03 * rng.standard_normal(len(oos))),
    ])
    signals = oos[["date", "symbol"]].assign(
        expected_return=0.01 * preds.loc[preds["model_id"] == "good", "score"].to_numpy(),
        uncertainty=0.002)
    signals["lower"] = signals["expected_return"] - 0.01
    signals["upper"] = signals["expected_return"] + 0.01
    signals["ensemble_version"] = "test-v1"
    bt = pd.DataFrame({"date": pd.to_datetime(dates[60:])})
    bt["gross_return"] = 0.0005 + 0.01 * rng.standard_normal(len(bt))
    bt["cost"] = 0.0002
    bt["net_return"] = bt["gross_return"] - bt["cost"]
    bt["gross_exposure"], bt["net_exposure"], bt["beta_exposure"] = 1.0, 0.0, 0.01
    bt["turnover"], bt["n_long"], bt["n_short"], bt["n_trades"] = 0.1, 20, 20, 8
    bt["nav"] = (1 + bt["net_return"]).cumprod()
    from ml.models.registry_store import connect

    con = connect(paths)
    try:
        now = pd.Timestamp("2024-01-01")
        for m, target in (("good", None), ("noise", None),
                          ("slow@21d", '{"label": "fwd_ret_sn_21d", "horizon": 21}')):
            con.execute(
                "insert into ml.model_registry (model_id, family, view, features, feature_versions, params, "
                "target, artifact_path, artifact_format, artifact_sha256, status, created_at, updated_at) "
                "values (?, 'ridge', 'toy', '[]', '{}', '{}', ?, ?, 'json', 'x', 'candidate', ?, ?)",
                [m, target, str(paths.root / "nowhere" / m / "model.json"), now, now])
        for name, frame in (("predictions", preds), ("signals", signals), ("backtest_daily", bt)):
            con.register("_f", frame.assign(date=pd.to_datetime(frame["date"]).dt.date))
            con.execute(f"create or replace table ml.{name} as select * from _f")
            con.unregister("_f")
    finally:
        con.close()
    return preds


def test_marts_declare_their_ml_sources(warehouse):
    marts = monitoring_marts(warehouse)
    assert set(marts) == MARTS
    assert ("ml", "predictions") in marts["monitoring_model_ic_monthly"]
    assert ("main", "labels") in marts["monitoring_model_ic_monthly"]
    assert ("ml", "model_ic_daily") in marts["monitoring_model_ic_monthly"]  # the lifecycle's daily ICs
    assert ("ml", "signals") in marts["monitoring_latest_signals_by_sector"]
    assert ("ml", "backtest_daily") in marts["monitoring_backtest_summary"]
    assert {("ml", "model_registry"), ("ml", "model_status_daily")} <= set(marts["monitoring_model_status"])


def test_skips_with_a_log_line_when_ml_tables_are_missing(warehouse, tmp_path):
    logs: list[str] = []
    result = build_monitoring_marts(warehouse, log=logs.append)
    assert result.built == [] and set(result.skipped) == MARTS
    assert any("skipped: no monitoring mart has its inputs" in line for line in logs)
    assert any("skipping monitoring_backtest_summary: missing ml.backtest_daily" in line for line in logs)
    empty = build_monitoring_marts(DataPaths(tmp_path / "none"), log=logs.append)
    assert empty.built == [] and "no warehouse" in logs[-1]


def test_builds_every_mart_and_they_agree_with_the_lifecycle(warehouse):
    preds = _write_ml_tables(warehouse)
    lc.run_monitor_stage(warehouse, {"activation": {"min_days": 60}}, log=lambda m: None)
    logs: list[str] = []
    result = build_monitoring_marts(warehouse, log=logs.append)
    assert set(result.built) == MARTS and not result.skipped
    assert result.tests_passed >= 30
    with duckdb.connect(str(warehouse.warehouse), read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = ?", [MONITORING_SCHEMA]).fetchall()}
        assert tables == MARTS
        ic = con.execute("""select max(abs(a.ic - b.ic_mean)) as gap, count(*) as n,
                                   (select count(*) from ml.model_metrics_monthly) as n_lifecycle
                            from ml.model_metrics_monthly as a
                            join monitoring.monitoring_model_ic_monthly as b using (model_id, month)""").df()
        sectors = con.execute("select * from monitoring.monitoring_latest_signals_by_sector").df()
        backtest = con.execute("select * from monitoring.monitoring_backtest_summary").df()
        status = con.execute("select * from monitoring.monitoring_model_status order by model_id").df()
        good = con.execute("select avg(ic_mean) as ic from monitoring.monitoring_model_ic_monthly "
                           "where model_id = 'good'").fetchone()[0]
        # the 21-day model is judged on the 21-day label it was trained on, by the mart as by the lifecycle
        slow = con.execute("select avg(ic_mean) as ic, count(*) as n from monitoring.monitoring_model_ic_monthly "
                           "where model_id = 'slow@21d'").fetchone()
    assert ic["gap"][0] < 1e-12 and ic["n"][0] == ic["n_lifecycle"][0] > 0
    assert good > 0.3
    assert slow[0] > 0.7 and slow[1] > 0  # about 0.86 on its own label
    latest = preds["date"].max()
    assert sectors["n_names"].sum() == (preds[(preds["model_id"] == "good")]["date"] == latest).sum()
    assert (pd.to_datetime(sectors["date"]) == pd.Timestamp(latest)).all()
    assert len(backtest) == pd.to_datetime(preds["date"]).dt.to_period("M").nunique()
    assert (backtest["max_drawdown"] <= 0).all()
    assert list(status["model_id"]) == ["good", "noise", "slow@21d"]
    assert status.set_index("model_id").loc["good", "lifecycle_status"] in ("active", "promoted")
    assert status.set_index("model_id").loc["good", "registry_status"] == "active"
    assert status["last_event_reason"].notna().all()


def test_marts_document_exactly_their_columns(warehouse):
    import json

    from ml.data.dbt_runner import _dbt_dirs

    if not {"monitoring_model_status"} <= _built(warehouse):
        _write_ml_tables(warehouse)
        lc.run_monitor_stage(warehouse, {"activation": {"min_days": 60}}, log=lambda m: None)
        build_monitoring_marts(warehouse, log=lambda m: None)
    target, _ = _dbt_dirs(warehouse)
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    marts = [n for n in nodes if n["resource_type"] == "model" and "monitoring" in n["tags"]]
    assert {n["name"] for n in marts} == MARTS
    with duckdb.connect(str(warehouse.warehouse), read_only=True) as con:
        for node in marts:
            assert node["schema"] == MONITORING_SCHEMA and node["config"]["materialized"] == "table"
            columns = [r[0] for r in con.execute(f'describe {MONITORING_SCHEMA}."{node["name"]}"').fetchall()]
            assert columns == list(node["columns"]), f"{node['name']}: columns differ from its YAML"
            assert node["description"] and all(c["description"] for c in node["columns"].values()), node["name"]


def _built(paths: DataPaths) -> set[str]:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return {r[0] for r in con.execute("select table_name from information_schema.tables where table_schema = ?",
                                          [MONITORING_SCHEMA]).fetchall()}
