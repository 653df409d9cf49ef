"""The raw-data contract of DESIGN.md, in one place.

The generator writes it, ingest validates user files against it, and dbt's sources read it,
so the column lists, types, keys and publication rules live here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        ),
        Table(
            "options_iv",
            {"date": DATE, "symbol": STR, "iv_call_30d": FLOAT, "iv_put_30d": FLOAT},
            key=("symbol", "date"),
            positive=("iv_call_30d", "iv_put_30d"),
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


def __getattr__(name: str):
    """`FEATURE_VIEWS` and `VIEW_REQUIRES` are discovered from the dbt project (ml/data/views.py) on
    every access, never listed here: a new `models/features/<view>.sql` is a view without a Python edit."""
    from ml.data import views

    if name == "FEATURE_VIEWS":
        return views.feature_views()
    if name == "VIEW_REQUIRES":
        return views.view_requires()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def disabled_views(present_tables: set[str], price_columns: set[str]) -> dict[str, list[str]]:
    """Feature views that the available inputs cannot feed (see `ml.data.views.disabled_views`)."""
    from ml.data.views import disabled_views as discovered

    return discovered(present_tables, price_columns)
