"""The embedded synthetic market: raw tables of the contract plus an oracle of true expected returns.

Why a generator: because it knows the true expected return of every (symbol, date), every run can say
how much of the achievable signal it recovered.

How the alpha is planted. Each channel c turns *observable* raw data into a state matrix X_c
(days x symbols) that is known at the close of day t. The expected return of day t+1 is

    mu[t+1] = sum_c w_c * X_c[t]

and, absent new information, channel c's state decays geometrically with factor d_c, so the
expected 5-day forward return known at t is sum_c w_c * X_c[t] * (1 + d_c + ... + d_c^4). That is
what the oracle records (`er_5d`); it uses nothing the market had not published by t, except the
latent calm/stressed regime, which the oracle knows and the models must infer.

Realized returns add market, sector and style (size, value) factors, fat-tailed idiosyncratic noise
with GARCH-like volatility clustering and a calm/stressed regime chain.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.contract import MARKET_ETF, TABLES

SECTORS: tuple[tuple[str, str, float, tuple[str, ...]], ...] = (
    # name, ETF, relative size, industries
    ("Information Technology", "XLK", 0.20, ("Software", "Semiconductors", "Hardware")),
    ("Health Care", "XLV", 0.14, ("Pharmaceuticals", "Biotechnology", "Medical Devices")),
    ("Financials", "XLF", 0.13, ("Banks", "Insurance", "Capital Markets")),
    ("Consumer Discretionary", "XLY", 0.11, ("Retail", "Autos", "Leisure")),
    ("Industrials", "XLI", 0.10, ("Aerospace", "Machinery", "Transportation")),
    ("Communication Services", "XLC", 0.07, ("Media", "Telecom")),
    ("Consumer Staples", "XLP", 0.06, ("Food", "Household Products")),
    ("Energy", "XLE", 0.05, ("Oil & Gas", "Energy Equipment")),
    ("Utilities", "XLU", 0.05, ("Electric Utilities", "Gas Utilities")),
    ("Real Estate", "XLRE", 0.05, ("REITs",)),
    ("Materials", "XLB", 0.04, ("Chemicals", "Metals & Mining")),
)

# Relative strength of each channel's 5-day expected-return contribution (normalized below).
CHANNEL_STRENGTH: dict[str, float] = {
    "pead": 1.0,  # post-earnings drift on SUE (fundamentals + estimates, from report_date)
    "revision": 0.8,  # analyst revision drift (estimates, from as_of_date)
    "accruals": 0.7,  # low accruals outperform (fundamentals, from report_date)
    "residual_reversal": 1.0,  # sector-residual short-term reversal (prices)
    "residual_momentum": 0.9,  # residual 12-1 momentum, crashes in the stressed regime (prices)
    "short_interest_iv": 0.8,  # heavy shorting x expensive puts (short_interest, options_iv)
    "iv_spread": 0.8,  # call-put implied vol spread (options_iv)
    "insider_cluster": 0.7,  # clustered insider buying (insider_trades, from filing_date)
    "etf_flow": 0.8,  # ETF flow pressure then reversal (etf_flows)
    # order-imbalance continuation (prices.order_imbalance); dies mid-sample. The strongest channel
    # while it lives (~25% of the oracle's cross-sectional variance then, 16% over the sample) and the
    # shortest-lived (decay 0.2: mostly next-day), as order-flow effects are: a death a monitor can
    # see within weeks on 130 names.
    "order_imbalance": 1.45,
}

# Per-day persistence of each channel's state (1.0: a level that holds until the next update).
CHANNEL_DECAY: dict[str, float] = {
    "pead": 0.97,
    "revision": 0.95,
    "accruals": 1.0,
    "residual_reversal": 0.6,
    "residual_momentum": 1.0,
    "short_interest_iv": 1.0,
    "iv_spread": 0.9,
    "insider_cluster": 0.97,
    "etf_flow": 1.0,  # two-speed kernel handled inside the channel; treated as a level
    "order_imbalance": 0.2,  # about a day
}

DECOY_FIELDS = (
    "prices.vwap",
    "prices.spread_bps",
    "prices.volume",
    "estimates.n_analysts",
    "fundamentals.revenue",
    "insider_trades(side=S)",
    "options_iv level (iv_call_30d + iv_put_30d)",
    "etf_flows for the market ETF",
    "etf_prices.volume",
)


@dataclass(frozen=True)
class MarketConfig:
    n_symbols: int = 130
    n_days: int = 2016
    seed: int = 7
    start: str = "2017-01-02"
    # cross-sectional sd of the 5-day oracle expected return, in return units
    alpha_5d: float = 0.0037
    dying_channel: str = "order_imbalance"
    decay_fraction: float = 0.62  # where in the sample the dying channel stops working
    late_listing_fraction: float = 0.08
    delisting_fraction: float = 0.07
    channel_strength: dict[str, float] = field(default_factory=lambda: dict(CHANNEL_STRENGTH))

    def __post_init__(self) -> None:
        if self.n_symbols < 22:
            raise ValueError(f"n_symbols must be at least 22 (two per sector), got {self.n_symbols}")
        if self.n_days < 300:
            raise ValueError(f"n_days must be at least 300 business days, got {self.n_days}")


@dataclass
class Market:
    """The generated raw tables (contract names) and the oracle."""

    tables: dict[str, pd.DataFrame]
    oracle: pd.DataFrame
    regimes: pd.DataFrame
    meta: dict


# ----------------------------------------------------------------------------------------------
# helpers (pure, vectorized over symbols)


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


# ----------------------------------------------------------------------------------------------
# the simulation


def generate_market(config: MarketConfig, log: Callable[[str], None] | None = None) -> Market:
    """Simulate the whole market in memory. Deterministic given `config`."""
    log = log or (lambda _m: None)
    rng = np.random.default_rng(config.seed)
    n, t_days = config.n_symbols, config.n_days
    calendar = pd.bdate_range(config.start, periods=t_days)
    day_idx = np.arange(t_days)

    # --- universe ------------------------------------------------------------------------------
    weights = np.array([s[2] for s in SECTORS])
    counts = np.maximum(2, np.floor(weights / weights.sum() * n).astype(int))
    while counts.sum() < n:
        counts[np.argmax(weights / weights.sum() * n - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(counts)] -= 1
    sector_of = np.repeat(np.arange(len(SECTORS)), counts)
    industry_of = np.array(
        [SECTORS[s][3][k % len(SECTORS[s][3])] for s, k in zip(sector_of, rng.integers(0, 3, n), strict=True)]
    )
    symbols = np.array([f"S{i:04d}" for i in range(n)])
    log_mcap0 = rng.uniform(np.log(3e8), np.log(8e11), n)  # $300M .. $800B
    size_rank = (log_mcap0 - log_mcap0.min()) / (np.ptp(log_mcap0) or 1.0)  # 0 smallest, 1 largest
    price0 = np.exp(rng.uniform(np.log(10), np.log(300), n))
    shares_out = np.exp(log_mcap0) / price0
    book_to_price = np.exp(rng.normal(np.log(0.45), 0.55, n))

    listed = np.zeros(n, dtype=int)
    delisted = np.full(n, t_days - 1)
    late = rng.choice(n, size=max(1, int(round(config.late_listing_fraction * n))), replace=False)
    listed[late] = rng.integers(60, int(0.6 * t_days), len(late))
    candidates = np.setdiff1d(np.arange(n), late)
    gone = rng.choice(candidates, size=max(1, int(np.ceil(config.delisting_fraction * n))), replace=False)
    delisted[gone] = rng.integers(int(0.5 * t_days), t_days - 20, len(gone))
    live = (day_idx[:, None] >= listed[None, :]) & (day_idx[:, None] <= delisted[None, :])

    # --- factors and regimes ---------------------------------------------------------------------
    stressed = np.zeros(t_days, dtype=bool)
    state = False
    switch = rng.random(t_days)
    for t in range(t_days):
        state = (switch[t] < 0.05) != state if state else switch[t] < 0.008
        stressed[t] = state
    mkt_vol = np.where(stressed, 0.022, 0.009)
    f_mkt = 0.0003 + mkt_vol * rng.standard_t(5, t_days) / np.sqrt(5 / 3)
    n_sec = len(SECTORS)
    f_sec = rng.standard_normal((t_days, n_sec)) * np.where(stressed, 0.012, 0.006)[:, None]
    f_size = rng.standard_normal(t_days) * 0.004
    f_value = rng.standard_normal(t_days) * 0.004 + np.where(stressed, -0.0008, 0.0001)

    beta_mkt = np.clip(rng.normal(1.0, 0.3, n), 0.3, 2.0)
    beta_sec = np.clip(rng.normal(1.0, 0.25, n), 0.3, 1.8)
    expo_size = -(log_mcap0 - log_mcap0.mean()) / log_mcap0.std()
    expo_value = (np.log(book_to_price) - np.log(book_to_price).mean()) / np.log(book_to_price).std()
    factor_ret = (
        beta_mkt[None, :] * f_mkt[:, None]
        + beta_sec[None, :] * f_sec[:, sector_of]
        + 0.5 * expo_size[None, :] * f_size[:, None]
        + 0.5 * expo_value[None, :] * f_value[:, None]
    )

    # idiosyncratic volatility: smaller names are more volatile; GARCH(1,1)-like clustering
    idio_sd = (0.34 - 0.16 * size_rank) / np.sqrt(252) * np.exp(rng.normal(0, 0.15, n))
    shocks = rng.standard_t(4, (t_days, n)) / np.sqrt(2.0)
    h = np.empty((t_days, n))
    h[0] = 1.0
    for t in range(1, t_days):
        h[t] = 0.03 + 0.07 * shocks[t - 1] ** 2 + 0.90 * h[t - 1]
    vol = idio_sd[None, :] * np.sqrt(h) * np.where(stressed, 1.4, 1.0)[:, None]
    log("universe, factors and volatility simulated")

    # --- exogenous observable inputs and their channel states ------------------------------------
    states: dict[str, np.ndarray] = {}

    # fundamentals and estimates, one row per (symbol, quarter)
    q_ends = pd.date_range(calendar[0] - pd.DateOffset(months=9), calendar[-1], freq="QE")
    n_q = len(q_ends)
    lag_days = rng.integers(20, 46, (n, n_q))
    report_dates = np.busday_offset(
        q_ends.values.astype("datetime64[D]")[None, :] + lag_days.astype("timedelta64[D]"), 0, roll="forward"
    )
    report_idx = _next_bday_index(calendar, report_dates.ravel()).reshape(n, n_q)
    report_idx[report_dates < calendar.values[0].astype("datetime64[D]")] = -1  # published before the sample

    earnings_yield = np.clip(rng.normal(0.055, 0.03, n), -0.03, 0.14)
    eps_base = earnings_yield * price0 / 4
    growth = rng.normal(0.012, 0.01, n)
    eps_trend = eps_base[:, None] * (1 + growth[:, None]) ** np.arange(n_q)[None, :]
    eps_trend = eps_trend + np.cumsum(rng.normal(0, 0.04, (n, n_q)), axis=1) * np.abs(eps_base)[:, None]
    # analysts disagree more in some quarters than others
    eps_std = (0.06 * np.abs(eps_base)[:, None] + 0.01) * np.exp(rng.normal(0, 0.25, eps_trend.shape))
    n_snap = 5
    snap_offsets = np.array([84, 63, 42, 21, 5])  # business days before the report
    jitter = rng.integers(0, 4, (n, n_q, 1))
    snap_idx = report_idx[:, :, None] - snap_offsets[None, None, :] - jitter
    revisions = rng.normal(0, 0.5, (n, n_q, n_snap)) * eps_std[:, :, None]
    consensus = eps_trend[:, :, None] + rng.normal(0, 0.3, (n, n_q, 1)) * eps_std[:, :, None]
    consensus = consensus + np.cumsum(revisions, axis=2) - revisions[:, :, :1]
    surprise = rng.standard_t(5, (n, n_q)) / np.sqrt(5 / 3) * eps_std
    eps_actual = consensus[:, :, -1] + surprise
    sue = np.clip((eps_actual - consensus[:, :, -1]) / eps_std, -4, 4)
    n_analysts = np.clip(np.round(3 + 25 * size_rank + rng.normal(0, 3, n)), 1, 40).astype(int)

    def impulses_at(idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Scatter (symbol, k) impulses onto the (day, symbol) grid; events off the grid drop out."""
        grid = np.zeros((t_days, n))
        sym = np.broadcast_to(np.arange(n).reshape((n,) + (1,) * (idx.ndim - 1)), idx.shape)
        ok = (idx >= 0) & (idx < t_days)
        np.add.at(grid, (idx[ok], sym[ok]), values[ok])
        return grid

    states["pead"] = _decay_filter(impulses_at(report_idx, sue), CHANNEL_DECAY["pead"])
    rev_z = np.diff(consensus, axis=2) / eps_std[:, :, None]
    states["revision"] = _decay_filter(impulses_at(snap_idx[:, :, 1:], rev_z), CHANNEL_DECAY["revision"])

    # balance sheet and accruals
    mcap0 = np.exp(log_mcap0)
    book_equity = (book_to_price * mcap0)[:, None] * (1 + growth[:, None]) ** np.arange(n_q)[None, :]
    leverage = np.clip(rng.normal(0.55, 0.15, n), 0.1, 0.9)
    total_assets = book_equity / (1 - leverage[:, None])
    total_liabilities = total_assets - book_equity
    accrual_ratio = rng.normal(0, 0.02, n)[:, None] + rng.normal(0, 0.025, (n, n_q))
    net_income = eps_actual * shares_out[:, None]
    op_cash_flow = net_income - accrual_ratio * total_assets
    margin = np.clip(rng.normal(0.12, 0.05, n), 0.03, 0.35)
    revenue = (
        np.abs(eps_trend) * shares_out[:, None] / margin[:, None] * np.exp(rng.normal(0, 0.05, (n, n_q)))
    )
    acc_update = impulses_at(report_idx, np.ones_like(accrual_ratio)) > 0
    acc_val = impulses_at(report_idx, -accrual_ratio)
    last = _ffill_index(acc_update)
    states["accruals"] = np.where(last >= 0, acc_val[np.maximum(last, 0), np.arange(n)[None, :]], 0.0)

    # options: call-put implied-volatility spread (persistent, observed with noise)
    cp_latent = _ar1(rng, (t_days, n), 0.95, 0.02)
    cp_spread = cp_latent + rng.normal(0, 0.006, (t_days, n))
    iv_level = vol * np.sqrt(252) * 1.1 + 0.03 + np.abs(rng.normal(0, 0.01, (t_days, n)))
    iv_call = np.maximum(iv_level + cp_spread / 2, 0.02)
    iv_put = np.maximum(iv_level - cp_spread / 2, 0.02)
    cp_z = (iv_call - iv_put) / 0.02
    states["iv_spread"] = _decay_filter(cp_z, 0.7) * 0.3

    # short interest: twice a month, published ~8 business days after settlement
    month_groups = pd.Series(calendar).groupby([calendar.year, calendar.month])
    settle = sorted(
        {int(np.searchsorted(calendar, g.iloc[0] + pd.Timedelta(days=14))) for _, g in month_groups}
        | {int(g.index[-1]) for _, g in month_groups}
    )
    settle_idx = np.array([s for s in settle if s < t_days])
    publish_idx = settle_idx + 8
    n_settle = len(settle_idx)
    si_mean = np.log(rng.uniform(0.01, 0.08, n))
    si_log = si_mean[None, :] + _ar1(rng, (n_settle, n), 0.85, 0.45)
    si_ratio = np.clip(np.exp(si_log), 0.001, 0.4)
    pub_grid = np.zeros((t_days, n), dtype=bool)
    si_on_grid = np.zeros((t_days, n))
    ok = publish_idx < t_days
    pub_grid[publish_idx[ok]] = True
    si_on_grid[publish_idx[ok]] = np.log(si_ratio[ok])
    last = _ffill_index(pub_grid)
    si_known = np.where(last >= 0, si_on_grid[np.maximum(last, 0), np.arange(n)[None, :]], np.nan)
    si_z = _cs_zscore(np.nan_to_num(si_known, nan=np.nanmean(si_mean)), live & (last >= 0))
    cp_smooth = _decay_filter(cp_z, 0.7) * 0.3
    states["short_interest_iv"] = -_relu(si_z - 0.25) * _relu(0.5 - cp_smooth)

    # insider trades: scattered buys and sells plus occasional clusters of buys
    buys = (rng.random((t_days, n)) < 1 / 150).astype(np.int16)
    cluster_start = rng.random((t_days, n)) < 1 / 700
    for lag in (0, 2, 5):
        buys[lag:] += cluster_start[: t_days - lag]
    sells = (rng.random((t_days, n)) < 1 / 45).astype(np.int16)
    buys = buys * live.astype(np.int16)
    sells = sells * live.astype(np.int16)
    filing_lag_buy = rng.choice(np.array([1, 2, 3], dtype=np.int8), size=(t_days, n), p=[0.25, 0.6, 0.15])
    filing_lag_sell = rng.choice(np.array([1, 2, 3], dtype=np.int8), size=(t_days, n), p=[0.25, 0.6, 0.15])
    buy_filings = np.zeros((t_days, n))
    for lag in (1, 2, 3):
        sel = buys * (filing_lag_buy == lag)
        buy_filings[lag:] += sel[: t_days - lag]
    trailing = np.cumsum(buy_filings, axis=0)
    trailing = trailing - np.vstack([np.zeros((30, n)), trailing[:-30]])
    states["insider_cluster"] = _decay_filter(buy_filings * (trailing >= 2), CHANNEL_DECAY["insider_cluster"])

    # ETF flows: per sector ETF, pressure then reversal on the members
    etf_names = [s[1] for s in SECTORS]
    flow_z = _ar1(rng, (t_days, n_sec + 1), 0.2, 1.0)
    fast = _decay_filter(flow_z, 0.5)
    slow = _decay_filter(flow_z, 0.97)
    flow_state = fast - 0.06 * slow
    states["etf_flow"] = flow_state[:, sector_of]
    etf_aum = np.exp(rng.uniform(np.log(5e9), np.log(6e10), n_sec + 1))
    etf_aum[-1] = 4e11
    net_flow_usd = flow_z * 0.002 * etf_aum[None, :]

    # order imbalance: observed daily in prices, continues for about a day
    oi_latent = _ar1(rng, (t_days, n), 0.0, 0.45)  # unpredictable itself: only the planted channel predicts
    order_imbalance = np.tanh(oi_latent)
    states["order_imbalance"] = _decay_filter(order_imbalance, CHANNEL_DECAY["order_imbalance"])
    log("exogenous channels built")

    # --- channel weights ----------------------------------------------------------------------
    strength = np.array([config.channel_strength[c] for c in CHANNEL_STRENGTH])
    strength = strength / np.sqrt((strength**2).sum())
    target = dict(zip(CHANNEL_STRENGTH, strength * config.alpha_5d, strict=True))

    def five_day(c: str) -> float:
        d = CHANNEL_DECAY[c]
        return 5.0 if d == 1.0 else (1 - d**5) / (1 - d)

    weights_w: dict[str, float] = {}
    for c, st in states.items():
        weights_w[c] = target[c] / (five_day(c) * _pooled_sd(st, live))
    rev_d = CHANNEL_DECAY["residual_reversal"]
    weights_w["residual_reversal"] = -target["residual_reversal"] / (
        five_day("residual_reversal") / np.sqrt(1 - rev_d**2)
    )
    weights_w["residual_momentum"] = target["residual_momentum"] / five_day("residual_momentum")
    decay_idx = int(config.decay_fraction * t_days)
    alive = np.ones(t_days)
    alive[decay_idx:] = 0.0  # state at t >= decay_idx no longer moves returns of t+1

    exo_mu = np.zeros((t_days, n))
    for c, st in states.items():
        gate = alive[:, None] if c == config.dying_channel else 1.0
        exo_mu += weights_w[c] * st * gate
    log("channel weights set")

    # --- the day loop: momentum and reversal depend on realized returns --------------------------
    momentum_sign = np.where(stressed, -1.8, 1.0)
    oi_impact = 0.3 * idio_sd
    returns = np.empty((t_days, n))
    rev_state = np.zeros((t_days, n))
    mom_state = np.zeros((t_days, n))
    cum_resid = np.zeros((t_days, n))
    x_rev = np.zeros(n)
    running = np.zeros(n)
    for t in range(t_days):
        mu = np.zeros(n)
        if t > 0:
            mu = (
                exo_mu[t - 1]
                + weights_w["residual_reversal"] * x_rev
                + weights_w["residual_momentum"] * mom_state[t - 1]
            )
        resid = mu + vol[t] * shocks[t] + oi_impact * order_imbalance[t]
        returns[t] = factor_ret[t] + resid
        x_rev = rev_d * x_rev + resid / idio_sd
        rev_state[t] = x_rev
        running = running + np.where(live[t], resid, 0.0)
        cum_resid[t] = running
        if t >= 252:
            mom = cum_resid[t - 21] - cum_resid[t - 252]
            ok_live = live[t] & (listed <= t - 252)
            if ok_live.sum() > 5:
                mom_state[t] = _cs_zscore(mom[None, :], ok_live[None, :])[0] * momentum_sign[t]
    returns = np.clip(returns, -0.6, 1.5)
    log("returns simulated")

    # --- oracle: per-channel 5-day contributions, gathered on live (symbol, date) cells -----------
    states["residual_reversal"] = rev_state
    states["residual_momentum"] = mom_state
    ii, tt = np.nonzero(live.T)  # symbol-major: rows come out sorted by (symbol, date)
    oracle = pd.DataFrame(
        {
            "date": calendar.values.astype("datetime64[D]")[tt],
            "symbol": pd.Categorical.from_codes(ii, categories=symbols),
            "er_1d": exo_mu[tt, ii],
        }
    )
    oracle["er_1d"] += weights_w["residual_reversal"] * rev_state[tt, ii]
    oracle["er_1d"] += weights_w["residual_momentum"] * mom_state[tt, ii]
    er_5d = np.zeros(len(oracle))
    for c in CHANNEL_STRENGTH:
        gate = alive[tt] if c == config.dying_channel else 1.0
        contribution = weights_w[c] * five_day(c) * states[c][tt, ii] * gate
        oracle[f"ch_{c}"] = contribution
        er_5d += contribution
    oracle.insert(3, "er_5d", er_5d)
    del states, exo_mu, rev_state, mom_state, cum_resid, shocks, contribution

    # --- prices and microstructure -----------------------------------------------------------
    log_close = np.log(price0)[None, :] + np.cumsum(np.log1p(returns), axis=0)
    close = np.exp(log_close)
    prev_close = np.vstack([price0[None, :], close[:-1]])
    gap = 0.3 * np.log1p(returns) + rng.normal(0, 0.2, (t_days, n)) * vol
    open_ = prev_close * np.exp(gap)
    hi_ext = np.abs(rng.normal(0, 0.5, (t_days, n))) * vol
    lo_ext = np.abs(rng.normal(0, 0.5, (t_days, n))) * vol
    high = np.maximum(open_, close) * np.exp(hi_ext)
    low = np.minimum(open_, close) * np.exp(-lo_ext)
    del hi_ext, lo_ext, gap, prev_close
    vwap = np.clip(close * np.exp(rng.normal(0, 0.3, (t_days, n)) * vol), low, high)
    adv_shares = shares_out * np.exp(rng.normal(np.log(0.006), 0.3, n))
    surprise_vol = np.abs(returns - factor_ret) / np.maximum(vol, 1e-6)
    volume = np.round(
        adv_shares[None, :] * np.exp(rng.normal(0, 0.35, (t_days, n))) * (0.7 + 0.3 * surprise_vol)
    )
    spread_bps = np.exp(np.log(30) + (np.log(2) - np.log(30)) * size_rank)[None, :]
    spread_bps = np.clip(spread_bps * np.sqrt(h) ** 0.5 * np.exp(rng.normal(0, 0.15, (t_days, n))), 1.0, 80.0)

    # --- ETFs: cap-weighted members, with a little tracking noise -------------------------------
    mcap = close * shares_out[None, :] * live
    prev_mcap = np.vstack([np.zeros((1, n)), mcap[:-1]])
    etf_ret = np.empty((t_days, n_sec + 1))
    for s in range(n_sec):
        m = sector_of == s
        w = prev_mcap[:, m]
        wsum = w.sum(axis=1)
        eq = np.where(live[:, m], returns[:, m], 0.0).sum(axis=1) / np.maximum(live[:, m].sum(axis=1), 1)
        etf_ret[:, s] = np.where(wsum > 0, (w * returns[:, m]).sum(axis=1) / np.where(wsum > 0, wsum, 1), eq)
    wall = prev_mcap.sum(axis=1)
    etf_ret[:, -1] = np.where(
        wall > 0, (prev_mcap * returns).sum(axis=1) / np.where(wall > 0, wall, 1), f_mkt
    )
    etf_ret = etf_ret + rng.normal(0, 0.0002, etf_ret.shape)
    etf_close = 100 * np.exp(np.cumsum(np.log1p(etf_ret), axis=0))
    etf_volume = np.round(
        etf_aum[None, :] / etf_close[0][None, :] * 0.01 * np.exp(rng.normal(0, 0.3, etf_close.shape))
    )
    log("prices, microstructure and ETFs built")

    # --- tables --------------------------------------------------------------------------------
    tables = _assemble_tables(
        calendar=calendar,
        symbols=symbols,
        live=live,
        listed=listed,
        delisted=delisted,
        sector_of=sector_of,
        industry_of=industry_of,
        etf_names=etf_names,
        prices={
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "vwap": vwap,
            "spread_bps": spread_bps,
            "order_imbalance": order_imbalance,
        },
        fundamentals={
            "q_ends": q_ends,
            "report_idx": report_idx,
            "report_dates": report_dates,
            "eps": eps_actual,
            "revenue": revenue,
            "net_income": net_income,
            "operating_cash_flow": op_cash_flow,
            "total_assets": total_assets,
            "total_liabilities": total_liabilities,
            "book_equity": book_equity,
            "shares_outstanding": np.broadcast_to(shares_out[:, None], (n, n_q)),
        },
        estimates={
            "snap_idx": snap_idx,
            "consensus": consensus,
            "eps_std": np.broadcast_to(eps_std[:, :, None], consensus.shape),
            "n_analysts": n_analysts,
        },
        short_interest={
            "settle_idx": settle_idx,
            "publish_idx": publish_idx,
            "si_ratio": si_ratio,
            "shares_out": shares_out,
            "volume": volume,
        },
        options={"iv_call": iv_call, "iv_put": iv_put},
        insider={
            "buys": buys,
            "sells": sells,
            "lag_buy": filing_lag_buy,
            "lag_sell": filing_lag_sell,
            "close": close,
        },
        etf={"close": etf_close, "volume": etf_volume, "net_flow_usd": net_flow_usd},
        rng=rng,
    )

    regimes = pd.DataFrame(
        {"date": calendar.values.astype("datetime64[D]"), "stressed": stressed, "market_factor": f_mkt}
    )
    meta = {
        "config": asdict(config),
        "channels": list(CHANNEL_STRENGTH),
        "channel_decay": CHANNEL_DECAY,
        "channel_weights": {k: float(v) for k, v in weights_w.items()},
        "dying_channel": config.dying_channel,
        "decay_date": str(calendar[decay_idx].date()),
        "decoy_fields": list(DECOY_FIELDS),
        "market_etf": MARKET_ETF,
        "er_definition": "er_5d: expected sum of returns over t+1..t+5 given information at the close of t",
    }
    return Market(tables=tables, oracle=oracle, regimes=regimes, meta=meta)


