"""Purged walk-forward cross-validation over a (date, symbol) panel.

Everything is counted on the panel's own trading calendar: the sorted unique dates of the rows.
A row dated on calendar day i carries a label that spans days i+1 .. i+horizon (a forward return
known at the close of day i+horizon), so its *label window* is [i, i+horizon].

`WalkForward` makes one fold per refit period (a pandas period alias: "M" monthly by default, "Q",
"W", "Y"...), after a warm-up of `min_train_days` training dates:

* test  = rows dated in the period (the first period is cut to start at the first admissible date,
          so every cadence starts its out-of-sample history on the same day);
* train = rows whose label window ends strictly before the first test day minus the embargo:
          i + horizon < s - embargo, with s the first test day's calendar index; with
          `max_train_days` only the latest `max_train_days` such dates (rolling window), otherwise
          all of them (expanding window).

So no training label overlaps a test date (the purge) and `embargo` extra days separate the two.
`inner_split` carves a validation tail (the last `val_fraction` of a fold's training dates) out of a
training window with the same purge, for choosing hyper-parameters from data before the test window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: row positions and the date bounds (calendar dates, inclusive)."""

    index: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # last training date (its label ends `horizon` trading days later)
    label_end: pd.Timestamp  # last day any training label reaches (< test_start - embargo)
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    # the same bounds as calendar positions, for code that works in trading days
    train_first_pos: int
    train_last_pos: int
    test_first_pos: int
    test_last_pos: int


def date_array(dates) -> np.ndarray:
    """Per-row dates as datetime64[ns] from an array, Series, Index, or a frame's `date` column/level."""
    if isinstance(dates, pd.DataFrame | pd.Series) and isinstance(dates.index, pd.MultiIndex):
        if "date" in dates.index.names:
            dates = dates.index.get_level_values("date")
    if isinstance(dates, pd.DataFrame):
        dates = dates["date"]
    if isinstance(dates, pd.MultiIndex):
        dates = dates.get_level_values("date")
    return pd.to_datetime(np.asarray(dates)).to_numpy(dtype="datetime64[ns]")


def period_codes(dates, alias: str) -> np.ndarray:
    """Integer period of each date for a pandas period alias, multiples included: `2Q` puts two
    consecutive quarters in one period (January-June, July-December), where pandas' PeriodIndex alone
    would keep quarters. Equal codes: the same refit period."""
    lead = re.match(r"\s*(\d+)", str(alias))
    step = max(int(lead.group(1)), 1) if lead else 1
    codes = pd.PeriodIndex(pd.DatetimeIndex(dates), freq=alias).asi8
    return codes // step if step > 1 else codes


