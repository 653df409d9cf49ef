"""`aurora ingest`: user CSV or Parquet files -> validated parquet in the raw contract (DESIGN.md).

Why it is built this way:
- every rule is a boolean mask over a whole column (no per-row Python), and the first offending row
  of each rule is reported with file, line and column so the user can go straight to it in an editor;
- all files are read and checked in memory before anything is written, and the new raw directory is
  written beside the old one and swapped in with renames, so a failure never leaves a half-written
  `raw/` behind: on any error the output directory is exactly as it was.

Row numbers: for a CSV the message gives the physical line (the header is line 1, so the first data
row is line 2) and the data row (1-based); for parquet, the 1-based data row. Line numbers assume one
record per line (a quoted field spanning lines shifts them).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.contract import (
    DATE,
    FLOAT,
    INT,
    MARKET_ETF,
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    SIDE,
    STR,
    TABLES,
    Table,
)
from ml.data.views import disabled_views, feature_views

# Text that means "no value" in a numeric or date cell (compared case-insensitively, after strip).
# String columns treat only a blank cell as missing, so a ticker such as "NA" survives.
NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "nat", "<na>", "#n/a"})
# How many problems an IngestError lists (the total is always given).
MAX_SHOWN = 5
# open/close may exceed [low, high] by this relative amount (float rounding in vendor data), no more.
RANGE_REL_TOL = 1e-9
PARQUET_SUFFIXES = (".parquet", ".pq")
SIDES = ("B", "S")
# A datetime whose time part is zero is accepted where a date is expected.
_ZERO_TIME = r"\d{4}-\d{1,2}-\d{1,2}[ T]00:00(?::00(?:\.0+)?)?(?:Z|[+-]00:?00)?"
_DATE_EXPECTED = "expected an ISO date YYYY-MM-DD (a time part, if any, must be 00:00:00)"
ARROW_TYPES = {DATE: pa.date32(), STR: pa.string(), SIDE: pa.string(), FLOAT: pa.float64(), INT: pa.int64()}


# --------------------------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (file and row), which column(s), and what was expected."""

    where: str
    message: str
    columns: tuple[str, ...] = ()

    def __str__(self) -> str:
        if not self.columns:
            return f"{self.where}: {self.message}"
        names = ", ".join(f"'{c}'" for c in self.columns)
        label = "column" if len(self.columns) == 1 else "columns"
        return f"{self.where}, {label} {names}: {self.message}"


