"""The market as the policy and the backtest see it, forward-return labels, and P&L accounting.

Timing convention (everything here follows it): a decision at the close of day t uses data up to and
including t; the post-trade weights w[t] earn the close-to-close returns of t+1 onward, so

    gross[t] = sum_i w[t-1, i] * r[t, i],   r[t, i] = close[t, i] / close[last trading day before t, i] - 1
    cost[t]  = costs of the trades made at the close of t,   net[t] = gross[t] - cost[t].

A name that stops trading earns nothing after its last close (its return is 0 from then on) and the
policy closes it at the next decision, charging costs at its last known spread: closed at its last
price. Market statistics (volatility, ADV, beta) at t are trailing windows ending at t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.costs import CostInputs

TRADING_DAYS = 252


@dataclass
class MarketPanel:
    """Dates x symbols arrays (NaN where a name does not trade): from the dbt mart `market_panel`
    (`market_panel_from_mart`, what the pipeline reads) or from raw prices and securities
    (`market_panel`, for tests and benches)."""

    dates: pd.DatetimeIndex
    symbols: pd.Index
    close: np.ndarray
    returns: np.ndarray  # into date t from the previous trading close; NaN where not trading at t
    tradable: np.ndarray  # bool: has a price (and volume) at t
    spread_bps: np.ndarray  # last known quoted spread (NaN if never known)
    adv_value: np.ndarray  # trailing mean daily traded value
    sigma: np.ndarray  # trailing daily volatility
    beta: np.ndarray  # trailing market beta (mart: dbt's beta_market; raw: vs the panel's equal-weighted market)
    sector: np.ndarray  # (N,) integer codes into `sectors`
    sectors: list[str]
    market_return: np.ndarray  # (T,) equal-weighted mean return of trading names
    high: np.ndarray | None = None  # daily highs and lows where the prices have them (spread estimates)
    low: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.dates), len(self.symbols)

    def costs_at(self, t: int | slice) -> CostInputs:
        return CostInputs(spread_bps=self.spread_bps[t], adv_value=self.adv_value[t], sigma=self.sigma[t])

    def grid(self, values: pd.Series) -> np.ndarray:
        """A (date, symbol)-indexed series laid out on the panel (NaN where absent)."""
        wide = values.unstack("symbol").reindex(index=self.dates, columns=self.symbols)
        return wide.to_numpy(dtype="float64")

    def long(self, values: np.ndarray, name: str) -> pd.Series:
        """A dates x symbols array as a (date, symbol)-indexed series (all cells)."""
        idx = pd.MultiIndex.from_product([self.dates, self.symbols], names=["date", "symbol"])
        return pd.Series(np.asarray(values, dtype="float64").ravel(), index=idx, name=name)

    def sector_onehot(self) -> np.ndarray:
        return np.eye(len(self.sectors))[self.sector]


def _rolling(frame: pd.DataFrame, window: int, min_periods: int, how: str) -> pd.DataFrame:
    roll = frame.rolling(window, min_periods=min_periods)
    return getattr(roll, how)()


def _sector_codes(sector_of: pd.Series, symbols: pd.Index) -> tuple[np.ndarray, list[str]]:
    """Integer sector codes of `symbols` (sector "Unknown" where `sector_of` has none) and the names."""
    names = sector_of.reindex(symbols).fillna("Unknown").astype(str)
    sectors = sorted(names.unique())
    return names.map({s: i for i, s in enumerate(sectors)}).to_numpy(dtype=int), sectors


def market_panel(
    prices: pd.DataFrame,
    securities: pd.DataFrame | None = None,
    vol_window: int = 63,
    adv_window: int = 20,
    beta_window: int = 252,
) -> MarketPanel:
    """Build the panel from raw `prices` (date, symbol, close, volume[, spread_bps, high, low]) and
    `securities` (symbol, sector). Trailing statistics use data up to each date only. Tests and benches
    use it; the pipeline reads the dbt mart instead (`market_panel_from_mart`), whose beta is dbt's
    (`beta_window` rows against the market benchmark) rather than this one against the panel's
    equal-weighted market."""
    frame = prices.assign(date=pd.to_datetime(prices["date"]), symbol=prices["symbol"].astype(str))

    def wide(col: str) -> pd.DataFrame:
        return frame.pivot_table(index="date", columns="symbol", values=col, aggfunc="last").sort_index()

    close = wide("close")
    dates, symbols = close.index, close.columns
    volume = wide("volume").reindex(index=dates, columns=symbols) if "volume" in frame else close * np.nan
    spread = (wide("spread_bps").reindex(index=dates, columns=symbols).ffill()
              if "spread_bps" in frame else close * np.nan)
    trading = close.notna() & (volume.fillna(1.0) > 0)
    prev = close.ffill().shift(1)
    ret = (close / prev - 1.0).where(trading)
    value = (close * volume).where(trading)
    adv = _rolling(value, adv_window, max(2, adv_window // 4), "mean").ffill()
    sigma = _rolling(ret, vol_window, max(10, vol_window // 3), "std").ffill()
    mkt = ret.mean(axis=1)
    # beta_i = cov(r_i, m) / var(m) over the days name i traded (trailing window)
    mp = max(20, beta_window // 4)
    m_i = pd.DataFrame(np.broadcast_to(mkt.to_numpy()[:, None], ret.shape), index=dates,
                       columns=symbols).where(ret.notna())

    def mean(x: pd.DataFrame) -> pd.DataFrame:
        return _rolling(x, beta_window, mp, "mean")

    mean_m = mean(m_i)
    cov = mean(ret * m_i) - mean(ret) * mean_m
    var = mean(m_i * m_i) - mean_m**2
    beta = (cov / var.where(var > 0)).clip(-3, 5).ffill().fillna(1.0)
    if securities is not None and "sector" in securities:
        sec_map = securities.assign(symbol=securities["symbol"].astype(str)).set_index("symbol")["sector"]
    else:
        sec_map = pd.Series(dtype=object)
    codes, sectors = _sector_codes(sec_map, symbols)
    return MarketPanel(
        dates=pd.DatetimeIndex(dates), symbols=pd.Index(symbols.astype(str), name="symbol"),
        close=close.to_numpy(dtype="float64"), returns=ret.to_numpy(dtype="float64"),
        tradable=trading.to_numpy(), spread_bps=spread.to_numpy(dtype="float64"),
        adv_value=adv.to_numpy(dtype="float64"), sigma=sigma.to_numpy(dtype="float64"),
        beta=beta.to_numpy(dtype="float64"), sector=codes, sectors=sectors,
        market_return=mkt.to_numpy(dtype="float64"),
        high=wide("high").reindex(index=dates, columns=symbols).to_numpy(dtype="float64") if "high" in frame else None,
        low=wide("low").reindex(index=dates, columns=symbols).to_numpy(dtype="float64") if "low" in frame else None,
    )


MART_COLUMNS = ("symbol", "date", "sector", "close", "high", "low", "volume", "ret_1d", "tradable",
                "spread_bps", "adv_value", "sigma", "beta")


def market_panel_from_mart(frame: pd.DataFrame) -> MarketPanel:
    """Lay the rows of the dbt mart `market_panel` (`MART_COLUMNS`, one row per symbol and date it
    trades) on the dates x symbols grid. The mart computes every statistic; this only reshapes, with
    `market_panel`'s semantics: returns NaN where a name does not trade (`tradable`: a price and a
    non-zero volume), spread, ADV and sigma carried forward over days without a row (a delisted name
    keeps its last values), beta carried forward, clipped to [-3, 5] and 1.0 where unknown, and
    `market_return` the equal-weighted mean return of the names trading that day."""
    f = frame.assign(date=pd.to_datetime(frame["date"]).astype("datetime64[ns]"), symbol=frame["symbol"].astype(str))
    keyed = f.set_index(["date", "symbol"]).sort_index()
    dates = pd.DatetimeIndex(keyed.index.get_level_values("date").unique(), name="date")
    symbols = pd.Index(sorted(keyed.index.get_level_values("symbol").unique()), name="symbol")

    def wide(col: str) -> pd.DataFrame:
        values = keyed[col].astype("float64").unstack("symbol")
        return values.reindex(index=dates, columns=symbols)

    tradable = (keyed["tradable"].astype(bool).unstack("symbol", fill_value=False)
                .reindex(index=dates, columns=symbols, fill_value=False))
    ret = wide("ret_1d").where(tradable)
    beta = wide("beta").clip(-3, 5).ffill().fillna(1.0)
    sector_of = f.dropna(subset=["sector"]).groupby("symbol")["sector"].last()
    codes, sectors = _sector_codes(sector_of, symbols)
    return MarketPanel(
        dates=dates, symbols=symbols,
        close=wide("close").to_numpy(), returns=ret.to_numpy(), tradable=tradable.to_numpy(dtype=bool),
        spread_bps=wide("spread_bps").ffill().to_numpy(), adv_value=wide("adv_value").ffill().to_numpy(),
        sigma=wide("sigma").ffill().to_numpy(), beta=beta.to_numpy(), sector=codes, sectors=sectors,
        market_return=ret.mean(axis=1).to_numpy(dtype="float64"),
        high=wide("high").to_numpy(), low=wide("low").to_numpy(),
    )


def forward_label(market: MarketPanel, horizon: int = 5, neutral: str = "sector") -> pd.Series:
    """Realized forward return over t+1..t+horizon from closes (NaN unless the name trades at both
    ends), minus the equal-weighted mean of its sector (`neutral='sector'`), of all names
    ('market') or nothing ('raw'). Only evaluation and walk-forward fits read it, and only for
    dates whose window has closed."""
    close = pd.DataFrame(market.close)
    fwd = (close.shift(-horizon) / close - 1.0).to_numpy()
    if neutral == "sector":
        onehot = market.sector_onehot()
        ok = np.isfinite(fwd)
        sums = np.where(ok, fwd, 0.0) @ onehot
        counts = ok.astype(float) @ onehot
        with np.errstate(invalid="ignore", divide="ignore"):
            fwd = fwd - (sums / counts)[:, market.sector]
    elif neutral == "market":
        fwd = fwd - np.nanmean(np.where(np.isfinite(fwd), fwd, np.nan), axis=1, keepdims=True)
    elif neutral != "raw":
        raise ValueError(f"neutral must be sector | market | raw, got {neutral!r}")
    out = market.long(fwd, f"fwd_{horizon}d")
    return out[out.notna()]


def horizon_scale(market: MarketPanel, horizon: int = 5) -> pd.Series:
    """Each name's trailing daily volatility scaled to the horizon (sigma * sqrt(h)), known at t."""
    out = market.long(market.sigma * np.sqrt(horizon), "scale")
    return out[out.notna()]


