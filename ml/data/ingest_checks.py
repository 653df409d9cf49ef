"""Ingest's validation rules: each a whole-column mask, its first offending row reported as a Problem."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.contract import FLOAT, INT
from ml.data.ingest_errors import Problem
from ml.data.ingest_parse import _parse_column
from ml.data.ingest_read import _Source

# open/close may exceed [low, high] by this relative amount (float rounding in vendor data), no more.
RANGE_REL_TOL = 1e-9


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
