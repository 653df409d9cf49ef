"""Ingest's file reading: one CSV or parquet file reduced to the contract's columns, rows located."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.contract import Table
from ml.data.ingest_errors import Problem, _FileUnusable

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class _Source:
    """One input file, read as text (CSV) or as stored (parquet); the index is the 0-based data row."""

    table: Table
    path: Path
    is_csv: bool
    raw: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The file's name, plus the table it was given as when the name does not say so."""
        stem = self.path.name.split(".")[0]
        return self.path.name if stem == self.table.name else f"{self.path.name} ({self.table.name})"

    def where(self, row: int) -> str:
        """Locate a row by its index label (its position in the file, blank lines included)."""
        if self.is_csv:
            ordinal = int(self.raw.index.get_loc(row)) + 1  # not row + 1 when blank lines were skipped
            return f"{self.label}, line {row + 2} (row {ordinal} of data)"
        return f"{self.label}, row {row + 1} of data"

    @property
    def header(self) -> str:
        return f"{self.label}, line 1 (header)" if self.is_csv else f"{self.label} (schema)"


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    with path.open("rb") as fh:
        return fh.read(4) == b"PAR1"


def _read_csv(path: Path, label: str) -> pd.DataFrame:
    """Every cell as text, blank lines kept (so row positions match the file's lines)."""
    options = dict(encoding="utf-8-sig", dtype=str, na_filter=False, keep_default_na=False)
    try:
        header = pd.read_csv(path, nrows=0, **options)
        names = [str(c) for c in header.columns]
        if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
            sep = next(
                name for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")) if sep in names[0]
            )
            raise _FileUnusable(
                Problem(
                    f"{label}, line 1 (header)",
                    f"expected comma-separated values, but the header is one column {names[0]!r}; "
                    f"the file looks {sep}-separated (save it as CSV with ',' between fields)",
                )
            )
        return pd.read_csv(path, skip_blank_lines=False, **options)
    except pd.errors.EmptyDataError as err:
        raise _FileUnusable(
            Problem(label, "the file is empty; expected a header line and data rows")
        ) from err
    except UnicodeDecodeError as err:
        raise _FileUnusable(Problem(label, f"not a UTF-8 text CSV file ({err.reason})")) from err
    except (pd.errors.ParserError, ValueError) as err:
        msg = " ".join(str(err).split())
        raise _FileUnusable(Problem(label, f"could not be parsed as comma-separated values: {msg}")) from err


def _read_parquet(path: Path, label: str) -> pd.DataFrame:
    try:
        frame = pq.read_table(path).to_pandas(date_as_object=False)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _FileUnusable(Problem(label, f"could not be read as parquet: {err}")) from err
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(object)
    return frame.reset_index(drop=True)


def _read_source(table: Table, path: Path) -> _Source:
    """Read one file and reduce it to the contract's columns, or raise _FileUnusable."""
    src = _Source(table, path, is_csv=True, raw=pd.DataFrame())
    if not path.exists():
        raise _FileUnusable(Problem(f"{path} ({table.name})", "file not found"))
    if not path.is_file():
        raise _FileUnusable(Problem(f"{path} ({table.name})", "not a regular file"))
    if path.stat().st_size == 0:
        raise _FileUnusable(
            Problem(src.label, "the file is empty (0 bytes); expected a header line and data rows")
        )
    src.is_csv = not _is_parquet(path)
    frame = _read_csv(path, src.label) if src.is_csv else _read_parquet(path, src.label)

    original = [str(c) for c in frame.columns]
    normalized = [c.strip().lower() for c in original]
    seen: set[str] = set()
    for name in normalized:
        base = name.rsplit(".", 1)[0] if src.is_csv and name.rsplit(".", 1)[-1].isdigit() else name
        if base in seen and base in table.columns:
            raise _FileUnusable(Problem(src.header, f"column '{base}' appears more than once in the header"))
        seen.add(name)
    frame.columns = normalized

    if src.is_csv:
        blank = (frame.fillna("") == "").all(axis=1)
        if blank.any():
            frame = frame[~blank]
            src.notes.append(f"{src.label}: skipped {int(blank.sum())} blank line(s)")
    if frame.empty:
        what = "has a header but no data rows" if src.is_csv else "has no rows"
        raise _FileUnusable(Problem(src.label, f"the file {what}; expected at least one data row"))

    missing = [c for c in table.required_columns if c not in frame.columns]
    if missing:
        raise _FileUnusable(
            Problem(
                src.header,
                f"missing required column(s) {', '.join(repr(c) for c in missing)}; "
                f"expected {', '.join(table.required_columns)}"
                + (f" (optional: {', '.join(table.optional_columns)})" if table.optional_columns else "")
                + f"; found {', '.join(repr(c) for c in original)}",
            )
        )
    extra = [o for o, n in zip(original, normalized, strict=True) if n not in table.columns]
    if extra:
        src.notes.append(
            f"{src.label}: dropped unknown column(s) {', '.join(repr(c) for c in extra)} (not in the contract)"
        )
    keep = [c for c in table.columns if c in frame.columns]
    src.raw = frame[keep]
    return src