# ================================================================================ accounting
def backtest_daily(
    weights: np.ndarray,
    trades: np.ndarray,
    costs: np.ndarray,
    market: MarketPanel,
    start: int = 0,
) -> pd.DataFrame:
    """Daily P&L of post-trade weights (dates x names, decided at each close) on the panel's returns.

    Columns: date, gross_return, cost, net_return, gross_exposure, net_exposure, beta_exposure,
    turnover (sum |trade|, fraction of capital), n_long, n_short, n_trades. Rows from `start`."""
    w = np.nan_to_num(weights)
    r = np.nan_to_num(market.returns)
    held = np.vstack([np.zeros((1, w.shape[1])), w[:-1]])
    gross = (held * r).sum(axis=1)
    cost = np.nan_to_num(costs).sum(axis=1)
    out = pd.DataFrame({
        "date": market.dates,
        "gross_return": gross,
        "cost": cost,
        "net_return": gross - cost,
        "gross_exposure": np.abs(w).sum(axis=1),
        "net_exposure": w.sum(axis=1),
        "beta_exposure": (w * np.nan_to_num(market.beta, nan=1.0)).sum(axis=1),
        "turnover": np.abs(np.nan_to_num(trades)).sum(axis=1),
        "n_long": (w > 1e-12).sum(axis=1),
        "n_short": (w < -1e-12).sum(axis=1),
        "n_trades": (np.abs(np.nan_to_num(trades)) > 1e-12).sum(axis=1),
    })
    return out.iloc[start:].reset_index(drop=True)


