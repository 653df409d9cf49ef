"""Read the dbt mart `market_panel` (models/marts/market_panel.sql), the one source of the market
quantities the policy and the backtest use: returns, tradability, spread, ADV, sigma, beta and sector.

The feature build (`ml.warehouse.build_features`) writes it as the warehouse table `main.market_panel`;
it is not a feature view and is not exported to `features/`. `read_market_mart` returns its rows, or
None when the warehouse does not hold it for the raw prices of the data directory (no warehouse, no
table, or a mart built from other prices: a different number of rows or first or last date), so that
the caller can fall back to the raw prices (`ml.evaluation.load_market`).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ml.backtest import MART_COLUMNS
from ml.paths import DataPaths

MART = "market_panel"
SCHEMA = "main"


def read_market_mart(paths: DataPaths) -> pd.DataFrame | None:
    """The mart's rows (`ml.backtest.MART_COLUMNS`, sorted by date and symbol), read through a
    read-only connection; None when there is no such mart for the current raw prices."""
    if not paths.warehouse.exists():
        return None
    columns = ", ".join(f'"{c}"' for c in MART_COLUMNS)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        try:
            frame = con.execute(f"select {columns} from {SCHEMA}.{MART} order by date, symbol").df()
        except (duckdb.CatalogException, duckdb.BinderException):  # not built (or built by an older project)
            return None
    return frame if _covers_raw_prices(paths, frame) else None


def _covers_raw_prices(paths: DataPaths, frame: pd.DataFrame) -> bool:
    """True when the mart has one row per raw price row over the same dates (or there are no raw
    prices to compare with): a mart left from before an ingest or a regeneration is not used."""
    prices = paths.raw_table("prices")
    if not prices.exists():
        return not frame.empty
    with duckdb.connect() as con:
        n, first, last = con.execute(
            "select count(*), min(cast(date as date)), max(cast(date as date)) from read_parquet(?)", [str(prices)]
        ).fetchone()
    if n != len(frame) or frame.empty:
        return False
    dates = pd.to_datetime(frame["date"])
    return dates.min() == pd.Timestamp(first) and dates.max() == pd.Timestamp(last)
