"""Model registry: artifacts on disk, one row per model in DuckDB, lifecycle with guarded transitions.

Every registered model records its id, family, feature view, feature list, the version of its
feature definitions (the dbt manifest checksum of each mart it reads, passed in as {view: checksum}),
hyper-parameters, training window, out-of-sample window, data snapshot hash, seed, artifact path,
format and sha256, and its out-of-sample metrics. The record lives in the DuckDB table
`ml.model_registry` (`$AURORA_DATA_DIR/warehouse.duckdb`, schema and tables created when missing;
every write is one transaction) and as YAML beside the artifact:
`$AURORA_DATA_DIR/artifacts/models/<model_id>/model.yaml`.

Artifacts use native formats where the library has one: LightGBM `save_model` text (`model.txt`),
XGBoost JSON (`model.json`), linear families as JSON coefficients (`model.json`); extra trees and the
MLP are pickled with joblib (`model.joblib`) - pickle runs code when loaded, which is why `load_model`
checks the sha256 recorded in the registry before touching any artifact and refuses a mismatch.

Lifecycle: candidate -> active -> retired (candidate -> retired also allowed; nothing leaves
retired). Transitions are logged in `ml.model_events` with a reason. `write_predictions` writes
`ml.predictions` (date, symbol, model_id, score), refusing rows dated before a registered model's

The pieces live in ml/models/: registry_store (tables, ModelRecord, connections), provenance (file and
data hashes, feature versions), artifacts (native formats, the sha256 check); this module registers,
reads, moves and predicts with them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ml.jsonable import json_safe
from ml.models.artifacts import _load_estimator, save_artifact, verify_artifact
from ml.models.provenance import data_snapshot_hash, feature_versions_for, view_files
from ml.models.registry_store import (
    SCHEMA,
    STATUSES,
    TRANSITIONS,
    YAML_NAME,
    ModelRecord,
    RegistryError,
    _date_str,
    _now,
    _record_from_row,
    _row,
    _write_yaml,
    connect,
    models_dir,
)
from ml.paths import DataPaths
from ml.tables import transaction
from ml.zoo import CrossSectionalModel


# ================================================================================ register / read
def register_model(
    paths: DataPaths,
    model: CrossSectionalModel,
    *,
    model_id: str,
    family: str,
    view: str,
    params: Mapping[str, Any],
    train_start,
    train_end,
    feature_versions: Mapping[str, str],
    data_hash: str,
    seed: int,
    metrics: Mapping[str, Any] | None = None,
    oos_start=None,
    oos_end=None,
    target: Mapping[str, Any] | None = None,
    cv: Mapping[str, Any] | None = None,
    status: str = "candidate",
    overwrite: bool = False,
) -> ModelRecord:
    """Save the artifact and its YAML, then insert the registry row (one transaction).

    The artifact directory is written under a temporary name and moved into place inside the
    transaction, so a failure leaves neither a row nor a directory. An existing id raises unless
    `overwrite` (the old artifact and row are replaced; the status is reset to `status` when the
    data changed, and kept when the same data was retrained, e.g. a re-run after a crash).
    """
    if status not in STATUSES:
        raise RegistryError(f"unknown status {status!r}; one of {STATUSES}")
    root = models_dir(paths)
    root.mkdir(parents=True, exist_ok=True)
    final = root / model_id
    tmp = root / f".{model_id}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    path, fmt, sha, note = save_artifact(model, tmp)
    now = _now().isoformat()
    record = ModelRecord(
        model_id=model_id, family=family, view=view, features=list(model.features_),
        feature_versions=dict(feature_versions), params=json_safe(dict(params)),
        train_start=_date_str(train_start), train_end=_date_str(train_end),
        oos_start=_date_str(oos_start), oos_end=_date_str(oos_end), data_hash=data_hash, seed=int(seed),
        artifact_path=str(final / path.name), artifact_format=fmt, artifact_sha256=sha,
        metrics=json_safe(dict(metrics or {})), status=status, target=json_safe(dict(target or {})),
        cv=json_safe(dict(cv or {})), layout=json_safe(model.layout()), note=note, created_at=now, updated_at=now,
    )
    _write_yaml(tmp / YAML_NAME, record)
    con = connect(paths)
    backup = None
    try:
        with transaction(con):
            previous = con.execute(
                f"select status, artifact_sha256, data_hash from {SCHEMA}.model_registry where model_id = ?",
                [model_id],
            ).fetchone()
            exists = previous is not None
            if exists and not overwrite:
                raise RegistryError(f"model {model_id} is already registered (overwrite=True to replace)")
            if exists and previous[2] == data_hash:
                # same id, same data: a re-run of training. Its lifecycle status belongs to the monitor.
                record = dataclasses.replace(record, status=previous[0])
                if previous[1] == sha:
                    shutil.rmtree(tmp, ignore_errors=True)  # the very same model: nothing to change
                    return record
            if exists:
                con.execute(f"delete from {SCHEMA}.model_registry where model_id = ?", [model_id])
            row = _row(record)
            cols = list(row)
            con.execute(
                f"insert into {SCHEMA}.model_registry ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                [row[c] for c in cols],
            )
            con.execute(f"insert into {SCHEMA}.model_events values (?, ?, ?, ?, ?)",
                        [_now(), model_id, None, record.status,
                         "registered" + (" (overwrite)" if exists else "")])
            if final.exists():
                backup = root / f".{model_id}.old-{os.getpid()}"
                os.replace(final, backup)
            os.replace(tmp, final)
    except BaseException:
        if final.exists() and not tmp.exists() and backup is not None:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(backup, final)
            backup = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.close()
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    return record


def register_spec(
    paths: DataPaths,
    result,
    feature_versions: Mapping[str, str],
    data_hash: str | None = None,
    status: str = "candidate",
    overwrite: bool = False,
) -> ModelRecord:
    """Register a `training.SpecResult`'s final model. `feature_versions`: the dbt checksum of every
    mart ({view: checksum}, e.g. `ml.warehouse.mart_checksums(paths)`); the ones it reads are kept.
    `data_hash` defaults to `data_snapshot_hash` of its mart files."""
    if result.final_model is None:
        raise RegistryError(f"{result.model_id} has no final model to register")
    if data_hash is None:
        data_hash = data_snapshot_hash(view_files(paths, result.view))
    preds = result.predictions
    return register_model(
        paths, result.final_model, model_id=result.model_id, family=result.family, view=result.view,
        params=result.params, train_start=result.train_start, train_end=result.train_end,
        feature_versions=feature_versions_for(result.view, result.features, feature_versions),
        data_hash=data_hash, seed=result.seed, metrics=result.metrics,
        oos_start=preds["date"].min() if len(preds) else None, oos_end=preds["date"].max() if len(preds) else None,
        target=result.target, cv=result.cv, status=status, overwrite=overwrite,
    )


def get_record(paths: DataPaths, model_id: str) -> ModelRecord:
    con = connect(paths, read_only=True)
    try:
        frame = con.execute(f"select * from {SCHEMA}.model_registry where model_id = ?", [model_id]).df()
    except duckdb.CatalogException as exc:
        raise RegistryError(f"no registry in {paths.warehouse}") from exc
    finally:
        con.close()
    if frame.empty:
        raise RegistryError(f"unknown model {model_id!r}")
    return _record_from_row(frame.iloc[0].to_dict())


def list_models(paths: DataPaths, status: str | None = None) -> pd.DataFrame:
    """Registry rows (JSON columns as text), optionally only one status; empty when no registry yet."""
    if not paths.warehouse.exists():
        return pd.DataFrame()
    con = connect(paths, read_only=True)
    try:
        sql = f"select * from {SCHEMA}.model_registry"
        return con.execute(sql + (" where status = ?" if status else "") + " order by created_at, model_id",
                           [status] if status else []).df()
    except duckdb.CatalogException:
        return pd.DataFrame()
    finally:
        con.close()


def load_model(paths: DataPaths, model_id: str) -> CrossSectionalModel:
    """The serving model (raw features in, scores out), after the sha256 check."""
    record = get_record(paths, model_id)
    path = verify_artifact(record)
    est = _load_estimator(path, record.artifact_format, record.family, record.params, record.features)
    layout = record.layout
    return CrossSectionalModel.from_fitted(
        est, layout.get("features", record.features), preprocess=layout.get("preprocess", "rank_gauss"),
        clip=float(layout.get("clip", 3.0)), state_pattern=layout.get("state_pattern") or "",
        state_columns=layout.get("state_columns", []), state_stat=layout.get("state_stat", ""),
    )


# ================================================================================ lifecycle
def transition(paths: DataPaths, model_id: str, to_status: str, reason: str = "") -> ModelRecord:
    """Move a model along candidate -> active -> retired (or candidate -> retired); other moves raise."""
    if to_status not in STATUSES:
        raise RegistryError(f"unknown status {to_status!r}; one of {STATUSES}")
    con = connect(paths)
    try:
        with transaction(con):
            row = con.execute(f"select status, artifact_path from {SCHEMA}.model_registry where model_id = ?",
                              [model_id]).fetchone()
            if row is None:
                raise RegistryError(f"unknown model {model_id!r}")
            current = row[0]
            if to_status not in TRANSITIONS[current]:
                raise RegistryError(f"{model_id}: cannot go from {current} to {to_status} "
                                    f"(allowed: {sorted(TRANSITIONS[current]) or 'none'})")
            now = _now()
            con.execute(f"update {SCHEMA}.model_registry set status = ?, updated_at = ? where model_id = ?",
                        [to_status, now, model_id])
            con.execute(f"insert into {SCHEMA}.model_events values (?, ?, ?, ?, ?)",
                        [now, model_id, current, to_status, reason])
    finally:
        con.close()
    record = get_record(paths, model_id)
    yaml_path = Path(record.artifact_path).parent / YAML_NAME
    if yaml_path.parent.exists():
        _write_yaml(yaml_path, record)
    return record


def promote(paths: DataPaths, model_id: str, reason: str = "") -> ModelRecord:
    return transition(paths, model_id, "active", reason)


def retire(paths: DataPaths, model_id: str, reason: str = "") -> ModelRecord:
    return transition(paths, model_id, "retired", reason)


def model_events(paths: DataPaths, model_id: str | None = None) -> pd.DataFrame:
    con = connect(paths, read_only=True)
    try:
        sql = f"select * from {SCHEMA}.model_events"
        return con.execute(sql + (" where model_id = ?" if model_id else "") + " order by event_at",
                           [model_id] if model_id else []).df()
    finally:
        con.close()


# ================================================================================ predictions
def write_predictions(paths: DataPaths, predictions: pd.DataFrame) -> int:
    """Replace the `ml.predictions` rows of the given models by these (date, symbol, model_id, score),
    in one transaction. Only out-of-sample rows belong here: rows dated before a registered model's
    `oos_start` raise. Returns the number of rows written."""
    need = ["date", "symbol", "model_id", "score"]
    missing = [c for c in need if c not in predictions.columns]
    if missing:
        raise RegistryError(f"predictions lack columns {missing}")
    frame = predictions[need].copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame["symbol"] = frame["symbol"].astype(str)
    frame["model_id"] = frame["model_id"].astype(str)
    frame["score"] = frame["score"].astype("float64")
    ids = sorted(frame["model_id"].unique())
    con = connect(paths)
    try:
        if ids:
            starts = con.execute(
                f"select model_id, oos_start from {SCHEMA}.model_registry where model_id in "
                f"({', '.join('?' * len(ids))})", ids,
            ).fetchall()
            first = frame.groupby("model_id")["date"].min()
            for mid, oos_start in starts:
                if oos_start is not None and first[mid] < oos_start:
                    raise RegistryError(f"{mid}: predictions dated {first[mid]} precede its out-of-sample "
                                        f"start {oos_start}; only OOS predictions go to ml.predictions")
        with transaction(con):
            if ids:
                con.execute(f"delete from {SCHEMA}.predictions where model_id in ({', '.join('?' * len(ids))})", ids)
            con.register("_incoming_predictions", frame)
            con.execute(f"insert into {SCHEMA}.predictions select date, symbol, model_id, score "
                        "from _incoming_predictions")
            con.unregister("_incoming_predictions")
    finally:
        con.close()
    return len(frame)


def register_zoo(
    paths: DataPaths,
    result,
    feature_versions: Mapping[str, str],
    status: str = "candidate",
    overwrite: bool = False,
    predictions: bool = True,
) -> list[ModelRecord]:
    """Register every spec of a `training.ZooResult` (data hashes computed once per view from the
    mart files under `paths`) and, unless `predictions=False`, write their OOS predictions."""
    hashes: dict[str, str] = {}
    records = []
    for spec in result.specs:
        if spec.final_model is None:
            continue
        if spec.view not in hashes:
            hashes[spec.view] = data_snapshot_hash(view_files(paths, spec.view))
        records.append(register_spec(paths, spec, feature_versions, hashes[spec.view], status, overwrite))
    if predictions and len(result.predictions):
        registered = {r.model_id for r in records}
        write_predictions(paths, result.predictions[result.predictions["model_id"].isin(registered)])
    return records