def max_drawdown(returns: pd.Series | np.ndarray) -> float:
    """Largest peak-to-trough fall of the compounded equity curve (a positive fraction)."""
    equity = np.cumprod(1.0 + np.asarray(returns, dtype=float))
    peak = np.maximum.accumulate(np.r_[1.0, equity])[1:]
    return float(np.max(1.0 - equity / peak)) if len(equity) else float("nan")


def sharpe(returns: pd.Series | np.ndarray, periods: int = TRADING_DAYS) -> float:
    r = np.asarray(returns, dtype=float)
    sd = r.std(ddof=1) if len(r) > 1 else np.nan
    return float(r.mean() / sd * np.sqrt(periods)) if sd and np.isfinite(sd) and sd > 0 else float("nan")


def performance(daily: pd.DataFrame, market: MarketPanel | None = None,
                weights: np.ndarray | None = None) -> dict[str, float]:
    """Headline metrics of a daily backtest: annualized return/vol, Sharpe gross and net, max
    drawdown (net), monthly one-sided turnover (sum |trades| / 2 per month, divided by the mean gross
    exposure, i.e. the share of the book replaced each month; `turnover_monthly_nav` is the same over
    capital), cost retention (mean net / mean gross return), hit rate (share of days with a positive
    net return), mean exposures, the realized market beta of net returns and, with `weights`, the
    mean absolute net sector exposure."""
    if daily.empty:
        return {}
    gross, net = daily["gross_return"], daily["net_return"]
    month = pd.to_datetime(daily["date"]).dt.to_period("M")
    monthly_turn = (daily["turnover"] / 2.0).groupby(month).sum()
    full_months = monthly_turn.iloc[1:-1] if len(monthly_turn) > 2 else monthly_turn
    mean_gross_exp = float(daily["gross_exposure"].mean())
    out = {
        "ann_return_gross": float(gross.mean() * TRADING_DAYS),
        "ann_return_net": float(net.mean() * TRADING_DAYS),
        "ann_vol": float(net.std(ddof=1) * np.sqrt(TRADING_DAYS)),
        "sharpe_gross": sharpe(gross),
        "sharpe_net": sharpe(net),
        "max_drawdown": max_drawdown(net),
        "turnover_monthly": float(full_months.mean() / mean_gross_exp) if mean_gross_exp > 0 else float("nan"),
        "turnover_monthly_nav": float(full_months.mean()),
        "cost_retention": float(net.mean() / gross.mean()) if gross.mean() > 0 else float("nan"),
        "cost_bps_annual": float(daily["cost"].mean() * TRADING_DAYS * 1e4),
        "hit_rate": float((net > 0).mean()),
        "gross_exposure": mean_gross_exp,
        "net_exposure": float(daily["net_exposure"].mean()),
        "beta_exposure": float(daily["beta_exposure"].mean()),
        "n_long": float(daily["n_long"].mean()),
        "n_short": float(daily["n_short"].mean()),
        "n_days": int(len(daily)),
    }
    if market is not None:
        mkt = pd.Series(market.market_return, index=market.dates).reindex(pd.to_datetime(daily["date"]))
        m = mkt.to_numpy()
        ok = np.isfinite(m)
        if ok.sum() > 2 and np.var(m[ok]) > 0:
            out["realized_beta"] = float(np.cov(net.to_numpy()[ok], m[ok])[0, 1] / np.var(m[ok], ddof=1))
        if weights is not None:
            rows = market.dates.get_indexer(pd.to_datetime(daily["date"]))
            sector_net = np.nan_to_num(weights[rows]) @ market.sector_onehot()
            out["sector_exposure_abs"] = float(np.abs(sector_net).mean())
            out["sector_exposure_max"] = float(np.abs(sector_net).max())
    return out