class IngestError(Exception):
    """Input that does not meet the raw contract; str() names file, row, column and what was expected."""

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(where="aurora ingest", message=problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        shown = self.problems[:MAX_SHOWN]
        head = f"{len(self.problems)} problems in the input files"
        head += f" (the first {len(shown)}):" if len(self.problems) > len(shown) else ":"
        return "\n".join([head, *(f"  - {p}" for p in shown)])


class _FileUnusable(Exception):
    """A file that cannot be checked row by row (missing, empty, wrong delimiter, missing columns)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


# -------------------------------------------------------------------------------------------- summary
@dataclass
class IngestSummary:
    """What was ingested, and what the data can and cannot feed; render() is the one-screen report."""

    out_dir: Path
    files: dict[str, str]
    rows: dict[str, int]
    symbols: list[str]
    start: str
    end: str
    n_dates: int
    missing_tables: list[str]
    missing_price_columns: list[str]
    disabled: dict[str, list[str]]
    etfs: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    removed_oracle: bool = False

    def render(self) -> str:
        shown = ", ".join(self.symbols[:12]) + (", ..." if len(self.symbols) > 12 else "")
        lines = [
            f"aurora ingest: wrote {len(self.files)} tables to {self.out_dir} (source: ingested)",
            f"  symbols:  {len(self.symbols)} ({shown})",
            f"  dates:    {self.start} .. {self.end} ({self.n_dates} distinct dates in prices)",
            "  tables found:",
            *(f"    {t:<15} {self.rows[t]:>10,} rows  from {self.files[t]}" for t in self.files),
            "  optional tables missing: " + (", ".join(self.missing_tables) or "none"),
            "  optional price columns missing: " + (", ".join(self.missing_price_columns) or "none"),
        ]
        if self.disabled:
            lines.append("  feature views disabled (inputs missing; skipped, never faked):")
            lines += [f"    {v:<15} needs {', '.join(m)}" for v, m in self.disabled.items()]
        else:
            lines.append("  feature views disabled: none")
        enabled = [v for v in feature_views() if v not in self.disabled]
        lines.append("  feature views enabled: " + (", ".join(enabled) or "none"))
        lines += [f"  {k}: {', '.join(v) or 'none'}" for k, v in self.etfs.items()]
        if self.removed_oracle:
            lines.append(
                f"  removed {self.out_dir.parent / 'oracle'}: it described the synthetic market, not this data"
            )
        if self.notes:
            lines.append("  notes:")
            lines += [f"    - {n}" for n in self.notes]
        return "\n".join(lines)


# -------------------------------------------------------------------------------------------- reading
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


# -------------------------------------------------------------------------------------------- parsing
@dataclass
class _Parsed:
    """One column parsed to its logical type: values, which cells are blank, which are malformed."""

    values: pd.Series
    missing: pd.Series
    invalid: pd.Series
    expected: str


def _text(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Stripped text of a column and its null-token mask (for numeric and date columns)."""
    text = raw.astype(str).str.strip()
    return text, raw.isna() | text.str.lower().isin(NULL_TOKENS)


def _parse_number(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype(float), raw.isna(), pd.Series(True, index=raw.index)
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.astype("float64")
        return values, values.isna(), pd.Series(False, index=raw.index)
    text, missing = _text(raw)
    values = pd.to_numeric(text.mask(missing), errors="coerce").astype("float64")
    return values, missing, values.isna() & ~missing


def _parse_date(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    if pd.api.types.is_datetime64_any_dtype(raw):
        values = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
        missing = values.isna()
        return values, missing, ~missing & (values != values.dt.normalize())
    text, missing = _text(raw)
    values = pd.to_datetime(text.mask(missing), format="%Y-%m-%d", errors="coerce")
    retry = values.isna() & ~missing
    if retry.any():
        lenient = text[retry]
        zero_time = lenient.str.fullmatch(_ZERO_TIME)
        day = lenient.str.split(r"[ T]", n=1, regex=True).str[0].where(zero_time)
        values[retry] = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce")
    return values, missing, values.isna() & ~missing


def _parse_str(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    missing = raw.isna()
    text = raw.astype(str).str.strip()
    missing = missing | (text == "")
    return text.where(~missing, None).astype(object), missing


def _parse_column(raw: pd.Series, logical: str) -> _Parsed:
    if logical in (FLOAT, INT):
        values, missing, invalid = _parse_number(raw)
        expected = "expected a number"
        if logical == INT:
            fractional = ~invalid & ~missing & np.isfinite(values) & (values % 1 != 0)
            invalid = invalid | fractional
            expected = "expected a whole number"
        return _Parsed(values, missing, invalid, expected)
    if logical == DATE:
        return _Parsed(*_parse_date(raw), expected=_DATE_EXPECTED)
    values, missing = _parse_str(raw)
    if logical == SIDE:
        invalid = ~missing & ~values.isin(SIDES)
        return _Parsed(values, missing, invalid, "expected 'B' (buy) or 'S' (sell)")
    return _Parsed(values, missing, pd.Series(False, index=raw.index), "expected text")


# ----------------------------------------------------------------------------------------- validation
def _fmt(value: object) -> str:
    """A cell as the user would recognize it: numbers bare, dates ISO, text quoted."""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return repr(value)


def _first(mask: pd.Series) -> tuple[int, int] | None:
    """(index of the first True row, number of True rows), or None when no row offends."""
    hits = mask.to_numpy(dtype=bool, na_value=False)
    n = int(hits.sum())
    return (int(mask.index[hits.argmax()]), n) if n else None


def _more(n: int) -> str:
    return f" ({n - 1} more row(s) like this)" if n > 1 else ""


@dataclass
class _Checked:
    """A source after validation: its typed columns and the problems found."""

    src: _Source
    typed: pd.DataFrame
    problems: list[Problem]
    bad_columns: set[str]


def _check_table(src: _Source) -> _Checked:
    """All single-table rules: types, blanks, finiteness, signs, price ranges, publication order, keys."""
    table, raw = src.table, src.raw
    problems: list[Problem] = []
    bad: set[str] = set()
    typed = pd.DataFrame(index=raw.index)

    def report(mask: pd.Series, columns: tuple[str, ...], message: Callable[[int], str]) -> bool:
        """Record the first offending row of a rule (message built only for it) and mark its columns."""
        hit = _first(mask)
        if hit is None:
            return False
        row, n = hit
        problems.append(Problem(src.where(row), message(row) + _more(n), columns))
        bad.update(columns)
        return True

    for col in raw.columns:
        logical = table.columns[col]
        parsed = _parse_column(raw[col], logical)
        typed[col] = parsed.values
        may_be_null = col in table.nullable or col in table.optional_columns
        if report(
            parsed.invalid, (col,), lambda r, p=parsed, c=col: f"{p.expected}, got {_fmt(raw.at[r, c])}"
        ):
            continue
        if not may_be_null and report(
            parsed.missing, (col,), lambda r: "missing value (blank or NaN); this column may not be empty"
        ):
            continue
        if logical in (FLOAT, INT):
            report(
                pd.Series(np.isinf(parsed.values), index=raw.index),
                (col,),
                lambda r, c=col: f"expected a finite number, got {_fmt(typed.at[r, c])}",
            )

    def good(*cols: str) -> bool:
        return all(c in typed.columns and c not in bad for c in cols)

    for col in table.positive:
        if good(col):
            report(
                typed[col] <= 0,
                (col,),
                lambda r, c=col: f"expected a positive number (> 0), got {_fmt(typed.at[r, c])}",
            )
    for col in table.non_negative:
        if good(col):
            report(
                typed[col] < 0,
                (col,),
                lambda r, c=col: f"expected a non-negative number (>= 0), got {_fmt(typed.at[r, c])}",
            )

    if good("high", "low"):
        high, low = typed["high"], typed["low"]
        report(
            high < low,
            ("high",),
            lambda r: f"high {_fmt(high[r])} is below low {_fmt(low[r])}; expected low <= high",
        )
        if good("high", "low"):
            lo, hi = low * (1 - RANGE_REL_TOL), high * (1 + RANGE_REL_TOL)
            for col in ("open", "close"):
                if good(col):
                    report(
                        (typed[col] < lo) | (typed[col] > hi),
                        (col,),
                        lambda r, c=col: (
                            f"{c} {_fmt(typed.at[r, c])} is outside the day's range "
                            f"[low {_fmt(low[r])}, high {_fmt(high[r])}]"
                        ),
                    )

    for later, earlier in table.not_before:
        if good(later, earlier):
            report(
                typed[later] < typed[earlier],
                (later,),
                lambda r, a=later, b=earlier: (
                    f"{a} {_fmt(typed.at[r, a])} is before {b} {_fmt(typed.at[r, b])}; "
                    f"expected {a} on or after {b}"
                ),
            )

    key = list(table.key)
    if key and good(*key):
        dup = typed.duplicated(key, keep="first")

        def dup_message(r: int) -> str:
            same = (typed[key] == typed.loc[r, key]).all(axis=1)
            first = int(same.idxmax())
            shown = ", ".join(_fmt(typed.at[r, k]) for k in key)
            what = "duplicate security" if table.name == "securities" else f"duplicate key ({', '.join(key)})"
            return f"{what} ({shown}); first seen at {src.where(first)}"

        report(dup, tuple(key), dup_message)
    return _Checked(src, typed, problems, bad)


def _check_symbols(checked: dict[str, _Checked]) -> list[Problem]:
    """Every symbol in a table with a symbol column must be listed in securities."""
    sec = checked.get("securities")
    if sec is None or "symbol" in sec.bad_columns:
        return []
    listed = sec.typed["symbol"].dropna().unique()
    problems: list[Problem] = []
    for name, c in checked.items():
        col = c.src.table.symbol_column
        if col is None or col in c.bad_columns or col not in c.typed.columns:
            continue
        unknown = ~c.typed[col].isin(listed) & c.typed[col].notna()
        hit = _first(unknown)
        if hit is None:
            continue
        row, _ = hit
        names = sorted(c.typed.loc[unknown, col].unique())
        listing = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        problems.append(
            Problem(
                c.src.where(row),
                f"symbol {_fmt(c.typed.at[row, col])} is not in securities ({sec.src.label}); "
                f"{len(names)} symbol(s) of {name} missing from securities: {listing}",
                (col,),
            )
        )
    return problems


# -------------------------------------------------------------------------------------------- writing
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


# ----------------------------------------------------------------------------------------------- main
def ingest_files(files: dict[str, Path], out_dir: Path) -> IngestSummary:
    """Validate user files (table name -> CSV/Parquet path) and write the raw contract to out_dir.

    Raises IngestError, naming file, row and column, before anything is written; on success out_dir
    holds exactly one `<table>.parquet` per given table plus `_source.json`, and a sibling `oracle/`
    (which described the synthetic market) is removed.
    """
    out_dir = Path(out_dir).absolute()
    unknown = sorted(set(files) - set(TABLES))
    if unknown:
        raise IngestError(f"unknown table(s) {', '.join(unknown)}; the contract has {', '.join(TABLES)}")
    absent = [t for t in REQUIRED_TABLES if t not in files]
    if absent:
        raise IngestError(f"required table(s) {', '.join(absent)} not given (pass --{absent[0]} FILE)")
    if out_dir.exists() and not out_dir.is_dir():
        raise IngestError(f"output {out_dir} exists and is not a directory")

    problems: list[Problem] = []
    checked: dict[str, _Checked] = {}
    notes: list[str] = []
    order = [t for t in TABLES if t in files]  # contract order, so messages come in a stable order
    for name in order:
        try:
            src = _read_source(TABLES[name], Path(files[name]))
        except _FileUnusable as unusable:
            problems.append(unusable.problem)
            continue
        notes += src.notes
        checked[name] = _check_table(src)
        problems += checked[name].problems
    problems += _check_symbols(checked)
    if problems:
        raise IngestError(problems)

    # An optional price column that is blank throughout carries nothing: treat it as absent.
    prices = checked["prices"]
    for col in TABLES["prices"].optional_columns:
        if col in prices.typed.columns and prices.typed[col].isna().all():
            prices.typed = prices.typed.drop(columns=col)
            notes.append(f"{prices.src.label}: column '{col}' is blank throughout; treated as absent")

    arrow = {name: _to_arrow(c.src.table, c.typed) for name, c in checked.items()}
    source = {"source": "ingested", "files": {name: c.src.path.name for name, c in checked.items()}}
    _write_atomically(out_dir, arrow, source)

    oracle = out_dir.parent / "oracle"
    removed_oracle = False
    if oracle.is_dir() and oracle != out_dir:
        try:
            shutil.rmtree(oracle)
            removed_oracle = True
        except OSError as err:  # the data is in place; say so rather than fail after the fact
            notes.append(f"could not remove {oracle} ({err}); it describes the synthetic market, delete it")
    return _summarize(out_dir, checked, notes, removed_oracle)


def _summarize(
    out_dir: Path, checked: dict[str, _Checked], notes: list[str], removed_oracle: bool
) -> IngestSummary:
    prices = checked["prices"].typed
    securities = checked["securities"].typed
    price_columns = [c for c in TABLES["prices"].optional_columns if c in prices.columns]
    dates = prices["date"]
    symbols = sorted(prices["symbol"].unique())
    unpriced = sorted(set(securities["symbol"]) - set(symbols))
    if unpriced:
        notes.append(f"{len(unpriced)} security(ies) have no prices: {', '.join(unpriced[:10])}")

    sector_etfs = sorted(securities["etf"].dropna().unique()) if "etf" in securities else []
    etfs = {"sector ETFs named in securities": sector_etfs}
    if "etf_prices" in checked:
        have = sorted(checked["etf_prices"].typed["etf"].unique())
        etfs["ETFs in etf_prices"] = have
        lacking = [e for e in [*sector_etfs, MARKET_ETF] if e not in have]
        if lacking:
            notes.append(
                f"etf_prices has no rows for {', '.join(lacking)}; "
                "the returns they stand for are built from the panel instead"
            )
    else:
        notes.append("no etf_prices: market and sector returns will be built from the panel")
    if "etf_flows" in checked:
        etfs["ETFs in etf_flows"] = sorted(checked["etf_flows"].typed["etf"].unique())

    return IngestSummary(
        out_dir=out_dir,
        files={name: c.src.path.name for name, c in checked.items()},
        rows={name: len(c.typed) for name, c in checked.items()},
        symbols=symbols,
        start=dates.min().date().isoformat(),
        end=dates.max().date().isoformat(),
        n_dates=int(dates.nunique()),
        missing_tables=[t for t in OPTIONAL_TABLES if t not in checked],
        missing_price_columns=[c for c in TABLES["prices"].optional_columns if c not in price_columns],
        disabled=disabled_views(set(checked), set(price_columns)),
        etfs=etfs,
        notes=notes,
        removed_oracle=removed_oracle,
    )
