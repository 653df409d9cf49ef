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

The steps live in ml/data/: market_universe (names, factors, volatility), market_inputs (the observable
inputs and channel states), market_returns (channel weights, the day loop, the oracle), market_prices
(prices, microstructure, ETFs) and market_tables (the contract's tables, written atomically); this
module runs them in order on one random stream and assembles the Market.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ml.contract import MARKET_ETF
from ml.data.market_config import (
    CHANNEL_DECAY,
    CHANNEL_STRENGTH,
    DECOY_FIELDS,
    EXTRA_CHANNEL_DECAY,
    SECTORS,
    Market,
    MarketConfig,
)
from ml.data.market_inputs import _simulate_inputs
from ml.data.market_prices import _simulate_prices
from ml.data.market_returns import _simulate_returns
from ml.data.market_tables import _assemble_tables, to_arrow, write_market_files
from ml.data.market_universe import _simulate_factors, _simulate_universe

__all__ = [
    "CHANNEL_DECAY",
    "CHANNEL_STRENGTH",
    "DECOY_FIELDS",
    "EXTRA_CHANNEL_DECAY",
    "SECTORS",
    "Market",
    "MarketConfig",
    "generate_market",
    "to_arrow",
    "write_market",
]


# ----------------------------------------------------------------------------------------------
# the simulation


def generate_market(config: MarketConfig, log: Callable[[str], None] | None = None) -> Market:
    """Simulate the whole market in memory. Deterministic given `config`."""
    log = log or (lambda _m: None)
    rng = np.random.default_rng(config.seed)
    n, t_days = config.n_symbols, config.n_days
    calendar = pd.bdate_range(config.start, periods=t_days)

    # every step draws from `rng` in turn: their order is the market's
    u = _simulate_universe(config, rng)
    f = _simulate_factors(config, rng, u)
    log("universe, factors and volatility simulated")
    x = _simulate_inputs(config, rng, calendar, u, f)
    log("exogenous channels built")
    returns, oracle, weights_w, decay_idx = _simulate_returns(config, calendar, u, f, x, log)
    p = _simulate_prices(config, rng, u, f, returns, x.etf_aum)
    log("prices, microstructure and ETFs built")
    planted = config.channel_strength

    # --- tables --------------------------------------------------------------------------------
    tables = _assemble_tables(
        calendar=calendar,
        symbols=u.symbols,
        live=u.live,
        listed=u.listed,
        delisted=u.delisted,
        sector_of=u.sector_of,
        industry_of=u.industry_of,
        etf_names=x.etf_names,
        prices={
            "open": p.open_,
            "high": p.high,
            "low": p.low,
            "close": p.close,
            "volume": p.volume,
            "vwap": p.vwap,
            "spread_bps": p.spread_bps,
            "order_imbalance": x.order_imbalance,
        },
        fundamentals={
            "q_ends": x.q_ends,
            "report_idx": x.report_idx,
            "report_dates": x.report_dates,
            "eps": x.eps_actual,
            "revenue": x.revenue,
            "net_income": x.net_income,
            "operating_cash_flow": x.op_cash_flow,
            "total_assets": x.total_assets,
            "total_liabilities": x.total_liabilities,
            "book_equity": x.book_equity,
            "shares_outstanding": np.broadcast_to(u.shares_out[:, None], (n, x.n_q)),
        },
        estimates={
            "snap_idx": x.snap_idx,
            "consensus": x.consensus,
            "eps_std": np.broadcast_to(x.eps_std[:, :, None], x.consensus.shape),
            "n_analysts": x.n_analysts,
            "covered": x.covered,
        },
        short_interest={
            "settle_idx": x.settle_idx,
            "publish_idx": x.publish_idx,
            "si_ratio": x.si_ratio,
            "shares_out": u.shares_out,
            "volume": p.volume,
        },
        options={"iv_call": x.iv_call, "iv_put": x.iv_put},
        insider={
            "buys": x.buys,
            "sells": x.sells,
            "lag_buy": x.filing_lag_buy,
            "lag_sell": x.filing_lag_sell,
            "close": p.close,
        },
        etf={"close": p.etf_close, "volume": p.etf_volume, "net_flow_usd": x.net_flow_usd},
        rng=rng,
        tables=config.tables,
        price_columns=config.price_columns,
    )

    regimes = pd.DataFrame(
        {"date": calendar.values.astype("datetime64[D]"), "stressed": f.stressed, "market_factor": f.f_mkt}
    )
    covered = x.covered
    meta = {
        "config": asdict(config),
        "scenario": config.scenario,
        "channels": list(planted),
        "channel_decay": {c: config.decay(c) for c in planted},
        "channel_weights": {k: float(v) for k, v in weights_w.items() if k in planted},
        "dying_channel": config.dying_channel,
        "decay_date": str(calendar[decay_idx].date()) if config.dying_channel else None,
        "decoy_fields": list(DECOY_FIELDS),
        "market_etf": MARKET_ETF,
        "tables_written": sorted(tables),
        "er_definition": "er_5d: expected sum of returns over t+1..t+5 given information at the close of t",
    }
    if config.alpha_5d == 0:
        meta["zero_alpha"] = "er_1d, er_5d and every ch_ column are exactly 0: returns hold no planted alpha"
    if not covered.all():
        meta["analyst_coverage"] = float(covered.mean())
    return Market(tables=tables, oracle=oracle, regimes=regimes, meta=meta)


def write_market(config: MarketConfig, raw_dir: Path, log: Callable[[str], None] | None = None) -> str:
    """Generate the market and write raw/ and oracle/ (beside raw/) atomically."""
    market = generate_market(config, log=log)
    raw_dir = Path(raw_dir)
    write_market_files(market, raw_dir, seed=config.seed)
    prices = market.tables["prices"]
    first, last = (pd.Timestamp(prices["date"].min()).date(), pd.Timestamp(prices["date"].max()).date())
    return (
        f"scenario {config.scenario}: {config.n_symbols} symbols x {config.n_days} days ({first}..{last}), "
        f"{len(prices):,} price rows to {raw_dir} and the oracle to {raw_dir.parent / 'oracle'}"
    )
