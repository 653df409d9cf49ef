"""Purged walk-forward splitter: no training label window reaches a test date, at any setting."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ml.cv import WalkForward, date_array, period_codes


def panel_dates(n_days: int = 420, n_symbols: int = 12, seed: int = 0) -> np.ndarray:
    """Per-row dates of a shuffled panel where some names list late or delist early."""
    rng = np.random.default_rng(seed)
    cal = pd.bdate_range("2019-01-01", periods=n_days)
    rows = []
    for i in range(n_symbols):
        lo = int(rng.integers(0, n_days // 3)) if i % 4 == 1 else 0
        hi = int(rng.integers(2 * n_days // 3, n_days)) if i % 4 == 2 else n_days
        rows.append(cal[lo:hi].to_numpy())
    dates = np.concatenate(rows)
    return dates[rng.permutation(len(dates))]


SETTINGS = list(itertools.product(["M", "Q", "2Q", "W"], [0, 1, 5, 21], [0, 3], [None, 120]))


@pytest.mark.parametrize("cadence,horizon,embargo,max_train", SETTINGS)
def test_no_training_label_window_overlaps_a_test_date(cadence, horizon, embargo, max_train):
    dates = panel_dates()
    calendar = np.unique(dates)
    wf = WalkForward(cadence=cadence, horizon=horizon, embargo=embargo, min_train_days=100, max_train_days=max_train)
    folds = list(wf.folds(dates))
    assert folds, "expected folds"
    row_pos = np.searchsorted(calendar, dates)
    for fold in folds:
        train_pos = row_pos[fold.train_idx]
        test_pos = row_pos[fold.test_idx]
        first_test = test_pos.min()
        # every training row's label window [i, i + horizon] ends strictly before the first test day,
        # with `embargo` whole trading days in between
        label_end = train_pos + horizon
        assert label_end.max() < first_test - embargo
        assert calendar[min(label_end.max(), len(calendar) - 1)] < calendar[first_test]
        # ... and so no label window contains any test date at all
        windows = np.unique(train_pos)[:, None] + np.arange(horizon + 1)[None, :]
        assert not np.isin(windows, test_pos).any()
        # windows: at least the warm-up, at most the rolling length, all rows of those dates
        n_train_dates = len(np.unique(train_pos))
        assert n_train_dates >= 100
        if max_train is not None:
            assert n_train_dates <= max_train
        expected = np.flatnonzero((row_pos >= fold.train_first_pos) & (row_pos <= fold.train_last_pos))
        np.testing.assert_array_equal(np.sort(fold.train_idx), expected)
        assert fold.train_end == pd.Timestamp(calendar[train_pos.max()])
        assert fold.label_end < fold.test_start
        # the test block is one period of the cadence
        assert len(np.unique(period_codes(dates[fold.test_idx], cadence))) == 1


@pytest.mark.parametrize("cadence", ["M", "Q", "2Q"])
def test_test_blocks_tile_the_out_of_sample_history(cadence):
    dates = panel_dates()
    calendar = np.unique(dates)
    wf = WalkForward(cadence=cadence, horizon=5, embargo=2, min_train_days=100)
    folds = list(wf.folds(dates))
    covered = np.concatenate([f.test_idx for f in folds])
    assert len(covered) == len(np.unique(covered))
    first = wf.first_test_pos(calendar)
    assert first == 100 + 5 + 2
    np.testing.assert_array_equal(np.sort(covered), np.flatnonzero(dates >= calendar[first]))
    for a, b in zip(folds, folds[1:], strict=False):
        assert a.test_end < b.test_start


def test_cadences_share_the_first_test_date_and_first_test_date_pushes_later():
    dates = panel_dates()
    m = list(WalkForward("M", 5, 0, 100).folds(dates))
    q = list(WalkForward("Q", 5, 0, 100).folds(dates))
    assert m[0].test_start == q[0].test_start
    assert len(q) < len(m)
    late = list(WalkForward("M", 5, 0, 100, first_test_date="2019-12-02").folds(dates))
    assert late[0].test_start == pd.Timestamp("2019-12-02")


def test_a_multiple_of_a_period_refits_every_that_many_periods():
    cal = pd.bdate_range("2018-01-01", "2020-12-31")
    starts = [cal[i] for i in np.flatnonzero(np.diff(period_codes(cal, "2Q"))) + 1]
    assert [d.strftime("%Y-%m-%d") for d in starts[:3]] == ["2018-07-02", "2019-01-01", "2019-07-01"]
    np.testing.assert_array_equal(period_codes(cal, "Q"), period_codes(cal, "3M"))
    half = list(WalkForward("2Q", 5, 0, 100).folds(panel_dates()))
    quarter = list(WalkForward("Q", 5, 0, 100).folds(panel_dates()))
    assert half[0].test_start == quarter[0].test_start
    assert len(quarter) - 1 <= 2 * (len(half) - 1) <= len(quarter) + 1


def test_inner_split_is_purged_and_inside_the_training_window():
    dates = panel_dates()
    calendar = np.unique(dates)
    wf = WalkForward("M", horizon=5, embargo=3, min_train_days=100)
    for fold in wf.folds(dates):
        inner, val = wf.inner_split(dates, fold=fold, val_fraction=0.2)
        train_dates = dates[fold.train_idx]
        pos = np.searchsorted(calendar, train_dates)
        assert pos[inner].max() + 5 < pos[val].min() - 3
        n_val_dates = len(np.unique(pos[val]))
        n_dates = len(np.unique(pos))
        assert abs(n_val_dates - 0.2 * n_dates) <= 1
        assert pos[val].max() == fold.train_last_pos
    assert wf.inner_calendar_split(0, 5, 0.2) is None


def test_sklearn_style_split_and_inputs():
    dates = panel_dates(300, 5)
    wf = WalkForward("M", 5, 0, 100)
    n = wf.get_n_splits(dates)
    assert n == len(list(wf.split(dates)))
    frame = pd.DataFrame({"date": dates, "symbol": "A", "x": 1.0})
    indexed = frame.set_index(["date", "symbol"])
    for a, b in zip(wf.split(frame), wf.split(indexed), strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert date_array(pd.Series(dates.astype("datetime64[D]").astype(object))).dtype == "datetime64[ns]"
    with pytest.raises(ValueError):
        WalkForward(min_train_days=100, max_train_days=50)
    with pytest.raises(ValueError):
        WalkForward(horizon=-1)
    assert list(WalkForward("M", 5, 0, 1000).folds(dates)) == []
