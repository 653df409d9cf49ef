"""Ingest's cell parsing: one raw column to its logical type, with masks of blank and malformed cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.contract import DATE, FLOAT, INT, SIDE

# Text that means "no value" in a numeric or date cell (compared case-insensitively, after strip).
# String columns treat only a blank cell as missing, so a ticker such as "NA" survives.
NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "nat", "<na>", "#n/a"})
SIDES = ("B", "S")
# A datetime whose time part is zero is accepted where a date is expected.
_ZERO_TIME = r"\d{4}-\d{1,2}-\d{1,2}[ T]00:00(?::00(?:\.0+)?)?(?:Z|[+-]00:?00)?"
_DATE_EXPECTED = "expected an ISO date YYYY-MM-DD (a time part, if any, must be 00:00:00)"


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
