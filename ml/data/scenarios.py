"""Named synthetic-market scenarios: one place that says what each market is and how it is built.

A scenario is a documented factory returning a `MarketConfig`. They differ in their data-generating
process (which tables exist, coverage, tails, listings, which channels carry alpha, with which decays
and functional forms), not just in their seed. None is tuned to make Aurora look good: each aims to be
a plausible market. `default` is today's market, bit for bit. docs/scenarios.md describes each one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ml.data.market_config import MarketConfig


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str  # one line, as in the README
    build: Callable[[], MarketConfig]


def _default() -> MarketConfig:
    return MarketConfig()


def _price_only() -> MarketConfig:
    return MarketConfig(
        scenario="price_only",
        n_symbols=300,
        n_days=1512,
        seed=101,
        start="2015-01-02",
        tables=("etf_prices",),
        price_columns=(),  # OHLCV only, like ordinary daily data
        mcap_range=(1e10, 1e12),  # large caps
        spread_bps_range=(4.0, 1.0),
        late_listing_fraction=0.03,
        delisting_fraction=0.03,
        alpha_5d=0.003,
        channel_strength={"residual_reversal": 1.0, "residual_momentum": 0.35},
        channel_decay={"residual_reversal": 0.8},  # half-life about 3 days
        dying_channel=None,
    )


def _sparse() -> MarketConfig:
    return MarketConfig(
        scenario="sparse",
        n_symbols=250,
        n_days=1764,
        seed=303,
        start="2016-01-04",
        mcap_range=(1e8, 2e11),  # down to micro caps
        spread_bps_range=(60.0, 3.0),
        analyst_coverage=0.5,
        insider_rate=0.25,
        short_interest_jump_rate=0.08,
        flow_tail_df=3.0,
        late_listing_fraction=0.30,
        delisting_fraction=0.25,
        alpha_5d=0.0035,
        channel_strength={
            "pead": 0.8,  # covered names only
            "revision": 0.6,  # covered names only, shorter-lived
            "accruals": 0.5,
            "short_interest_tail": 0.8,  # convex, the heavily shorted tail only
            "flow_shock_reversal": 0.7,  # reversal after extreme flows only
            "insider_net_90d": 0.7,  # net buying over 90 days
            "residual_reversal": 0.6,
            "residual_momentum": 0.4,
        },
        channel_decay={"revision": 0.9, "residual_reversal": 0.5},
        dying_channel=None,
    )


def _slow() -> MarketConfig:
    return MarketConfig(
        scenario="slow",
        n_symbols=200,
        n_days=2016,
        seed=202,
        start="2014-01-02",
        alpha_5d=0.0025,
        channel_strength={
            "value": 1.0,  # book-to-market, a level
            "profitability": 0.8,  # trailing ROE, a level
            "accruals": 0.6,
            "pead": 0.6,  # half-life about 3 months
            "revision": 0.35,  # half-life about 2 months
            "residual_momentum": 0.35,
            "residual_reversal": 0.25,
        },
        channel_decay={"pead": 0.99, "revision": 0.985},
        dying_channel=None,
    )


def _no_alpha() -> MarketConfig:
    # same shape, sizes and seed as the default market (a paired control); the expected return is zero
    return MarketConfig(scenario="no_alpha", alpha_5d=0.0, dying_channel=None)


def _wide() -> MarketConfig:
    return MarketConfig(
        scenario="wide",
        n_symbols=800,
        n_days=1260,
        seed=404,
        start="2019-01-01",
        mcap_range=(1.5e8, 1e12),
        spread_bps_range=(50.0, 1.5),
        late_listing_fraction=0.12,
        delisting_fraction=0.10,
        small_cap_alpha_tilt=0.8,  # alpha is about 2.2x larger in the smallest names than the largest
        dying_channel="iv_spread",
        decay_fraction=0.65,
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("default", "today's market: 130 names x 2016 days, all tables, ten channels", _default),
        Scenario(
            "price_only",
            "300 large liquid names, only securities/prices (OHLCV)/etf_prices; residual reversal "
            "(half-life ~3 days) plus weak residual momentum",
            _price_only,
        ),
        Scenario(
            "sparse",
            "250 names down to micro caps, every table but patchy: 50% analyst coverage, rare insiders, "
            "heavy-tailed short interest and flows, 30% late listings and 25% delistings; threshold and "
            "long-window channels",
            _sparse,
        ),
        Scenario(
            "slow",
            "200 names; alpha mostly in value, profitability, accruals and slow earnings drift "
            "(half-lives of months)",
            _slow,
        ),
        Scenario(
            "no_alpha", "the default market's shape and seed with zero expected return everywhere", _no_alpha
        ),
        Scenario(
            "wide",
            "800 names x 1260 days, wider size range, alpha tilted to small caps, the IV-spread channel dies",
            _wide,
        ),
    )
}


def scenario_config(
    name: str = "default", *, n_symbols: int | None = None, n_days: int | None = None, seed: int | None = None
) -> MarketConfig:
    """The scenario's config, with its size or seed overridden where given."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    config = SCENARIOS[name].build()
    overrides = {"n_symbols": n_symbols, "n_days": n_days, "seed": seed}
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
