"""The synthetic market's names (sectors, sizes, listings) and the factors, regimes and volatility moving them.

The first two steps of `ml.market.generate_market`, in its order of random draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.data.market_config import SECTORS, MarketConfig


@dataclass
class Universe:
    """The names: symbol, sector and industry, starting size and price, shares, listing window."""

    symbols: np.ndarray
    sector_of: np.ndarray
    industry_of: np.ndarray
    log_mcap0: np.ndarray
    size_rank: np.ndarray  # 0 smallest, 1 largest
    price0: np.ndarray
    shares_out: np.ndarray
    book_to_price: np.ndarray
    listed: np.ndarray  # index of the first live day
    delisted: np.ndarray  # index of the last live day
    live: np.ndarray  # (days x symbols): listed and not yet delisted


@dataclass
class Factors:
    """Regimes, factor returns and idiosyncratic volatility ((days x symbols) where two-dimensional)."""

    stressed: np.ndarray
    f_mkt: np.ndarray
    n_sec: int
    factor_ret: np.ndarray
    idio_sd: np.ndarray
    shocks: np.ndarray
    h: np.ndarray
    vol: np.ndarray


def _simulate_universe(config: MarketConfig, rng: np.random.Generator) -> Universe:
    """Sectors, industries, sizes and listing windows (the first draws of the market's stream)."""
    n, t_days = config.n_symbols, config.n_days
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
    mcap_lo, mcap_hi = config.mcap_range  # default $300M .. $800B
    log_mcap0 = rng.uniform(np.log(mcap_lo), np.log(mcap_hi), n)
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
    return Universe(
        symbols=symbols, sector_of=sector_of, industry_of=industry_of, log_mcap0=log_mcap0,
        size_rank=size_rank, price0=price0, shares_out=shares_out, book_to_price=book_to_price,
        listed=listed, delisted=delisted, live=live,
    )


def _simulate_factors(config: MarketConfig, rng: np.random.Generator, universe: Universe) -> Factors:
    """The calm/stressed regime chain, market, sector and style factors, GARCH-like idiosyncratic volatility."""
    n, t_days = config.n_symbols, config.n_days
    sector_of, size_rank = universe.sector_of, universe.size_rank
    log_mcap0, book_to_price = universe.log_mcap0, universe.book_to_price

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
    return Factors(
        stressed=stressed, f_mkt=f_mkt, n_sec=n_sec, factor_ret=factor_ret, idio_sd=idio_sd, shocks=shocks,
        h=h, vol=vol,
    )