def _assemble_tables(
    *,
    calendar,
    symbols,
    live,
    listed,
    delisted,
    sector_of,
    industry_of,
    etf_names,
    prices,
    fundamentals,
    estimates,
    short_interest,
    options,
    insider,
    etf,
    rng,
) -> dict[str, pd.DataFrame]:
    """Turn simulated matrices into long contract tables, dropping anything outside a listing."""
    t_days, n = live.shape
    dates = calendar.values.astype("datetime64[D]")
    last_day = t_days - 1

    securities = pd.DataFrame(
        {
            "symbol": symbols,
            "name": [f"Synthetic Corp {s[1:]}" for s in symbols],
            "sector": [SECTORS[s][0] for s in sector_of],
            "industry": industry_of,
            "etf": [etf_names[s] for s in sector_of],
            "listed_date": dates[listed],
            "delisted_date": [dates[d] if d < last_day else None for d in delisted],
        }
    )

    pii, ptt = np.nonzero(live.T)  # symbol-major, so the big tables need no sort
    sym_codes = pd.Categorical.from_codes(pii, categories=symbols)
    price_frame = pd.DataFrame({"date": dates[ptt], "symbol": sym_codes})
    for col in ("open", "high", "low", "close", "vwap"):
        price_frame[col] = np.round(prices[col][ptt, pii], 4)
    price_frame["volume"] = prices["volume"][ptt, pii]
    price_frame["spread_bps"] = np.round(prices["spread_bps"][ptt, pii], 3)
    price_frame["order_imbalance"] = np.round(prices["order_imbalance"][ptt, pii], 5)
    # rounding may push open/close/vwap a hair outside the range: widen the range, never the prices
    high_col, low_col = price_frame["high"].to_numpy().copy(), price_frame["low"].to_numpy().copy()
    for col in ("open", "close", "vwap"):
        np.maximum(high_col, price_frame[col].to_numpy(), out=high_col)
        np.minimum(low_col, price_frame[col].to_numpy(), out=low_col)
    price_frame["high"], price_frame["low"] = high_col, low_col

    def visible(day: np.ndarray, sym: np.ndarray) -> np.ndarray:
        return (day >= 0) & (day < t_days) & (day >= listed[sym]) & (day <= delisted[sym])

    # fundamentals
    n_q = fundamentals["report_idx"].shape[1]
    ii, qq = np.meshgrid(np.arange(n), np.arange(n_q), indexing="ij")
    ridx = fundamentals["report_idx"]
    # reports from before the sample are public history for names listed from the start
    keep = visible(ridx, ii) | ((ridx == -1) & (listed[ii] == 0))
    fund = pd.DataFrame(
        {
            "symbol": symbols[ii[keep]],
            "period_end": fundamentals["q_ends"].values.astype("datetime64[D]")[qq[keep]],
            "report_date": fundamentals["report_dates"][keep],
        }
    )
    for col in (
        "eps",
        "revenue",
        "net_income",
        "operating_cash_flow",
        "total_assets",
        "total_liabilities",
        "book_equity",
        "shares_outstanding",
    ):
        fund[col] = np.round(np.asarray(fundamentals[col])[keep], 4)

    # estimates
    sidx = estimates["snap_idx"]
    i3 = np.broadcast_to(np.arange(n)[:, None, None], sidx.shape)
    q3 = np.broadcast_to(np.arange(n_q)[None, :, None], sidx.shape)
    keep = visible(sidx, i3)
    est = pd.DataFrame(
        {
            "symbol": symbols[i3[keep]],
            "period_end": fundamentals["q_ends"].values.astype("datetime64[D]")[q3[keep]],
            "as_of_date": dates[np.clip(sidx[keep], 0, last_day)],
            "consensus_eps": np.round(estimates["consensus"][keep], 4),
            "eps_std": np.round(estimates["eps_std"][keep], 4),
            "n_analysts": estimates["n_analysts"][i3[keep]].astype("int64"),
        }
    )

    # short interest
    si = short_interest
    kk, ii = np.meshgrid(np.arange(len(si["settle_idx"])), np.arange(n), indexing="ij")
    settle = si["settle_idx"][kk]
    publish = si["publish_idx"][kk]
    keep = visible(publish, ii) & (settle >= listed[ii])
    vol_cum = np.cumsum(np.vstack([np.zeros((1, n)), si["volume"]]), axis=0)
    start = np.maximum(settle - 19, 0)
    adv = (vol_cum[settle + 1, ii] - vol_cum[start, ii]) / (settle + 1 - start)
    short = pd.DataFrame(
        {
            "symbol": symbols[ii[keep]],
            "settlement_date": dates[settle[keep]],
            "publish_date": dates[np.minimum(publish[keep], last_day)],
            "shares_short": np.round(si["si_ratio"][kk, ii][keep] * si["shares_out"][ii[keep]]),
            "avg_daily_volume": np.round(adv[keep]),
        }
    )

    options_iv = pd.DataFrame(
        {
            "date": dates[ptt],
            "symbol": sym_codes,
            "iv_call_30d": np.round(options["iv_call"][ptt, pii], 5),
            "iv_put_30d": np.round(options["iv_put"][ptt, pii], 5),
        }
    )

    # insider trades: one row per trade
    frames = []
    for side, counts, lags in (
        ("B", insider["buys"], insider["lag_buy"]),
        ("S", insider["sells"], insider["lag_sell"]),
    ):
        tt, ii = np.nonzero(counts)
        reps = counts[tt, ii]
        tt, ii = np.repeat(tt, reps), np.repeat(ii, reps)
        filing = tt + lags[tt, ii]
        keep = visible(filing, ii)
        tt, ii, filing = tt[keep], ii[keep], filing[keep]
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbols[ii],
                    "trade_date": dates[tt],
                    "filing_date": dates[filing],
                    "shares": np.round(np.exp(rng.normal(np.log(20000), 1.0, len(tt)))),
                    "price": np.round(insider["close"][tt, ii], 4),
                    "side": side,
                }
            )
        )
    insider_trades = pd.concat(frames, ignore_index=True)

    all_etfs = list(etf_names) + [MARKET_ETF]
    tt, ee = np.meshgrid(np.arange(t_days), np.arange(len(all_etfs)), indexing="ij")
    etf_prices = pd.DataFrame(
        {
            "date": dates[tt.ravel()],
            "etf": np.array(all_etfs)[ee.ravel()],
            "close": np.round(etf["close"].ravel(), 4),
            "volume": etf["volume"].ravel(),
        }
    )
    etf_flows = pd.DataFrame(
        {
            "date": dates[tt.ravel()],
            "etf": np.array(all_etfs)[ee.ravel()],
            "net_flow_usd": np.round(etf["net_flow_usd"].ravel(), 0),
        }
    )

    out = {
        "securities": securities,
        "prices": price_frame,
        "etf_prices": etf_prices,
        "etf_flows": etf_flows,
        "fundamentals": fund,
        "estimates": est,
        "short_interest": short,
        "options_iv": options_iv,
        "insider_trades": insider_trades,
    }
    presorted = {"prices", "options_iv"}
    for name, frame in out.items():
        table = TABLES[name]
        if name in presorted:
            out[name] = frame[list(table.columns)]
            continue
        sort_cols = list(table.key) or [
            c for c in frame.columns if c in ("symbol", "trade_date", "filing_date", "side")
        ]
        out[name] = frame[list(table.columns)].sort_values(sort_cols, kind="stable").reset_index(drop=True)
    return out


