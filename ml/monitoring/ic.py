"""The lifecycle's evidence: daily rank IC per model, when each value is known, monthly summaries, and
the overlap-corrected (Newey-West) t-statistic every rule reads.

One rank-IC definition serves the whole project: `ml.metrics.daily_rank_ic` (Spearman per date,
average ranks for ties, at least `min_names` names). The lifecycle only reshapes it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.metrics import daily_rank_ic


def known_dates(dates: pd.Series | pd.DatetimeIndex, calendar: pd.DatetimeIndex, lag: int) -> np.ndarray:
    """For each date, the calendar date `lag` trading days later (NaT past the calendar's end)."""
    values = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    pos = calendar.searchsorted(values) + int(lag)
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = pos < len(calendar)
    out[ok] = calendar.values[pos[ok]]
    return out


def long_ic(wide: pd.DataFrame) -> pd.DataFrame:
    """dates x models IC table -> long frame model_id, date, ic (missing dates dropped), sorted."""
    if wide.empty:
        return pd.DataFrame({"model_id": pd.Series(dtype=str), "date": pd.Series(dtype="datetime64[ns]"),
                             "ic": pd.Series(dtype=float)})
    out = wide.rename_axis(index="date", columns="model_id").stack().rename("ic").reset_index()
    out["date"] = pd.to_datetime(out["date"])
    out["model_id"] = out["model_id"].astype(str)
    return out[["model_id", "date", "ic"]].sort_values(["model_id", "date"]).reset_index(drop=True)


def daily_ic(predictions: pd.DataFrame, labels: pd.DataFrame, label: str = "fwd_ret_sn_5d",
             min_names: int = 10) -> pd.DataFrame:
    """Per (model_id, date) cross-sectional rank IC of long predictions (date, symbol, model_id, score)
    against `labels`[label]: columns model_id, date, ic. Dates whose label is not realized drop out."""
    from ml.ensemble import score_panel

    panel = score_panel(predictions)
    lab = labels.assign(date=pd.to_datetime(labels["date"]), symbol=labels["symbol"].astype(str))
    y = lab.set_index(["date", "symbol"])[label].astype(float)
    return long_ic(daily_rank_ic(panel, y, min_names))


def nw_t_stat(x: np.ndarray, lags: int) -> tuple[float, float, int]:
    """(mean, t-statistic, n) of a series of daily ICs whose labels overlap `lags` days: the variance
    of the mean is Newey-West's (Bartlett weights up to `lags`), so h-day labels scored every day are
    not counted as h times more evidence than they are. t is NaN below 3 values."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return (float(x.mean()) if n else float("nan")), float("nan"), n
    mean = float(x.mean())
    d = x - mean
    var = float(d @ d) / n
    for lag in range(1, min(int(lags), n - 1) + 1):
        var += 2.0 * (1.0 - lag / (lags + 1.0)) * float(d[lag:] @ d[:-lag]) / n
    if var <= 0:
        return mean, float("nan"), n
    return mean, mean / np.sqrt(var / n), n


def monthly_ic(daily: pd.DataFrame, calendar: pd.DatetimeIndex, known_lag: int,
               min_days_month: int = 10, threshold: float = 0.0, window_months: int = 12,
               min_months: int = 6) -> pd.DataFrame:
    """Monthly IC per model (a display of the evidence; no rule reads runs of signs): model_id, month,
    month_end, known_at (NaT: not yet known), ic (mean daily IC), ic_sd, n_days, hit_rate, valid
    (n_days >= min_days_month), negative_run (consecutive valid months below `threshold`),
    trailing_ic, trailing_icir (last `window_months` valid months, at least `min_months`)."""
    cols = ["model_id", "month", "month_end", "known_at", "ic", "ic_sd", "n_days", "hit_rate", "valid",
            "negative_run", "trailing_ic", "trailing_icir"]
    if daily.empty:
        return pd.DataFrame(columns=cols)
    frame = daily.assign(month=pd.to_datetime(daily["date"]).dt.to_period("M"))
    frame["positive"] = (frame["ic"] > 0).astype(float)
    g = frame.groupby(["model_id", "month"], sort=True)
    out = pd.DataFrame({"ic": g["ic"].mean(), "ic_sd": g["ic"].std(ddof=1), "n_days": g["ic"].size(),
                        "hit_rate": g["positive"].mean()}).reset_index()
    cal = pd.Series(calendar, index=calendar.to_period("M"))
    out["month_end"] = out["month"].map(cal.groupby(level=0).max())
    out["known_at"] = known_dates(out["month_end"], calendar, known_lag)
    out["valid"] = out["n_days"] >= int(min_days_month)
    out = out.sort_values(["model_id", "month"]).reset_index(drop=True)
    # negative run: consecutive valid negative months (a gap in months or an invalid month breaks it)
    neg = (out["valid"] & (out["ic"] < threshold)).to_numpy()
    ordinal = (out["month"].dt.year * 12 + out["month"].dt.month).to_numpy()
    ids = out["model_id"].to_numpy()
    gap = np.r_[True, (ids[1:] != ids[:-1]) | (np.diff(ordinal) != 1)]
    block = np.cumsum(gap | ~neg)
    out["negative_run"] = np.where(neg, pd.Series(neg.astype(int)).groupby(block).cumsum().to_numpy(), 0)
    valid_ic = out["ic"].where(out["valid"])
    roll = valid_ic.groupby(out["model_id"]).transform(
        lambda s: s.dropna().rolling(int(window_months), min_periods=max(int(min_months), 2)).mean()
        .reindex(s.index).ffill())
    roll_sd = valid_ic.groupby(out["model_id"]).transform(
        lambda s: s.dropna().rolling(int(window_months), min_periods=max(int(min_months), 2)).std()
        .reindex(s.index).ffill())
    out["trailing_ic"] = roll
    out["trailing_icir"] = roll / roll_sd.where(roll_sd > 0)
    out["month"] = out["month"].dt.to_timestamp()
    return out[cols]
