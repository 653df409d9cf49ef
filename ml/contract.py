"""The raw-data contract of DESIGN.md, in one place.

The generator writes it, ingest validates user files against it, and dbt's sources read it,
so the column lists, types, keys and publication rules live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# logical types: "str", "date", "float", "int", "side"
DATE, STR, FLOAT, INT, SIDE = "date", "str", "float", "int", "side"

MARKET_ETF = "SPY"


@dataclass(frozen=True)
class Table:
    """One raw table: its columns (name -> logical type), which are optional, and its rules."""

    name: str
    columns: dict[str, str]
    key: tuple[str, ...] = ()
    optional_columns: tuple[str, ...] = ()
    nullable: tuple[str, ...] = ()
    # (later, earlier): the later date may not precede the earlier one (publication after the fact)
    not_before: tuple[tuple[str, str], ...] = ()
    positive: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    symbol_column: str | None = "symbol"
    # feature views that cannot be built without this table
    feeds_views: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required_columns(self) -> list[str]:
        return [c for c in self.columns if c not in self.optional_columns]


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "securities",
            {
                "symbol": STR,
                "name": STR,
                "sector": STR,
                "industry": STR,
                "etf": STR,
                "listed_date": DATE,
                "delisted_date": DATE,
            },
            key=("symbol",),
            nullable=("delisted_date", "name", "industry", "etf", "listed_date"),
            not_before=(("delisted_date", "listed_date"),),
            symbol_column=None,
        ),
        Table(
            "prices",
            {
                "date": DATE,
                "symbol": STR,
                "open": FLOAT,
                "high": FLOAT,
                "low": FLOAT,
                "close": FLOAT,
                "volume": FLOAT,
                "vwap": FLOAT,
                "spread_bps": FLOAT,
                "order_imbalance": FLOAT,
            },
            key=("symbol", "date"),
            optional_columns=("vwap", "spread_bps", "order_imbalance"),
            positive=("open", "high", "low", "close", "vwap"),
            non_negative=("volume", "spread_bps"),
        ),
        Table(
            "etf_prices",
            {"date": DATE, "etf": STR, "close": FLOAT, "volume": FLOAT},
            key=("etf", "date"),
            positive=("close",),
            non_negative=("volume",),
            symbol_column=None,
        ),
        Table(
            "etf_flows",
            {"date": DATE, "etf": STR, "net_flow_usd": FLOAT},
            key=("etf", "date"),
            symbol_column=None,
            feeds_views=("alt_data",),
        ),
        Table(
            "fundamentals",
            {
                "symbol": STR,
                "period_end": DATE,
                "report_date": DATE,
                "eps": FLOAT,
                "revenue": FLOAT,
                "net_income": FLOAT,
                "operating_cash_flow": FLOAT,
                "total_assets": FLOAT,
                "total_liabilities": FLOAT,
                "book_equity": FLOAT,
                "shares_outstanding": FLOAT,
            },
            key=("symbol", "period_end"),
            not_before=(("report_date", "period_end"),),
            positive=("shares_outstanding", "total_assets"),
            non_negative=("revenue", "total_liabilities"),
            feeds_views=("fundamental",),
        ),
        Table(
            "estimates",
            {
                "symbol": STR,
                "period_end": DATE,
                "as_of_date": DATE,
                "consensus_eps": FLOAT,
                "eps_std": FLOAT,
                "n_analysts": INT,
            },
            key=("symbol", "period_end", "as_of_date"),
            non_negative=("eps_std", "n_analysts"),
            feeds_views=("fundamental", "alt_data"),
        ),
        Table(
            "short_interest",
            {
                "symbol": STR,
                "settlement_date": DATE,
                "publish_date": DATE,
                "shares_short": FLOAT,
                "avg_daily_volume": FLOAT,
            },
            key=("symbol", "settlement_date"),
            not_before=(("publish_date", "settlement_date"),),
            non_negative=("shares_short", "avg_daily_volume"),
            feeds_views=("alt_data",),
        ),
        Table(
            "options_iv",
            {"date": DATE, "symbol": STR, "iv_call_30d": FLOAT, "iv_put_30d": FLOAT},
            key=("symbol", "date"),
            positive=("iv_call_30d", "iv_put_30d"),
            feeds_views=("alt_data",),
        ),
        Table(
            "insider_trades",
            {
                "symbol": STR,
                "trade_date": DATE,
                "filing_date": DATE,
                "shares": FLOAT,
                "price": FLOAT,
                "side": SIDE,
            },
            not_before=(("filing_date", "trade_date"),),
            positive=("shares", "price"),
            feeds_views=("alt_data",),
        ),
    ]
}

REQUIRED_TABLES = ("securities", "prices")
OPTIONAL_TABLES = tuple(t for t in TABLES if t not in REQUIRED_TABLES)

# The date on which each table's row becomes public knowledge (point-in-time rule of DESIGN.md).
PUBLISH_DATE = {
    "prices": "date",
    "etf_prices": "date",
    "etf_flows": "date",
    "fundamentals": "report_date",
    "estimates": "as_of_date",
    "short_interest": "publish_date",
    "options_iv": "date",
    "insider_trades": "filing_date",
}

FEATURE_VIEWS = ("price_momentum", "sector_neutral", "fundamental", "microstructure", "alt_data")

# Which optional tables (or optional price columns) each feature view cannot do without.
VIEW_REQUIRES: dict[str, tuple[str, ...]] = {
    "price_momentum": (),
    "sector_neutral": (),
    "fundamental": ("fundamentals", "estimates"),
    "microstructure": ("prices.vwap", "prices.spread_bps", "prices.order_imbalance"),
    "alt_data": ("etf_flows", "short_interest", "options_iv", "insider_trades", "estimates"),
}


def disabled_views(present_tables: set[str], price_columns: set[str]) -> dict[str, list[str]]:
    """Feature views that the available inputs cannot feed, with what is missing for each."""
    have = set(present_tables) | {f"prices.{c}" for c in price_columns}
    missing = {v: [r for r in reqs if r not in have] for v, reqs in VIEW_REQUIRES.items()}
    return {v: m for v, m in missing.items() if m}
