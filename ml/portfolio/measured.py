"""Market-dependent constants of the policy, measured walk-forward from the data themselves.

The policy used to carry constants fitted to one synthetic market (`holding_days`, `signal_decay`, a
threshold multiple, a trading speed). Each is replaced here by a quantity measured, at every
decision date t, from data known at t only:

- the signal's edge: the realized cross-sectional return over the next h days per bp of expected
  return, K_t(h), from the (signal date s, outcome s + h) pairs with s + h <= t (the calibrator's purge:
  an outcome counts only once it has happened), pooled over an expanding (or exponentially weighted)
  window, with its t-statistic (per-date slopes, overlap-corrected by sqrt(h));
- the holding horizon h*_t: the lag at which the shrunk cumulative edge peaks (the alpha's life; beyond
  it holding adds risk and no return);
- the edge used, K_t(h) * max(0, 1 - z^2/t^2): a James-Stein-like shrinkage whose z is the two-sided 5%
  critical value corrected for the number of lags tried (Bonferroni), so an edge that cannot be told
  from zero, at any lag, is worth nothing and the book abstains (a market with no alpha).

Everything is vectorized: cumulative sums over dates, one pass per lag of the grid.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

BPS = 1e4


@dataclass
class EdgeEstimate:
    """Walk-forward edge of a signal, one value per decision date (arrays of length T)."""

    lags: np.ndarray  # the horizon grid, days
    slope: np.ndarray  # (T, L) K_t(h): realized return (fraction) per bp of expected return, cumulative to h
    tstat: np.ndarray  # (T, L)
    n_dates: np.ndarray  # (T, L) signal dates behind each estimate
    horizon: np.ndarray  # (T,) h*_t (0: not measured yet)
    edge: np.ndarray  # (T,) shrunk K_t(h*_t), >= 0 (return per bp of expected return)

    def frame(self, dates: pd.DatetimeIndex) -> pd.DataFrame:
        """Long rows (date, constant, value) for `ml.policy_constants`."""
        pick = np.clip(np.searchsorted(self.lags, np.maximum(self.horizon, self.lags[0])), 0, len(self.lags) - 1)
        rows = np.arange(len(dates))
        parts = {
            "edge_per_bp": self.edge * BPS,  # bps of realized return per bp of expected return
            "holding_horizon_days": self.horizon.astype(float),
            "edge_tstat": np.where(self.horizon > 0, self.tstat[rows, pick], np.nan),
            "edge_raw_per_bp": np.where(self.horizon > 0, self.slope[rows, pick] * BPS, np.nan),
        }
        return pd.concat([pd.DataFrame({"date": dates, "constant": k, "value": v}) for k, v in parts.items()],
                         ignore_index=True)


def _demeaned(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    n = ok.sum(axis=1, keepdims=True)
    mean = np.where(n > 0, np.where(ok, values, 0.0).sum(axis=1, keepdims=True) / np.maximum(n, 1), 0.0)
    return np.where(ok, values - mean, 0.0)


def _known(daily: np.ndarray, lag: int) -> np.ndarray:
    """sum over signal dates s <= t - lag of daily[s]: what is known at the close of t."""
    total = np.cumsum(daily)
    out = np.zeros_like(total)
    if lag < len(total):
        out[lag:] = total[: len(total) - lag]
    return out


def measure_edge(
    expected_return: np.ndarray,
    returns: np.ndarray,
    lags: tuple[int, ...] = (1, 2, 3, 5, 10, 21),
    min_dates: int = 63,
    level: float = 0.05,
    scale: np.ndarray | None = None,
) -> EdgeEstimate:
    """Walk-forward edge of `expected_return` (dates x names, bps, NaN: none) against the panel's daily
    `returns` (dates x names; row t is the return into t). Cross-sections are demeaned (a dollar-neutral
    book's view). At t only signal dates s with s + h <= t enter the estimate at lag h. With `scale`
    (each name's volatility known at s) the cross-sectional fit is weighted by 1 / scale^2: the slope a
    mean-variance book earns, where a volatile name's noise counts for what it costs in risk."""
    er = np.asarray(expected_return, dtype=float)
    r = np.nan_to_num(np.asarray(returns, dtype=float))
    T = er.shape[0]
    has = np.isfinite(er)
    e = _demeaned(np.nan_to_num(er), has)
    if scale is None:
        wts = np.ones(er.shape)
    else:
        sc = np.asarray(scale, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            wts = np.where(np.isfinite(sc) & (sc > 0), 1.0 / np.where(sc > 0, sc, 1.0) ** 2, 0.0)
        # no normalization: slopes and t-statistics do not depend on a common scale of the weights, and a
        # scale taken over the whole panel would read the future
    cum = np.vstack([np.zeros((1, r.shape[1])), np.cumsum(r, axis=0)])  # cum[t + 1] = sum r[:t + 1]
    lag_arr = np.asarray(sorted(set(int(h) for h in lags)), dtype=int)
    L = len(lag_arr)
    slope, tstat, n_dates = np.zeros((T, L)), np.zeros((T, L)), np.zeros((T, L))
    for j, h in enumerate(lag_arr):
        fwd = np.full(r.shape, np.nan)
        if h < T:
            fwd[: T - h] = cum[h + 1: T + 1] - cum[1: T - h + 1]  # sum of r[s+1 .. s+h]
        ok = has & np.isfinite(fwd)
        y = _demeaned(np.nan_to_num(fwd), ok)
        x = np.where(ok, e, 0.0)
        den = (wts * x * x).sum(axis=1)
        num = (wts * x * y).sum(axis=1)
        ic = _row_corr(np.where(ok, er, np.nan), np.where(ok, fwd, np.nan))  # the day's rank IC at lag h
        used = np.isfinite(ic) & (den > 0)
        ic = np.where(used, ic, 0.0)
        s_den, s_num = _known(den, h), _known(num, h)
        s_ic, s_ic2 = _known(ic, h), _known(ic * ic, h)
        count = np.cumsum(used.astype(float))
        known_n = np.zeros(T)
        known_n[h:] = count[: T - h] if h < T else 0
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where(s_den > 0, s_num / np.where(s_den > 0, s_den, 1.0), 0.0)
            n = np.maximum(known_n, 1.0)
            mean_ic = s_ic / n
            sd_ic = np.sqrt(np.maximum(s_ic2 / n - mean_ic ** 2, 0.0) * n / np.maximum(n - 1.0, 1.0))
            t = np.where(sd_ic > 0, mean_ic / np.where(sd_ic > 0, sd_ic, 1.0) * np.sqrt(n / h), 0.0)
        enough = known_n >= min_dates
        slope[:, j] = np.where(enough, k, 0.0)
        tstat[:, j] = np.where(enough, t, 0.0)
        n_dates[:, j] = known_n
    z = float(norm.ppf(1.0 - level / (2.0 * L)))
    shrunk = np.maximum(slope, 0.0) * np.maximum(0.0, 1.0 - z * z / np.maximum(tstat * tstat, 1e-12))
    best = np.argmax(shrunk, axis=1)
    rows = np.arange(T)
    edge = shrunk[rows, best]
    horizon = np.where(edge > 0, lag_arr[best], 0)
    return EdgeEstimate(lags=lag_arr, slope=slope, tstat=tstat, n_dates=n_dates, horizon=horizon, edge=edge)


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise rank correlation of two dates x names arrays over the names both have (NaN below 5)."""
    ok = np.isfinite(a) & np.isfinite(b)
    ra = pd.DataFrame(np.where(ok, a, np.nan)).rank(axis=1).to_numpy()
    rb = pd.DataFrame(np.where(ok, b, np.nan)).rank(axis=1).to_numpy()
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows without names: NaN, dropped below
        da = ra - np.nanmean(ra, axis=1, keepdims=True)
        db = rb - np.nanmean(rb, axis=1, keepdims=True)
        num = np.nansum(da * db, axis=1)
        den = np.sqrt(np.nansum(da * da, axis=1) * np.nansum(db * db, axis=1))
        out = num / den
    return np.where(n >= 5, out, np.nan)


def abdi_ranaldo_spread(close: np.ndarray, high: np.ndarray, low: np.ndarray, window: int = 252,
                        min_reliability: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Abdi-Ranaldo (2017) bid-ask spread from closes and daily high-low midpoints, in bps, and the day's
    reliability of the estimates. With c the log close and eta the log mid-range,
    s^2 = 4 E[(c_t - eta_t)(c_t - eta_{t+1})], the expectation a trailing mean over `window` day pairs
    (the pair (t-1, t) is known at t). Daily products are noisy (a name's 21-day estimate is mostly
    noise), so the estimate is trusted only where it is a property of the name: the rank correlation,
    across names, of the estimates from the older and the newer half of the window (split-half
    reliability) is at least `min_reliability`; elsewhere NaN (the caller's fallback, reported). On the
    synthetic markets, whose highs and lows carry no bid-ask bounce, it stays near 0 and nothing is
    estimated; on real panels spreads persist by name. NaN where the range is unknown (closes only)."""
    c = np.log(np.asarray(close, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        hi, lo = np.asarray(high, dtype=float), np.asarray(low, dtype=float)
        eta = np.log((hi + lo) / 2.0)
        ranged = hi > lo
    pad = np.full((1, c.shape[1]), np.nan)
    prev_c, prev_eta = np.vstack([pad, c[:-1]]), np.vstack([pad, eta[:-1]])
    prev_ranged = np.vstack([np.zeros((1, c.shape[1]), bool), ranged[:-1]])
    prod = pd.DataFrame(np.where(ranged & prev_ranged, (prev_c - prev_eta) * (prev_c - eta), np.nan))
    half = window // 2
    full = prod.rolling(window, min_periods=half).mean().to_numpy()
    newer = prod.rolling(half, min_periods=half // 2).mean()
    older = newer.shift(half).to_numpy()
    reliability = _row_corr(older, newer.to_numpy())
    est = np.sqrt(np.maximum(4.0 * full, 0.0)) * BPS
    trusted = (reliability >= min_reliability)[:, None]
    return np.where(trusted & np.isfinite(full), est, np.nan), reliability


def relative_volatility(sigma: np.ndarray) -> np.ndarray:
    """Each name's volatility over the day's cross-sectional median (1 where unknown): known at t."""
    s = np.asarray(sigma, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.where(s > 0, s, np.nan), axis=1, keepdims=True)
        rel = s / med
    return np.where(np.isfinite(rel) & (rel > 0), rel, 1.0)


def measure_scaled_edge(
    expected_return: np.ndarray,
    returns: np.ndarray,
    sigma: np.ndarray,
    exponents: tuple[float, ...] = (0.0, 1.0),
    **kwargs,
) -> tuple[EdgeEstimate, np.ndarray, np.ndarray]:
    """Does the alpha scale with the name's volatility? The edge is measured for each candidate signal
    expected_return x (sigma / median sigma)^p, and at each date the exponent whose best lag has the
    largest t-statistic (known at t) is used. A calibrator fitted on z-scored scores gives the same
    expected return to a quiet and a volatile name; on most markets the realized alpha of the volatile one
    is larger, and this measures by how much instead of assuming it. Returns the chosen estimate, the
    exponent per date and the (dates x names) multiplier to apply to the expected returns. The fits are
    weighted by 1 / sigma^2, the weights the optimizer's risk term gives each name."""
    rel = relative_volatility(sigma)
    exps = np.asarray(exponents, dtype=float)
    ests = [measure_edge(np.asarray(expected_return, dtype=float) * rel ** p, returns, scale=sigma, **kwargs)
            for p in exps]
    score = np.stack([np.where(e.horizon > 0, e.tstat.max(axis=1), -np.inf) for e in ests])
    pick = np.argmax(score, axis=0)
    rows = np.arange(len(pick))

    def take(name: str) -> np.ndarray:
        return np.stack([getattr(e, name) for e in ests])[pick, rows]

    chosen = EdgeEstimate(lags=ests[0].lags, slope=take("slope"), tstat=take("tstat"), n_dates=take("n_dates"),
                          horizon=take("horizon"), edge=take("edge"))
    return chosen, exps[pick], rel ** exps[pick][:, None]
