"""Pure, vectorized building blocks of the synthetic market and its alpha channels.

Each channel function turns observable raw data (as matrices days x symbols) into a state known at the
close of day t; the generator weights the states into expected returns. Nothing here draws random
numbers, so adding a channel never moves the default market's random stream.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, sd: float) -> np.ndarray:
    """AR(1) series along axis 0 with stationary standard deviation `sd`."""
    shocks = rng.standard_normal(shape) * sd * np.sqrt(1 - phi**2)
    out = np.empty(shape)
    out[0] = rng.standard_normal(shape[1]) * sd
    for t in range(1, shape[0]):
        out[t] = phi * out[t - 1] + shocks[t]
    return out


def _decay_filter(impulses: np.ndarray, d: float) -> np.ndarray:
    """x[t] = d * x[t-1] + u[t] along axis 0."""
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -d], impulses, axis=0)


def _ffill_index(update_mask: np.ndarray) -> np.ndarray:
    """For each (t, i), the row index of the latest True at or before t, or -1."""
    idx = np.where(update_mask, np.arange(update_mask.shape[0])[:, None], -1)
    return np.maximum.accumulate(idx, axis=0)


def _cs_zscore(x: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score per row over live names; 0 where not live or undefined."""
    xm = np.where(live, x, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(xm, axis=1, keepdims=True)
        sd = np.nanstd(xm, axis=1, keepdims=True)
        z = (xm - mean) / np.where(sd > 0, sd, np.nan)
    return np.nan_to_num(z, nan=0.0)


def _pooled_sd(x: np.ndarray, live: np.ndarray) -> float:
    """Average cross-sectional standard deviation over live names (for scaling channels)."""
    xm = np.where(live, x, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sds = np.nanstd(xm, axis=1)
    sds = sds[np.isfinite(sds) & (sds > 0)]
    return float(np.mean(sds)) if len(sds) else 1.0


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _next_bday_index(calendar: pd.DatetimeIndex, dates: np.ndarray) -> np.ndarray:
    """Index of the first business day on or after each date (len(calendar) when past the end)."""
    return np.searchsorted(calendar.values, dates.astype("datetime64[ns]"), side="left")


def impulses_at(idx: np.ndarray, values: np.ndarray, t_days: int) -> np.ndarray:
    """Scatter (symbol, k...) impulses onto the (day, symbol) grid; events off the grid drop out."""
    n = idx.shape[0]
    grid = np.zeros((t_days, n))
    sym = np.broadcast_to(np.arange(n).reshape((n,) + (1,) * (idx.ndim - 1)), idx.shape)
    ok = (idx >= 0) & (idx < t_days)
    np.add.at(grid, (idx[ok], sym[ok]), values[ok])
    return grid


def held_since_report(report_idx: np.ndarray, values: np.ndarray, t_days: int) -> np.ndarray:
    """The latest value published at or before each day (NaN before the first publication)."""
    n = report_idx.shape[0]
    update = impulses_at(report_idx, np.ones_like(values), t_days) > 0
    grid = impulses_at(report_idx, values, t_days)
    last = _ffill_index(update)
    return np.where(last >= 0, grid[np.maximum(last, 0), np.arange(n)[None, :]], np.nan)


def trailing_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over the last `window` rows (inclusive) along axis 0."""
    c = np.cumsum(x, axis=0)
    return c - np.vstack([np.zeros((window, x.shape[1])), c[:-window]])


# ----------------------------------------------------------------------------------------------
# channels the default market does not use (scenarios switch them on)


def profitability_state(
    report_idx: np.ndarray, net_income: np.ndarray, book_equity: np.ndarray, live: np.ndarray
) -> np.ndarray:
    """Trailing four-quarter ROE, z-scored across live names, held from each report date (a level)."""
    ttm = pd.DataFrame(net_income.T).rolling(4, min_periods=4).sum().to_numpy().T
    roe = np.clip(ttm / np.maximum(book_equity, 1.0), -1.0, 1.0)
    known = held_since_report(np.where(np.isfinite(roe), report_idx, -1), np.nan_to_num(roe), live.shape[0])
    return _cs_zscore(np.nan_to_num(known), live & np.isfinite(known))


def value_zscore(
    log_book: np.ndarray, log_shares: np.ndarray, log_price: np.ndarray, ok: np.ndarray
) -> np.ndarray:
    """Book-to-market on one day (latest reported book equity over today's market cap), z-scored."""
    z = _cs_zscore(
        np.nan_to_num(log_book - log_shares - log_price)[None, :], (ok & np.isfinite(log_book))[None, :]
    )
    return np.clip(z[0], -3.0, 3.0)


def insider_net_state(buy_filings: np.ndarray, sell_filings: np.ndarray, window: int = 90) -> np.ndarray:
    """Net insider buying over a long window, from filings only: tanh(buys - sells / 3)."""
    return np.tanh(trailing_sum(buy_filings, window) - trailing_sum(sell_filings, window) / 3.0)


def short_interest_tail_state(si_z: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """Only the heavily shorted tail underperforms, convexly: -(z - threshold)^2 above the threshold."""
    return -(np.minimum(_relu(si_z - threshold), 3.0) ** 2)


def flow_shock_state(
    flow_z: np.ndarray, sector_of: np.ndarray, decay: float, threshold: float = 2.0
) -> np.ndarray:
    """Members of a sector ETF revert after its flow is extreme (|z| > threshold); ordinary flows do nothing."""
    shocks = np.where(np.abs(flow_z) > threshold, -np.sign(flow_z) * (np.abs(flow_z) - threshold + 1.0), 0.0)
    return _decay_filter(shocks, decay)[:, sector_of]
