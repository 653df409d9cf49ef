"""Model registry: artifacts with checked hashes, DuckDB rows and YAML, lifecycle, OOS predictions."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from test_training import small_config, synthetic_frames

from ml.models.provenance import data_snapshot_hash, feature_versions_for, view_files
from ml.models.registry_store import ArtifactIntegrityError, RegistryError
from ml.paths import DataPaths
from ml.registry import (
    get_record,
    list_models,
    load_model,
    model_events,
    promote,
    register_spec,
    register_zoo,
    retire,
    transition,
    write_predictions,
)
from ml.training import build_view_frames, prepare_view, train_spec

CHECKSUMS = {"price_momentum": "aaa", "alt_data": "bbb", "labels": "lll", "fundamental": "fff"}


@pytest.fixture(scope="module")
def trained():
    frames = synthetic_frames(n_symbols=30, n_days=260, seed=4)
    cfg = small_config(views=["all"], cv={"min_train_days": 100, "cadence": "Q"})
    view_frame = build_view_frames(frames, cfg)["all"]
    prep = prepare_view(view_frame, "all", cfg)
    results = {f: train_spec(prep, f, cfg) for f in
               ("ridge", "regime_ridge", "bayes_ridge", "lightgbm", "xgboost", "extra_trees", "mlp")}
    return view_frame, results


def raw_rows(view_frame: pd.DataFrame, features) -> pd.DataFrame:
    frame = view_frame.assign(date=pd.to_datetime(view_frame["date"]))
    frame = frame[frame["date"] >= frame["date"].unique()[-3]]
    return frame.set_index(["date", "symbol"])[list(features)]


def test_register_load_roundtrip_for_every_format(tmp_path, trained):
    view_frame, results = trained
    paths = DataPaths(tmp_path)
    for family, res in results.items():
        record = register_spec(paths, res, CHECKSUMS, data_hash="d" * 64)
        assert record.status == "candidate"
        assert record.feature_versions == {"alt_data": "bbb", "labels": "lll", "price_momentum": "aaa"}
        yaml_path = paths.artifacts / "models" / res.model_id / "model.yaml"
        on_disk = yaml.safe_load(yaml_path.read_text())
        assert on_disk["artifact_sha256"] == record.artifact_sha256
        assert on_disk["features"] == res.features and on_disk["family"] == family
        assert on_disk["train_end"] == str(res.train_end.date())
        assert on_disk["metrics"]["rank_ic"] == pytest.approx(res.metrics["rank_ic"])
        expected_format = {"lightgbm": "lightgbm-text", "xgboost": "xgboost-json", "extra_trees": "joblib",
                           "mlp": "joblib"}.get(family, "json")
        assert record.artifact_format == expected_format
        loaded = load_model(paths, res.model_id)
        rows = raw_rows(view_frame, res.features)
        np.testing.assert_allclose(loaded.predict(rows), res.final_model.predict(rows), rtol=1e-6, atol=1e-9)
    table = list_models(paths)
    assert len(table) == len(results)
    assert set(table["status"]) == {"candidate"}
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        n = con.execute("select count(*) from ml.model_registry").fetchone()[0]
    assert n == len(results)


def test_tampered_artifact_is_refused(tmp_path, trained):
    _, results = trained
    paths = DataPaths(tmp_path)
    for family in ("lightgbm", "extra_trees", "ridge"):
        record = register_spec(paths, results[family], CHECKSUMS, data_hash="x")
        with open(record.artifact_path, "ab") as fh:
            fh.write(b"\n")
        with pytest.raises(ArtifactIntegrityError):
            load_model(paths, record.model_id)


def test_duplicate_ids_and_overwrite(tmp_path, trained):
    _, results = trained
    paths = DataPaths(tmp_path)
    res = results["ridge"]
    register_spec(paths, res, CHECKSUMS, data_hash="x")
    promote(paths, res.model_id, "good")
    with pytest.raises(RegistryError):
        register_spec(paths, res, CHECKSUMS, data_hash="x")
    rerun = register_spec(paths, res, CHECKSUMS, data_hash="x", overwrite=True)
    assert rerun.status == "active" and get_record(paths, res.model_id).status == "active"  # same data
    again = register_spec(paths, res, CHECKSUMS, data_hash="y", overwrite=True)
    assert again.status == "candidate" and get_record(paths, res.model_id).data_hash == "y"  # new data
    assert len(list_models(paths)) == 1
    assert not [p for p in (paths.artifacts / "models").iterdir() if p.name.startswith(".")]


def test_lifecycle_transitions_are_guarded_and_logged(tmp_path, trained):
    _, results = trained
    paths = DataPaths(tmp_path)
    a = register_spec(paths, results["ridge"], CHECKSUMS, data_hash="x").model_id
    b = register_spec(paths, results["lightgbm"], CHECKSUMS, data_hash="x").model_id
    with pytest.raises(RegistryError):
        transition(paths, a, "candidate")
    assert promote(paths, a, "beats baseline").status == "active"
    with pytest.raises(RegistryError):
        promote(paths, a)
    assert retire(paths, a, "decayed").status == "retired"
    for to in ("active", "candidate", "retired"):
        with pytest.raises(RegistryError):
            transition(paths, a, to)
    assert retire(paths, b, "never promoted").status == "retired"
    with pytest.raises(RegistryError):
        transition(paths, a, "bogus")
    with pytest.raises(RegistryError):
        promote(paths, "missing-model")
    events = model_events(paths, a)
    assert events["to_status"].tolist() == ["candidate", "active", "retired"]
    assert events["reason"].tolist()[1:] == ["beats baseline", "decayed"]
    on_disk = yaml.safe_load((paths.artifacts / "models" / a / "model.yaml").read_text())
    assert on_disk["status"] == "retired"
    assert set(list_models(paths, "retired")["model_id"]) == {a, b}


def test_predictions_table_only_takes_out_of_sample_rows(tmp_path, trained):
    _, results = trained
    paths = DataPaths(tmp_path)
    res = results["ridge"]
    register_spec(paths, res, CHECKSUMS, data_hash="x")
    n = write_predictions(paths, res.predictions)
    assert n == len(res.predictions)
    write_predictions(paths, res.predictions)  # replaces, does not duplicate
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        got = con.execute("select count(*), min(date) from ml.predictions").fetchone()
    assert got[0] == len(res.predictions)
    assert pd.Timestamp(got[1]) == res.predictions["date"].min()
    early = res.predictions.head(3).assign(date=pd.Timestamp("2000-01-03"))
    with pytest.raises(RegistryError):
        write_predictions(paths, pd.concat([early, res.predictions]))
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from ml.predictions").fetchone()[0] == len(res.predictions)


def test_data_snapshot_hash_is_a_pure_function_of_contents(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "features").mkdir(parents=True)
        pd.DataFrame({"symbol": ["X"], "date": [pd.Timestamp("2020-01-01").date()], "v": [1.0]}).to_parquet(
            d / "features" / "price_momentum.parquet")
        (d / "features" / "labels.parquet").write_bytes((a / "features" / "price_momentum.parquet").read_bytes())
    ha = data_snapshot_hash(view_files(DataPaths(a), "price_momentum"))
    hb = data_snapshot_hash(view_files(DataPaths(b), "price_momentum"))
    assert ha == hb and len(ha) == 64
    with open(b / "features" / "labels.parquet", "ab") as fh:
        fh.write(b"0")
    assert data_snapshot_hash(view_files(DataPaths(b), "price_momentum")) != ha
    assert [p.name for p in view_files(DataPaths(a), "all")] == ["price_momentum.parquet", "labels.parquet"]


def test_feature_versions_pick_the_marts_a_model_reads():
    assert feature_versions_for("price_momentum", ["price_momentum__x"], CHECKSUMS) == {
        "price_momentum": "aaa", "labels": "lll"}
    assert feature_versions_for("all", ["price_momentum__x", "fundamental__y"], CHECKSUMS) == {
        "fundamental": "fff", "labels": "lll", "price_momentum": "aaa"}


def test_register_zoo_records_every_spec_and_its_predictions(tmp_path, monkeypatch):
    from ml import warehouse
    from ml.pipeline import register_zoo_result
    from ml.training import train_zoo

    frames = synthetic_frames(n_symbols=20, n_days=220, seed=5)
    paths = DataPaths(tmp_path)
    paths.features.mkdir(parents=True)
    for name, frame in frames.items():
        frame.to_parquet(paths.features / f"{name}.parquet")
    cfg = small_config(views=["price_momentum", "all"], cv={"min_train_days": 100, "cadence": "Q"})
    zoo = train_zoo(frames, cfg, log=None, families=["ridge", "lasso"])
    records = register_zoo(paths, zoo, CHECKSUMS)
    assert len(records) == 4
    hashes = {r.view: r.data_hash for r in records}
    assert hashes["all"] == data_snapshot_hash(view_files(paths, "all"))
    assert hashes["price_momentum"] != hashes["all"]
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        n = con.execute("select count(*), count(distinct model_id) from ml.predictions").fetchone()
    assert n == (len(zoo.predictions), 4)
    # the stage's report keys: the best model by whole-history rank IC is picked with hindsight, so it
    # is a labelled diagnostic; the headline best single model is the ensemble stage's walk-forward pick
    monkeypatch.setattr(warehouse, "mart_checksums", lambda _paths, lineage=False: CHECKSUMS)
    values = register_zoo_result(paths, zoo, None, cfg, log=lambda _m: None)
    best = zoo.metrics.loc[zoo.metrics["rank_ic"].idxmax()]
    assert values["best_single_model_rank_ic_hindsight"] == pytest.approx(float(best["rank_ic"]))
    assert values["best_single_model_hindsight"] == best["model_id"]
    assert not {"best_single_model_rank_ic", "best_single_model", "best_single_model_share_of_oracle"} & set(values)
