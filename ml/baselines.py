"""Commodity baselines that any alpha must beat."""

from __future__ import annotations

import pandas as pd


def price_only_score(prices: pd.DataFrame) -> pd.DataFrame:
    """12-1 momentum plus 5-day reversal, each z-scored per date: the price-only yardstick.

    Uses closes up to and including t only.
    """
    p = prices[["date", "symbol", "close"]].assign(symbol=lambda f: f["symbol"].astype(str))
    p = p.sort_values(["symbol", "date"])
    close = p.groupby("symbol")["close"]
    p["mom"] = close.shift(21) / close.shift(252) - 1
    p["rev"] = -(p["close"] / close.shift(5) - 1)
    for col in ("mom", "rev"):
        by_date = p.groupby("date")[col]
        p[col] = (p[col] - by_date.transform("mean")) / by_date.transform("std")
    p["score"] = p["mom"].fillna(0) + p["rev"]
    return p[["date", "symbol", "score"]].reset_index(drop=True)
