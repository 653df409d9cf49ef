"""Point-in-time market regimes: the market return's EWMA volatility against trailing quantiles of its
own history (with hysteresis), plus a z-score of cross-sectional dispersion against its trailing
history. Both use only dates before t."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ml.monitoring.config import load_config


def market_returns(prices: pd.DataFrame, etf_prices: pd.DataFrame | None = None, market_etf: str = "SPY",
                   ) -> pd.DataFrame:
    """Daily market return (the market ETF's, else the equal-weighted panel's) and the cross-sectional
    dispersion (sd of stock returns) per date: columns date, market_ret, dispersion, source."""
    p = prices[["date", "symbol", "close"]].copy()
    p["date"] = pd.to_datetime(p["date"])
    p = p.sort_values(["symbol", "date"])
    p["ret"] = p.groupby("symbol", observed=True)["close"].pct_change()
    g = p.dropna(subset=["ret"]).groupby("date")["ret"]
    out = pd.DataFrame({"panel_ret": g.mean(), "dispersion": g.std(ddof=1)})
    source = "panel"
    if etf_prices is not None and len(etf_prices) and (etf_prices["etf"] == market_etf).any():
        e = etf_prices[etf_prices["etf"] == market_etf][["date", "close"]].copy()
        e["date"] = pd.to_datetime(e["date"])
        e = e.sort_values("date").set_index("date")["close"].pct_change()
        out = out.join(e.rename("etf_ret"), how="left")
        source = market_etf
        out["market_ret"] = out["etf_ret"].fillna(out["panel_ret"])
    else:
        out["market_ret"] = out["panel_ret"]
    out = out.reset_index()
    out["source"] = source
    return out[["date", "market_ret", "dispersion", "source"]]


def detect_regimes(market: pd.DataFrame, config: Mapping | None = None) -> pd.DataFrame:
    """Point-in-time regimes from (date, market_ret, dispersion): EWMA market volatility (annualized)
    against the enter/exit quantiles of its own trailing history (dates < t, at least `min_history`),
    stressed from crossing the enter level until falling below the exit level; and the cross-sectional
    dispersion (EWMA) as a z-score against its trailing history, flagged when |z| > `dispersion_z`.
    Columns: date, market_ret, market_vol, vol_enter, vol_exit, regime (calm | stressed | warmup),
    dispersion, dispersion_z, dispersion_regime (high | normal | low | warmup)."""
    cfg = load_config(config)["regime"]
    m = market.sort_values("date").reset_index(drop=True)
    r = m["market_ret"].fillna(0.0)
    var = (r * r).ewm(halflife=float(cfg["vol_halflife"]), min_periods=5).mean()
    vol = np.sqrt(var * 252.0)
    hist, min_h = int(cfg["history_days"]), int(cfg["min_history"])
    past = vol.shift(1).rolling(hist, min_periods=min_h)
    enter, exit_ = past.quantile(float(cfg["enter_quantile"])), past.quantile(float(cfg["exit_quantile"]))
    regime, state = [], False
    for v, hi, lo in zip(vol, enter, exit_, strict=True):
        if not np.isfinite(hi):
            regime.append("warmup")
            continue
        state = v > lo if state else v > hi
        regime.append("stressed" if state else "calm")
    disp = np.log(m["dispersion"].clip(lower=1e-8)).ewm(halflife=float(cfg["dispersion_halflife"]), min_periods=5).mean()
    dpast = disp.shift(1).rolling(hist, min_periods=min_h)
    dz = (disp - dpast.mean()) / dpast.std()
    zt = float(cfg["dispersion_z"])
    dreg = np.where(dz.isna(), "warmup", np.where(dz > zt, "high", np.where(dz < -zt, "low", "normal")))
    return pd.DataFrame({
        "date": pd.to_datetime(m["date"]), "market_ret": m["market_ret"], "market_vol": vol, "vol_enter": enter,
        "vol_exit": exit_, "regime": regime, "dispersion": m["dispersion"], "dispersion_z": dz,
        "dispersion_regime": dreg,
    })
