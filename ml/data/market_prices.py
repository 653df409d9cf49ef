"""The synthetic market's prices (OHLC, VWAP, volume, spreads) and ETFs, built around the simulated returns.

The fifth step of `ml.market.generate_market`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.data.market_config import MarketConfig
from ml.data.market_universe import Factors, Universe


@dataclass
class PricePaths:
    """Daily prices and microstructure of the names (days x symbols) and of the ETFs (days x ETFs)."""

    open_: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    vwap: np.ndarray
    spread_bps: np.ndarray
    etf_close: np.ndarray
    etf_volume: np.ndarray


def _simulate_prices(
    config: MarketConfig,
    rng: np.random.Generator,
    universe: Universe,
    factors: Factors,
    returns: np.ndarray,
    etf_aum: np.ndarray,
) -> PricePaths:
    """Prices and microstructure around the returns; ETFs cap-weight their members, with tracking noise."""
    n, t_days = config.n_symbols, config.n_days
    price0, shares_out, size_rank = universe.price0, universe.shares_out, universe.size_rank
    live, sector_of = universe.live, universe.sector_of
    f_mkt, factor_ret, h, vol, n_sec = factors.f_mkt, factors.factor_ret, factors.h, factors.vol, factors.n_sec

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
    sp_small, sp_large = config.spread_bps_range
    spread_bps = np.exp(np.log(sp_small) + (np.log(sp_large) - np.log(sp_small)) * size_rank)[None, :]
    spread_floor = min(1.0, sp_large / 2)
    spread_bps = np.clip(
        spread_bps * np.sqrt(h) ** 0.5 * np.exp(rng.normal(0, 0.15, (t_days, n))), spread_floor, 80.0
    )

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
    return PricePaths(
        open_=open_, high=high, low=low, close=close, volume=volume, vwap=vwap, spread_bps=spread_bps,
        etf_close=etf_close, etf_volume=etf_volume,
    )
