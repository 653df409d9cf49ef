"""Commodity baselines that any alpha must beat, and the plain book that trades them.

A baseline is a textbook signal (no fitting, nothing learned) traded through the simplest book a
desk would accept: dollar-neutral rank weights at unit gross, approached a fixed share of the way
each day, with the same cost model as Aurora's policy. If Aurora's policy cannot beat that on net
Sharpe, its machinery is not paying for itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ml.backtest import MarketPanel, backtest_daily, performance
from ml.costs import CostModel


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


def reversal_5d(market: MarketPanel) -> np.ndarray:
    """The textbook short-term reversal: minus the 5-day return to the close of t (dates x names)."""
    close = pd.DataFrame(market.close).ffill()
    past = close / close.shift(5) - 1.0
    return -(past.to_numpy()) * np.where(market.tradable, 1.0, np.nan)


def residual_reversal_5d(market: MarketPanel) -> np.ndarray:
    """Minus the 5-day return relative to the name's sector mean of the same window (dates x names)."""
    rev = reversal_5d(market)
    onehot = market.sector_onehot()  # names x sectors
    ok = np.isfinite(rev)
    sums = np.nan_to_num(rev) @ onehot
    counts = ok.astype(float) @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        sector_mean = np.nan_to_num(sums / counts) @ onehot.T  # an empty sector has no name to shift
    return rev - sector_mean


def momentum_12_1(market: MarketPanel) -> np.ndarray:
    """12-1 momentum: the return from 252 to 21 trading days before t (dates x names)."""
    close = pd.DataFrame(market.close).ffill()
    mom = close.shift(21) / close.shift(252) - 1.0
    return mom.to_numpy() * np.where(market.tradable, 1.0, np.nan)


def earnings_drift(market: MarketPanel, fundamentals: pd.DataFrame, hold_days: int = 63) -> np.ndarray:
    """Post-earnings drift: the standardized unexpected earnings of the last report (EPS minus EPS four
    quarters earlier, over the sd of that change in the previous eight reports, at least four), from
    the first trading day after the report date for `hold_days` trading days (dates x names)."""
    f = fundamentals[["symbol", "period_end", "report_date", "eps"]].dropna(subset=["eps", "report_date"])
    f = f.assign(symbol=f["symbol"].astype(str), report_date=pd.to_datetime(f["report_date"]))
    f = f.sort_values(["symbol", "period_end"])
    change = f["eps"] - f.groupby("symbol")["eps"].shift(4)
    sd = change.groupby(f["symbol"]).transform(lambda x: x.shift(1).rolling(8, min_periods=4).std())
    f = f.assign(sue=change / sd.where(sd > 0))
    f = f[np.isfinite(f["sue"]) & f["symbol"].isin(market.symbols)]
    out = np.full(market.shape, np.nan)
    row = market.dates.searchsorted(f["report_date"].to_numpy(), side="right")  # strictly after the report
    keep = row < len(market.dates)
    col = market.symbols.get_indexer(f["symbol"])
    out[row[keep], col[keep]] = f["sue"].to_numpy()[keep]
    held = pd.DataFrame(out).ffill(limit=int(hold_days) - 1).to_numpy()
    return held * np.where(market.tradable, 1.0, np.nan)


def textbook_signals(market: MarketPanel, fundamentals: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """The textbook signals any alpha should beat, each using data known at t only: 5-day reversal,
    sector-residual 5-day reversal, 12-1 momentum, and post-earnings drift where there are fundamentals."""
    out = {"reversal_5d": reversal_5d(market), "residual_reversal_5d": residual_reversal_5d(market),
           "momentum_12_1": momentum_12_1(market)}
    if fundamentals is not None and len(fundamentals):
        out["earnings_drift"] = earnings_drift(market, fundamentals)
    return out


def rank_weights(score: np.ndarray, gross: float = 1.0) -> np.ndarray:
    """Per date, demeaned cross-sectional ranks scaled to `gross` (dollar neutral); 0 where no score."""
    s = pd.DataFrame(score)
    r = s.rank(axis=1)
    r = r.sub(r.mean(axis=1), axis=0)
    scale = r.abs().sum(axis=1).replace(0.0, np.nan)
    return np.nan_to_num(r.div(scale, axis=0).to_numpy() * gross)


def plain_book(score: np.ndarray, market: MarketPanel, costs: CostModel, capital: float, speed: float = 0.05,
               gross: float = 1.0, start: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Trade `speed` of the way from the held book to the rank-weight target each day, paying `costs`.

    The held book drifts with returns between closes; names that stop trading are held until they
    trade again (a delisted name's weight is closed at its last price: it can no longer be held).
    Returns the daily backtest (`ml.backtest.backtest_daily` columns) and its `performance`.
    """
    target = rank_weights(score, gross)
    r = np.nan_to_num(market.returns)
    n_t, n = target.shape
    held = np.zeros((n_t, n))
    trades = np.zeros((n_t, n))
    cost = np.zeros((n_t, n))
    w = np.zeros(n)
    for t in range(start, n_t):  # a loop over dates (not rows): each day depends on the last
        drifted = w * (1.0 + r[t])
        drifted = drifted / max(1.0 + float((w * r[t]).sum()), 1e-6)
        tradable = market.tradable[t]
        trade = np.where(tradable, speed * (target[t] - drifted), 0.0)
        trade = np.where(~tradable & np.isnan(market.close[t]) & (drifted != 0), -drifted, trade)
        w = drifted + trade
        held[t], trades[t] = w, trade
        cost[t] = costs.cost(trade, market.costs_at(t), capital)
    daily = backtest_daily(held, trades, cost, market, start=start)
    return daily, performance(daily, market, held)


def baseline_metrics(market: MarketPanel, costs: CostModel, capital: float, start_date: pd.Timestamp | None = None,
                     speed: float = 0.05) -> dict[str, Any]:
    """The 5-day reversal through the plain book from `start_date` (the policy's first day)."""
    start = 0 if start_date is None else int(market.dates.searchsorted(pd.Timestamp(start_date)))
    _, perf = plain_book(reversal_5d(market), market, costs, capital, speed=speed, start=start)
    return perf


def plain_book_from_config(policy_cfg: Mapping[str, Any]) -> tuple[CostModel, float]:
    """The policy's own cost model and capital, so the baseline pays exactly what Aurora pays."""
    from ml.costs import cost_model_from_config

    return cost_model_from_config(policy_cfg.get("costs")), float(policy_cfg.get("capital", 5e7))