class WalkForward:
    """Purged, embargoed walk-forward splitter on per-row dates (see the module docstring).

    Parameters are in trading days of the panel's calendar except `cadence` (pandas period alias).
    `first_test_date` pushes the start of the out-of-sample history later (never earlier than the
    warm-up allows).
    """

    def __init__(
        self,
        cadence: str = "M",
        horizon: int = 5,
        embargo: int = 0,
        min_train_days: int = 504,
        max_train_days: int | None = None,
        first_test_date=None,
    ) -> None:
        if horizon < 0 or embargo < 0:
            raise ValueError("horizon and embargo must be >= 0")
        if min_train_days < 1:
            raise ValueError("min_train_days must be >= 1")
        if max_train_days is not None and max_train_days < min_train_days:
            raise ValueError("max_train_days must be >= min_train_days")
        self.cadence = cadence
        self.horizon = int(horizon)
        self.embargo = int(embargo)
        self.min_train_days = int(min_train_days)
        self.max_train_days = None if max_train_days is None else int(max_train_days)
        self.first_test_date = first_test_date

    def __repr__(self) -> str:
        return (
            f"WalkForward(cadence={self.cadence!r}, horizon={self.horizon}, embargo={self.embargo}, "
            f"min_train_days={self.min_train_days}, max_train_days={self.max_train_days})"
        )

    # ------------------------------------------------------------------ calendar-level folds
    @property
    def gap(self) -> int:
        """Calendar days between the last training date and the first test date, exclusive."""
        return self.horizon + self.embargo

    def train_last_pos(self, test_first_pos: int) -> int:
        """Last admissible training date for a test window starting at `test_first_pos`."""
        return test_first_pos - self.gap - 1

    def first_test_pos(self, calendar: np.ndarray) -> int:
        pos = self.min_train_days + self.gap
        if self.first_test_date is not None:
            pos = max(pos, int(np.searchsorted(calendar, np.datetime64(pd.Timestamp(self.first_test_date)))))
        return pos

    def calendar_folds(self, calendar: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(train_first, train_last, test_first, test_last) calendar positions, one per fold."""
        calendar = np.asarray(calendar, dtype="datetime64[ns]")
        n = len(calendar)
        start = self.first_test_pos(calendar)
        if start >= n:
            return []
        periods = period_codes(calendar, self.cadence)
        boundaries = np.flatnonzero(np.diff(periods)) + 1  # first position of each new period
        starts = [start] + [int(b) for b in boundaries if b > start]
        out = []
        for k, s in enumerate(starts):
            e = (starts[k + 1] if k + 1 < len(starts) else n) - 1
            last = self.train_last_pos(s)
            first = 0 if self.max_train_days is None else max(0, last - self.max_train_days + 1)
            out.append((first, last, s, e))
        return out

    # ------------------------------------------------------------------ row-level folds
    def folds(self, dates) -> Iterator[Fold]:
        """Folds over rows with these per-row dates (any order); row positions index `dates`."""
        d = date_array(dates)
        calendar, pos = np.unique(d, return_inverse=True)
        order = np.argsort(pos, kind="stable")
        bounds = np.searchsorted(pos[order], np.arange(len(calendar) + 1))
        for k, (a, b, s, e) in enumerate(self.calendar_folds(calendar)):
            train_idx = np.sort(order[bounds[a] : bounds[b + 1]])
            test_idx = np.sort(order[bounds[s] : bounds[e + 1]])
            yield Fold(
                index=k,
                train_idx=train_idx,
                test_idx=test_idx,
                train_start=pd.Timestamp(calendar[a]),
                train_end=pd.Timestamp(calendar[b]),
                label_end=pd.Timestamp(calendar[min(b + self.horizon, len(calendar) - 1)]),
                test_start=pd.Timestamp(calendar[s]),
                test_end=pd.Timestamp(calendar[e]),
                train_first_pos=a,
                train_last_pos=b,
                test_first_pos=s,
                test_last_pos=e,
            )

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """sklearn-style (train_idx, test_idx); X: per-row dates or a frame with a `date` column/level."""
        for fold in self.folds(X):
            yield fold.train_idx, fold.test_idx

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        if X is None:
            raise ValueError("WalkForward needs the per-row dates to count its folds")
        return len(self.calendar_folds(np.unique(date_array(X))))

    # ------------------------------------------------------------------ inner validation
    def inner_calendar_split(self, train_first: int, train_last: int, val_fraction: float = 0.2):
        """(inner_first, inner_last, val_first, val_last) positions inside a training window, purged.

        The validation block is the last `val_fraction` of the window's dates; the inner training
        block ends `horizon + embargo` days before it. None when the window is too short for both.
        """
        n_dates = train_last - train_first + 1
        n_val = max(1, int(round(val_fraction * n_dates)))
        val_first = train_last - n_val + 1
        inner_last = val_first - self.gap - 1
        if inner_last < train_first or val_first <= train_first:
            return None
        return train_first, inner_last, val_first, train_last

    def inner_split(self, dates, fold: Fold | None = None, val_fraction: float = 0.2):
        """(inner_train_idx, val_idx) positions into `dates` (the rows of one training window, or of
        `fold`'s training rows when given: then positions index `dates[fold.train_idx]`)."""
        d = date_array(dates)
        if fold is not None:
            d = d[fold.train_idx]
        calendar, pos = np.unique(d, return_inverse=True)
        got = self.inner_calendar_split(0, len(calendar) - 1, val_fraction)
        if got is None:
            return None
        _, inner_last, val_first, _ = got
        return np.flatnonzero(pos <= inner_last), np.flatnonzero(pos >= val_first)
