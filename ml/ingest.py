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

The steps live in ml/data/: ingest_read (files), ingest_parse (cells), ingest_checks (rules),
ingest_write (the atomic swap), ingest_errors (Problem, IngestError); this module runs them in order
and summarizes what was ingested.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ml.contract import MARKET_ETF, OPTIONAL_TABLES, REQUIRED_TABLES, TABLES
from ml.data.ingest_checks import _check_symbols, _check_table, _Checked
from ml.data.ingest_errors import IngestError, Problem, _FileUnusable
from ml.data.ingest_read import _read_source
from ml.data.ingest_write import _to_arrow, _write_atomically
from ml.data.views import disabled_views, feature_views

__all__ = ["IngestError", "IngestSummary", "Problem", "ingest_files"]


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
