"""The score panel the ensembles combine: per-date standardized model scores, the walk-forward windows whose
labels are known at each refit, and the daily rank IC shared by every weighter of one stage.

Split from ml/ensemble.py (which re-exports these names) so each module stays one thing: this one shapes
and times the panel; ml/ensemble.py weighs and combines it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from ml.metrics import daily_rank_ic, date_bounds, group_sums


def cumulative_days_with_data(usable: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Number of dates with at least one usable row before each calendar position (length n_dates + 1):
    dates [a, b] hold `out[b + 1] - out[a]` of them. Warm-ups count these, not calendar rows, because
    early dates often have scores but no label (or no model) to learn from."""
    has = group_sums(np.asarray(usable, dtype=float), starts) > 0
    return np.r_[0, np.cumsum(has)]


def known_windows(refits, horizon: int, window: int | None, days_with_data: np.ndarray, min_train_days: int):
    """(k, refit position p, first, last) of each walk-forward refit with enough history: the training
    window ends at last = p - horizon - 1 (the last date whose label is known at p), starts `window`
    dates earlier (None: expanding) and holds at least `min_train_days` dates with data. The one
    look-ahead rule the calibrators, probability, interval and meta-model refits share."""
    for k, p in enumerate(refits):
        last = p - horizon - 1
        first = 0 if window is None else max(0, last - window + 1)
        if last < 0 or days_with_data[last + 1] - days_with_data[first] < min_train_days:
            continue
        yield k, p, first, last


def score_panel(predictions: pd.DataFrame, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Long predictions (date, symbol, model_id, score) -> wide panel, index (date, symbol) sorted,
    one column per model (NaN where a model has no score). `models` keeps only those ids."""
    frame = predictions[["date", "symbol", "model_id", "score"]]
    if models is not None:
        frame = frame[frame["model_id"].isin(list(models))]
    frame = frame.assign(date=pd.to_datetime(frame["date"]), symbol=frame["symbol"].astype(str))
    wide = frame.pivot_table(index=["date", "symbol"], columns="model_id", values="score", aggfunc="last")
    wide.columns = [str(c) for c in wide.columns]
    return wide.sort_index()


def standardize(panel: pd.DataFrame, clip: float = 3.0, method: str = "zscore") -> pd.DataFrame:
    """Per date and column: cross-sectional z-score (or rank mapped to [-sqrt3, sqrt3]), clipped at
    +-clip, so that models on different scales and with outlier scores can be averaged."""
    _, codes, starts = date_bounds(panel.index)
    x = panel.to_numpy(dtype="float64")
    if method == "rank":
        ranks = panel.groupby(level="date").rank(pct=True).to_numpy()
        counts = group_sums(np.isfinite(x).astype(float), starts)[codes]
        x = np.where(counts > 1, (ranks - 0.5 / np.maximum(counts, 1) - 0.5) * np.sqrt(12.0), np.nan)
    elif method != "zscore":
        raise ValueError(f"standardize method must be zscore | rank, got {method!r}")
    ok = np.isfinite(x)
    n = group_sums(ok.astype(float), starts)
    s1 = group_sums(np.where(ok, x, 0.0), starts)
    s2 = group_sums(np.where(ok, x * x, 0.0), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        sd = np.sqrt(np.maximum(s2 / n - mean**2, 0.0) * n / np.maximum(n - 1, 1))
        z = (x - mean[codes]) / sd[codes]
    z = np.where(np.isfinite(z), np.clip(z, -clip, clip), np.nan)
    return pd.DataFrame(z, index=panel.index, columns=panel.columns)


def known_at(stats: pd.DataFrame, calendar: pd.DatetimeIndex, lag: int) -> pd.DataFrame:
    """Reindex per-date statistics onto `calendar` and shift them `lag` rows later: the row of date t
    then holds what was measured at t - lag (labels of dates up to t - lag are known at t)."""
    return stats.reindex(calendar).shift(lag)


_IC_SCOPES: list[dict] = []


@contextmanager
def shared_daily_ic():
    """Within the block, each (score panel, label) pair's daily rank IC is computed once, however many
    weighters ask for it (IC-weighted, the neural stacker's statistics, the walk-forward choice's
    candidates): they rank the same panel against the same label. Pairs are matched by identity and held
    until the block ends, so nothing outlives the stage that opened it."""
    _IC_SCOPES.append({})
    try:
        yield
    finally:
        _IC_SCOPES.pop()


def shared_daily_rank_ic(panel: pd.DataFrame, label: pd.Series, min_names: int = 10) -> pd.DataFrame:
    """`daily_rank_ic`, computed once per (panel, label) pair inside a `shared_daily_ic` block."""
    if not _IC_SCOPES:
        return daily_rank_ic(panel, label, min_names)
    memo = _IC_SCOPES[-1]
    key = (id(panel), id(label), int(min_names))
    hit = memo.get(key)
    if hit is None or hit[0] is not panel or hit[1] is not label:
        hit = memo[key] = (panel, label, daily_rank_ic(panel, label, min_names))
    return hit[2]