# ----------------------------------------------------------------------------------------------
# writing


def _arrow_schema(name: str) -> pa.Schema:
    types = {
        "date": pa.date32(),
        "str": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "side": pa.string(),
    }
    return pa.schema([(c, types[t]) for c, t in TABLES[name].columns.items()])


def to_arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    """A contract table as Arrow with the contract's exact types (dates as date32)."""
    schema = _arrow_schema(name)
    arrays = []
    for fld in schema:
        col = frame[fld.name]
        if pa.types.is_date32(fld.type):
            values = pd.to_datetime(col).to_numpy().astype("datetime64[D]")
            arrays.append(pa.array(values, type=pa.date32(), from_pandas=True))
        else:
            arrays.append(pa.array(col, type=fld.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=False)


def write_market(config: MarketConfig, raw_dir: Path, log: Callable[[str], None] | None = None) -> str:
    """Generate the market and write raw/ and oracle/ (beside raw/) atomically."""
    import shutil
    import tempfile

    log = log or (lambda _m: None)
    market = generate_market(config, log=log)
    raw_dir = Path(raw_dir)
    oracle_dir = raw_dir.parent / "oracle"
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".aurora-generate-", dir=raw_dir.parent))
    try:
        (staging / "raw").mkdir()
        (staging / "oracle").mkdir()
        for name, frame in market.tables.items():
            _write_parquet(to_arrow(name, frame), staging / "raw" / f"{name}.parquet")
        (staging / "raw" / "_source.json").write_text(
            json.dumps({"source": "synthetic", "seed": config.seed}, indent=2, sort_keys=True) + "\n"
        )
        for frame, name in ((market.oracle, "expected_returns"), (market.regimes, "regimes")):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            table = table.set_column(0, "date", table.column("date").cast(pa.date32()))
            if "symbol" in frame:
                table = table.set_column(1, "symbol", table.column("symbol").cast(pa.string()))
            _write_parquet(table.replace_schema_metadata(None), staging / "oracle" / f"{name}.parquet")
        (staging / "oracle" / "meta.json").write_text(
            json.dumps(market.meta, indent=2, sort_keys=True) + "\n"
        )
        for target, built in ((raw_dir, staging / "raw"), (oracle_dir, staging / "oracle")):
            backup = staging / f"old-{target.name}"
            if target.exists():
                target.rename(backup)
            built.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    prices = market.tables["prices"]
    first, last = (pd.Timestamp(prices["date"].min()).date(), pd.Timestamp(prices["date"].max()).date())
    return (
        f"{config.n_symbols} symbols x {config.n_days} days ({first}..{last}), "
        f"{len(prices):,} price rows to {raw_dir} and the oracle to {oracle_dir}"
    )
