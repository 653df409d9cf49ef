"""Feast definitions for Aurora, discovered from the feature marts' parquet schemas.

Analysts add a feature by editing SQL only, so nothing here names a feature: for each feature view V
of the dbt project (`ml.data.views.feature_views`: every model in models/features/ but labels) whose mart `$AURORA_DATA_DIR/features/V.parquet` exists, the schema of
that file gives the features (every column except `symbol` and `date`, with its type). Views whose
mart is absent (skipped by dbt for lack of inputs) are simply not defined.

Objects:
- entity `symbol` (join key `symbol`, string);
- per mart a `FileSource` `<V>_source` (absolute path, event timestamp `date`);
- per mart a `FeatureView` `V` with the view's ttl (`feast_ttl_days`), plus the view `labels` (forward returns);
- feature services `all_views` (every feature view, not labels) and `<V>_service` (each view alone).

Event timestamps: the marts carry `date` as DATE (date32). Feast's DuckDB offline store casts it to
TIMESTAMP WITH TIME ZONE in a session whose time zone is UTC, i.e. midnight UTC of that date, and the
API (`ml.feature_store`) sends entity rows at midnight UTC of their date too, so the point-in-time
rule "feature date <= entity date" holds to the day. Nothing here needs a TIMESTAMP column.

`build_definitions(paths)` returns the objects (used by `ml.feature_store.apply`). `feature_repo/repo.py`
exposes them at module level for the `feast` command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Bool, Float32, Float64, Int32, Int64, String

from ml.data.views import view_specs
from ml.paths import DataPaths

PROJECT = "aurora"
ENTITY = "symbol"
TIMESTAMP = "date"
LABELS = "labels"
ALL_VIEWS_SERVICE = "all_views"

# How long a feature row stays valid for later entity dates when no newer row exists: each view's
# `feast_ttl_days` (its YAML's meta, ml/data/views.py; default 5 days, enough to bridge weekends and
# holidays; the slower views get more slack). Labels are matched to their own date only: a label row
# of an earlier day must never stand in for a missing one.
LABELS_TTL = timedelta(hours=12)

_FEAST_TYPES = [
    (pa.types.is_float64, Float64),
    (pa.types.is_float32, Float32),
    (pa.types.is_float16, Float32),
    (pa.types.is_int64, Int64),
    (pa.types.is_integer, Int32),
    (pa.types.is_boolean, Bool),
]


def service_name(view: str) -> str:
    return f"{view}_service"


def source_name(view: str) -> str:
    return f"{view}_source"


@dataclass
class Definitions:
    """The Feast objects of one data directory."""

    entity: Entity
    sources: dict[str, FileSource] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)  # feature views, without labels
    labels: FeatureView | None = None
    services: dict[str, FeatureService] = field(default_factory=dict)

    def objects(self) -> list:
        """Everything to `FeatureStore.apply`, in dependency order."""
        extra = [self.labels] if self.labels is not None else []
        return [self.entity, *self.sources.values(), *self.views.values(), *extra, *self.services.values()]

    def feature_names(self, view: str) -> list[str]:
        fv = self.labels if view == LABELS else self.views[view]
        return [f.name for f in fv.features]  # mart order (`FeatureView.schema` is an unordered set)


class SchemaError(ValueError):
    """A mart's parquet schema breaks the contract (symbol, date, then numeric features)."""


def mart_fields(path: Path) -> list[Field]:
    """Feature fields of a mart, from its parquet schema (no data read)."""
    schema = pq.read_schema(path)
    names = schema.names
    missing = [c for c in (ENTITY, TIMESTAMP) if c not in names]
    if missing:
        raise SchemaError(f"{path}: missing column(s) {missing}; a mart has symbol, date, then features")
    if not (
        pa.types.is_string(schema.field(ENTITY).type) or pa.types.is_large_string(schema.field(ENTITY).type)
    ):
        raise SchemaError(f"{path}: column symbol is {schema.field(ENTITY).type}, expected string")
    ts_type = schema.field(TIMESTAMP).type
    if not (pa.types.is_date(ts_type) or pa.types.is_timestamp(ts_type)):
        raise SchemaError(f"{path}: column date is {ts_type}, expected date32 (or a timestamp)")
    fields = []
    for f in schema:
        if f.name in (ENTITY, TIMESTAMP):
            continue
        dtype = next((feast_type for test, feast_type in _FEAST_TYPES if test(f.type)), None)
        if dtype is None:
            raise SchemaError(
                f"{path}: feature column {f.name!r} has type {f.type}; features must be numeric"
            )
        fields.append(Field(name=f.name, dtype=dtype))
    if not fields:
        raise SchemaError(f"{path}: no feature columns besides symbol and date")
    return fields


def _view(
    name: str, path: Path, entity: Entity, ttl: timedelta, description: str
) -> tuple[FileSource, FeatureView]:
    source = FileSource(
        name=source_name(name),
        path=str(path.resolve()),
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP,
        description=f"dbt mart {path.name}",
    )
    view = FeatureView(
        name=name,
        entities=[entity],
        ttl=ttl,
        schema=[Field(name=ENTITY, dtype=String), *mart_fields(path)],
        source=source,
        online=True,
        description=description,
        tags={"mart": path.name},
    )
    return source, view


def build_definitions(paths: DataPaths) -> Definitions:
    """Entity, sources, views and services for the marts present in `paths.features`."""
    entity = Entity(name=ENTITY, join_keys=[ENTITY], value_type=ValueType.STRING, description="equity ticker")
    defs = Definitions(entity=entity)
    for view, spec in view_specs().items():
        path = paths.features / f"{view}.parquet"
        if not path.exists():
            continue
        source, fv = _view(view, path, entity, timedelta(days=spec.ttl_days), f"feature view {view}")
        defs.sources[view] = source
        defs.views[view] = fv
    labels_path = paths.features / f"{LABELS}.parquet"
    if labels_path.exists():
        source, fv = _view(LABELS, labels_path, entity, LABELS_TTL, "forward returns (training labels)")
        defs.sources[LABELS] = source
        defs.labels = fv
    if defs.views:
        defs.services[ALL_VIEWS_SERVICE] = FeatureService(
            name=ALL_VIEWS_SERVICE, features=list(defs.views.values()), description="all feature views"
        )
        for view, fv in defs.views.items():
            defs.services[service_name(view)] = FeatureService(
                name=service_name(view), features=[fv], description=f"feature view {view} alone"
            )
    return defs
