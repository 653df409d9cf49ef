"""Ingest's writing: typed tables to contract-ordered arrow, swapped into the raw directory atomically."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.contract import DATE, FLOAT, INT, SIDE, STR, Table
from ml.data.ingest_errors import IngestError

ARROW_TYPES = {DATE: pa.date32(), STR: pa.string(), SIDE: pa.string(), FLOAT: pa.float64(), INT: pa.int64()}


def _sort_columns(table: Table, columns: list[str]) -> list[str]:
    """Key first (unique, so enough), else symbol/etf, then date-like columns, then the rest."""
    if table.key:
        return list(table.key)
    ident = [c for c in ("symbol", "etf") if c in columns]
    dates = [c for c in columns if table.columns[c] == DATE]
    return ident + dates + [c for c in columns if c not in ident and c not in dates]


def _to_arrow(table: Table, typed: pd.DataFrame) -> pa.Table:
    """Contract column order and types (date32, string, float64, int64), rows sorted by key."""
    columns = [c for c in table.columns if c in typed.columns]
    frame = typed[columns].sort_values(_sort_columns(table, columns), kind="mergesort", na_position="last")
    arrays = {}
    for col in columns:
        logical, values = table.columns[col], frame[col]
        if logical == DATE:
            arrays[col] = pa.array(values.to_numpy(dtype="datetime64[D]"), type=pa.date32(), from_pandas=True)
        elif logical == INT:
            arrays[col] = pa.array(values.astype("Int64"), type=pa.int64())
        elif logical == FLOAT:
            arrays[col] = pa.array(values.to_numpy(dtype="float64"), type=pa.float64(), from_pandas=True)
        else:
            arrays[col] = pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    return pa.table(arrays)


def _write_atomically(out_dir: Path, tables: dict[str, pa.Table], source: dict) -> None:
    """Write beside out_dir, then swap by renames; on failure out_dir (or its absence) is untouched."""
    parent = out_dir.parent
    created = [p for p in [parent, *parent.parents] if not p.exists()]
    tmp = parent / f".{out_dir.name}.ingest-{uuid.uuid4().hex[:12]}"
    backup = parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:12]}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        for name, arrow in tables.items():
            pq.write_table(arrow, tmp / f"{name}.parquet", compression="zstd", store_schema=False)
        (tmp / "_source.json").write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            out_dir.rename(backup)
        try:
            tmp.rename(out_dir)
        except OSError:
            if backup.exists():
                backup.rename(out_dir)
            raise
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # innermost first; only directories this call created, and only if empty
            try:
                p.rmdir()
            except OSError:
                break
        raise IngestError(f"could not write {out_dir}: {err}; nothing was changed") from err
    shutil.rmtree(backup, ignore_errors=True)
