"""Cross-sectional evaluation metrics, vectorized over a long (date, symbol) panel."""

from __future__ import annotations

import numpy as np
import pandas as pd


def forward_returns(prices: pd.DataFrame, horizons: tuple[int, ...] = (1, 5, 21)) -> pd.DataFrame:
    """Forward simple returns over t+1..t+h from closes, per symbol (NaN where the window is incomplete)."""
    frame = prices[["date", "symbol", "close"]].sort_values(["symbol", "date"])
    log_close = np.log(frame["close"].to_numpy())
    grouped = pd.Series(log_close, index=frame.index).groupby(frame["symbol"].to_numpy())
    out = frame[["date", "symbol"]].copy()
    for h in horizons:
        out[f"fwd_{h}d"] = np.expm1(grouped.shift(-h) - log_close)
    return out.reset_index(drop=True)


def daily_ic(
    frame: pd.DataFrame, score: str, target: str, method: str = "spearman", min_names: int = 10
) -> pd.Series:
    """Per-date cross-sectional correlation of `score` with `target` (rank IC when spearman)."""
    data = frame[["date", score, target]].dropna()
    if method == "spearman":
        grouped = data.groupby("date")
        data = data.assign(**{score: grouped[score].rank(), target: grouped[target].rank()})
    g = data.groupby("date")
    n = g.size()
    mx, my = g[score].transform("mean"), g[target].transform("mean")
    dx, dy = data[score] - mx, data[target] - my
    cov = (dx * dy).groupby(data["date"]).sum()
    vx = (dx * dx).groupby(data["date"]).sum()
    vy = (dy * dy).groupby(data["date"]).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = cov / np.sqrt(vx * vy)
    return ic[(n >= min_names) & np.isfinite(ic)]


def ic_summary(ic: pd.Series, horizon: int = 1) -> dict[str, float]:
    """Mean IC, ICIR and a t-stat; `horizon` > 1 corrects the t-stat for overlapping windows."""
    ic = ic.dropna()
    if len(ic) < 2:
        return {
            "mean": float("nan"),
            "std": float("nan"),
            "icir": float("nan"),
            "t_stat": float("nan"),
            "n": len(ic),
        }
    mean, sd = float(ic.mean()), float(ic.std(ddof=1))
    icir = mean / sd if sd > 0 else float("nan")
    t_stat = icir * np.sqrt(len(ic) / max(horizon, 1))
    return {"mean": mean, "std": sd, "icir": icir, "t_stat": float(t_stat), "n": int(len(ic))}
