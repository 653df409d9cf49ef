"""Where the registry lives: its DuckDB tables, the ModelRecord (row and YAML) and connections (transactions: `ml.tables`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from ml.jsonable import json_safe
from ml.paths import DataPaths

STATUSES = ("candidate", "active", "retired")
TRANSITIONS: dict[str, set[str]] = {"candidate": {"active", "retired"}, "active": {"retired"}, "retired": set()}
SCHEMA = "ml"
YAML_NAME = "model.yaml"

DDL = [
    f"create schema if not exists {SCHEMA}",
    f"""create table if not exists {SCHEMA}.model_registry (
        model_id varchar primary key,
        family varchar not null,
        view varchar not null,
        features varchar not null,
        feature_versions varchar not null,
        params varchar not null,
        target varchar,
        cv varchar,
        layout varchar,
        train_start date,
        train_end date,
        oos_start date,
        oos_end date,
        data_hash varchar,
        seed integer,
        artifact_path varchar not null,
        artifact_format varchar not null,
        artifact_sha256 varchar not null,
        metrics varchar,
        status varchar not null,
        note varchar,
        created_at timestamp not null,
        updated_at timestamp not null
    )""",
    f"""create table if not exists {SCHEMA}.model_events (
        event_at timestamp not null,
        model_id varchar not null,
        from_status varchar,
        to_status varchar not null,
        reason varchar
    )""",
    f"""create table if not exists {SCHEMA}.predictions (
        date date not null,
        symbol varchar not null,
        model_id varchar not null,
        score double
    )""",
]
JSON_FIELDS = ("features", "feature_versions", "params", "target", "cv", "layout", "metrics")


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (unknown model, duplicate id, invalid transition)."""


class ArtifactIntegrityError(RegistryError):
    """An artifact whose sha256 differs from the registry's record: never loaded."""


@dataclass
class ModelRecord:
    model_id: str
    family: str
    view: str
    features: list[str]
    feature_versions: dict[str, str]
    params: dict[str, Any]
    train_start: str | None
    train_end: str | None
    oos_start: str | None
    oos_end: str | None
    data_hash: str
    seed: int
    artifact_path: str
    artifact_format: str
    artifact_sha256: str
    metrics: dict[str, Any]
    status: str = "candidate"
    target: dict[str, Any] = field(default_factory=dict)
    cv: dict[str, Any] = field(default_factory=dict)
    layout: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _date_str(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    return str(pd.Timestamp(value).date())


def models_dir(paths: DataPaths) -> Path:
    return paths.artifacts / "models"


def connect(paths: DataPaths, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse with the registry tables present (created when writable)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    if read_only and not paths.warehouse.exists():
        raise RegistryError(f"no warehouse at {paths.warehouse}")
    con = duckdb.connect(str(paths.warehouse), read_only=read_only)
    if not read_only:
        for statement in DDL:
            con.execute(statement)
    return con


def _write_yaml(path: Path, record: ModelRecord) -> None:
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(record.to_dict(), sort_keys=False))
    os.replace(tmp, path)


def _row(record: ModelRecord) -> dict[str, Any]:
    data = record.to_dict()
    for key in JSON_FIELDS:
        data[key] = json.dumps(data[key], sort_keys=True)
    return data


def _record_from_row(row: Mapping[str, Any]) -> ModelRecord:
    data = dict(row)
    for key in JSON_FIELDS:
        data[key] = json.loads(data[key]) if data.get(key) else ({} if key != "features" else [])
    for key in ("train_start", "train_end", "oos_start", "oos_end"):
        data[key] = _date_str(data[key]) if data.get(key) is not None else None
    for key in ("created_at", "updated_at"):
        data[key] = pd.Timestamp(data[key]).isoformat() if data.get(key) is not None else ""
    data["note"] = data.get("note") or ""
    return ModelRecord(**data)
