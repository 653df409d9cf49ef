"""The synthetic market's constants, channels and configuration (knobs default to the default market).

`MarketConfig()` is today's default market; every knob added for a scenario defaults to the value that
reproduces it exactly, so the default path is bit-identical. Scenarios (`ml/data/scenarios.py`) are
named factories that return a `MarketConfig` with other knobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ml.contract import OPTIONAL_TABLES, TABLES

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
# These are the default market's channels; scenarios pick their own set (see EXTRA_CHANNEL_DECAY).
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

# Channels the default market does not use; scenarios switch them on through `channel_strength`.
EXTRA_CHANNEL_DECAY: dict[str, float] = {
    "value": 1.0,  # book-to-market with the current price (fundamentals + prices), a level
    "profitability": 1.0,  # trailing four-quarter ROE (fundamentals, from report_date), a level
    "insider_net_90d": 1.0,  # net insider buy filings over 90 days (a window sum, held as a level)
    "short_interest_tail": 1.0,  # convex penalty on the heavily shorted tail only (short_interest)
    "flow_shock_reversal": 0.9,  # reversal after extreme ETF flows only (etf_flows)
}

# What each channel reads: a channel may only be planted when its inputs are written.
CHANNEL_REQUIRES: dict[str, tuple[str, ...]] = {
    "pead": ("fundamentals", "estimates"),
    "revision": ("estimates",),
    "accruals": ("fundamentals",),
    "residual_reversal": (),
    "residual_momentum": (),
    "short_interest_iv": ("short_interest", "options_iv"),
    "iv_spread": ("options_iv",),
    "insider_cluster": ("insider_trades",),
    "etf_flow": ("etf_flows",),
    "order_imbalance": ("prices.order_imbalance",),
    "value": ("fundamentals",),
    "profitability": ("fundamentals",),
    "insider_net_90d": ("insider_trades",),
    "short_interest_tail": ("short_interest",),
    "flow_shock_reversal": ("etf_flows",),
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

if TYPE_CHECKING:
    import pandas as pd

PRICE_OPTIONAL_COLUMNS = tuple(TABLES["prices"].optional_columns)


@dataclass(frozen=True)
class MarketConfig:
    n_symbols: int = 130
    n_days: int = 2016
    seed: int = 7
    start: str = "2017-01-02"
    # cross-sectional sd of the 5-day oracle expected return, in return units (0: no alpha at all)
    alpha_5d: float = 0.0037
    dying_channel: str | None = "order_imbalance"  # None: no channel dies
    decay_fraction: float = 0.62  # where in the sample the dying channel stops working
    late_listing_fraction: float = 0.08
    delisting_fraction: float = 0.07
    # the planted channels and their relative strengths (keys: CHANNEL_DECAY or EXTRA_CHANNEL_DECAY)
    channel_strength: dict[str, float] = field(default_factory=lambda: dict(CHANNEL_STRENGTH))
    # --- scenario knobs; every default reproduces the default market bit for bit ------------------
    scenario: str = "default"
    channel_decay: dict[str, float] = field(default_factory=dict)  # per-channel overrides of the decay
    tables: tuple[str, ...] = OPTIONAL_TABLES  # optional tables written (securities, prices always)
    price_columns: tuple[str, ...] = PRICE_OPTIONAL_COLUMNS  # optional price columns written
    mcap_range: tuple[float, float] = (3e8, 8e11)  # initial market caps, log-uniform
    spread_bps_range: tuple[float, float] = (30.0, 2.0)  # quoted spread of the smallest, largest name
    analyst_coverage: float = 1.0  # fraction of names with estimates (larger names more likely)
    insider_rate: float = 1.0  # multiplies the frequency of insider trades
    short_interest_jump_rate: float = 0.0  # per-publication chance of a heavy-tailed short-interest jump
    flow_tail_df: float = 0.0  # 0: Gaussian ETF flows; else Student-t mixing with this many df
    small_cap_alpha_tilt: float = 0.0  # alpha scales with exp(tilt * (0.5 - size rank)), mean 1

    def __post_init__(self) -> None:
        if self.n_symbols < 22:
            raise ValueError(f"n_symbols must be at least 22 (two per sector), got {self.n_symbols}")
        if self.n_days < 300:
            raise ValueError(f"n_days must be at least 300 business days, got {self.n_days}")
        known = {**CHANNEL_DECAY, **EXTRA_CHANNEL_DECAY}
        unknown = sorted((set(self.channel_strength) | set(self.channel_decay)) - set(known))
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; known: {sorted(known)}")
        bad_tables = sorted(set(self.tables) - set(OPTIONAL_TABLES))
        bad_cols = sorted(set(self.price_columns) - set(PRICE_OPTIONAL_COLUMNS))
        if bad_tables or bad_cols:
            raise ValueError(f"unknown optional table(s) {bad_tables} or price column(s) {bad_cols}")
        have = set(self.tables) | {f"prices.{c}" for c in self.price_columns}
        for channel, strength in self.channel_strength.items():
            missing = [r for r in CHANNEL_REQUIRES[channel] if r not in have]
            if strength and missing:
                raise ValueError(f"channel {channel} reads {missing}, which this market does not write")
        if self.dying_channel is not None and self.dying_channel not in self.channel_strength:
            raise ValueError(f"dying_channel {self.dying_channel} is not a planted channel")
        if not 0 < self.analyst_coverage <= 1:
            raise ValueError(f"analyst_coverage must be in (0, 1], got {self.analyst_coverage}")
        if self.late_listing_fraction + self.delisting_fraction >= 0.9:
            raise ValueError("late_listing_fraction + delisting_fraction must stay under 0.9")

    def decay(self, channel: str) -> float:
        """Per-day persistence of a channel's state: the override, else the channel's own."""
        return self.channel_decay.get(channel, {**CHANNEL_DECAY, **EXTRA_CHANNEL_DECAY}[channel])


@dataclass
class Market:
    """The generated raw tables (contract names) and the oracle."""

    tables: dict[str, pd.DataFrame]
    oracle: pd.DataFrame
    regimes: pd.DataFrame
    meta: dict
