"""Where things live under the data directory (`AURORA_DATA_DIR`, default `data/`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @classmethod
    def from_env(cls, override: str | os.PathLike | None = None) -> DataPaths:
        root = override or os.environ.get("AURORA_DATA_DIR") or "data"
        return cls(Path(root).resolve())

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def oracle(self) -> Path:
        return self.root / "oracle"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def feast(self) -> Path:
        return self.root / "feast"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def raw_table(self, name: str) -> Path:
        return self.raw / f"{name}.parquet"


def raw_source(paths: DataPaths) -> str | None:
    """Who wrote `raw/`: `synthetic` (the generator) or `ingested` (`aurora ingest`), from the
    `_source.json` marker both write; None when there is no marker."""
    marker = paths.raw / "_source.json"
    return json.loads(marker.read_text()).get("source") if marker.exists() else None
