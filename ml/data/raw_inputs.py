"""What raw/ holds (contract tables, optional price columns with data): it decides what dbt builds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from ml.contract import OPTIONAL_TABLES, TABLES
from ml.data.views import disabled_views, feature_views
from ml.paths import DataPaths

OPTIONAL_PRICE_COLUMNS: tuple[str, ...] = TABLES["prices"].optional_columns


@dataclass(frozen=True)
class RawInputs:
    """What the raw directory holds: contract tables present and optional price columns with data."""

    tables: frozenset[str]
    price_columns: frozenset[str]

    @property
    def missing(self) -> list[str]:
        """Missing optional inputs, as `needs:` tag suffixes (`fundamentals`, `prices.vwap`, ...)."""
        tables = [t for t in OPTIONAL_TABLES if t not in self.tables]
        columns = [f"prices.{c}" for c in OPTIONAL_PRICE_COLUMNS if c not in self.price_columns]
        return tables + columns

    @property
    def skipped_views(self) -> dict[str, list[str]]:
        return disabled_views(set(self.tables), set(self.price_columns))

    def dbt_vars(self) -> dict[str, list[str]]:
        skipped = self.skipped_views
        return {"raw_tables": sorted(self.tables), "price_columns": sorted(self.price_columns),
                "feature_views": [v for v in feature_views() if v not in skipped]}

    def excludes(self) -> list[str]:
        return [f"tag:needs:{m}" for m in self.missing] + sorted(self.skipped_views)


def inspect_raw(paths: DataPaths) -> RawInputs:
    """The contract tables present under raw/ and the optional price columns that hold any data."""
    tables = frozenset(name for name in TABLES if paths.raw_table(name).exists())
    columns: set[str] = set()
    prices = paths.raw_table("prices")
    if prices.exists():
        meta = pq.ParquetFile(prices).metadata
        names = set(meta.schema.names)
        for column in OPTIONAL_PRICE_COLUMNS:
            if column in names and _has_values(prices, meta, column):
                columns.add(column)
    return RawInputs(tables, frozenset(columns))


def _has_values(path: Path, meta, column: str) -> bool:
    """True when the parquet column has at least one non-null value (statistics first, data if needed)."""
    if meta.num_rows == 0:
        return False
    index = meta.schema.names.index(column)
    nulls = 0
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(index).statistics
        if stats is None or not stats.has_null_count:
            return pq.read_table(path, columns=[column]).column(0).null_count < meta.num_rows
        nulls += stats.null_count
    return nulls < meta.num_rows
