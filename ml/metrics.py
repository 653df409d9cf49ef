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


def date_bounds(index: pd.MultiIndex) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Calendar (unique dates), per-row calendar codes and block starts of a date-sorted index."""
    dates = index.get_level_values("date")
    calendar, codes = np.unique(dates.to_numpy(dtype="datetime64[ns]"), return_inverse=True)
    starts = np.searchsorted(codes, np.arange(len(calendar)))
    return pd.DatetimeIndex(calendar), codes, starts


def group_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of consecutive row blocks (rows sorted by date, `starts` from `date_bounds`)."""
    if len(values) == 0:
        return np.zeros((0, *values.shape[1:]))
    return np.add.reduceat(values, starts, axis=0)


def daily_rank_ic(panel: pd.DataFrame, label: pd.Series, min_names: int = 10) -> pd.DataFrame:
    """The project's one rank-IC definition: per date and column, the Spearman correlation of the
    scores with the realized label over the names that have both (average ranks for ties), NaN where
    fewer than `min_names` names do. `panel`: index (date, symbol) sorted by date, one column per
    model; returns dates x columns. The lifecycle, the metrics, the ensembles and the app read it."""
    y = label.reindex(panel.index)
    keep = y.notna().to_numpy()
    sub = panel[keep]
    if sub.empty:
        return pd.DataFrame(columns=panel.columns, dtype=float)
    calendar, codes, starts = date_bounds(sub.index)
    x = sub.to_numpy(dtype="float64")
    ok = np.isfinite(x)
    yy = np.where(ok, y.to_numpy(dtype="float64")[keep][:, None], np.nan)  # the label of the pairs only
    by_date = pd.Index(codes)
    rx = pd.DataFrame(x).groupby(by_date).rank().to_numpy()
    ry = pd.DataFrame(yy).groupby(by_date).rank().to_numpy()
    n = group_sums(ok.astype(float), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = group_sums(np.where(ok, rx, 0.0), starts) / n
        my = group_sums(np.where(ok, ry, 0.0), starts) / n
        dx = np.where(ok, rx - mx[codes], 0.0)
        dy = np.where(ok, ry - my[codes], 0.0)
        ic = group_sums(dx * dy, starts) / np.sqrt(group_sums(dx * dx, starts) * group_sums(dy * dy, starts))
    ic = np.where((n >= min_names) & np.isfinite(ic), ic, np.nan)
    return pd.DataFrame(ic, index=calendar, columns=panel.columns)


def daily_ic(
    frame: pd.DataFrame, score: str, target: str, method: str = "spearman", min_names: int = 10
) -> pd.Series:
    """Per-date cross-sectional correlation of `score` with `target` in a long frame: the rank IC of
    `daily_rank_ic` when spearman, else Pearson. Indexed by date."""
    data = frame[["date", score, target]].dropna()
    if method == "spearman":
        data = data.assign(date=pd.to_datetime(data["date"])).sort_values("date", kind="stable")
        index = pd.MultiIndex.from_arrays([data["date"], np.arange(len(data))], names=["date", "row"])
        ic = daily_rank_ic(pd.DataFrame({score: data[score].to_numpy(dtype="float64")}, index=index),
                           pd.Series(data[target].to_numpy(dtype="float64"), index=index), min_names)[score]
        return ic.dropna().rename_axis("date")
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


def hit_rate(ic: pd.Series) -> float:
    """Fraction of days with a positive IC (NaN when there are none)."""
    ic = ic.dropna()
    return float((ic > 0).mean()) if len(ic) else float("nan")


def sign_hit_rate(frame: pd.DataFrame, score: str, target: str, min_names: int = 10) -> pd.Series:
    """Per date, the fraction of names whose score and target fall on the same side of their
    cross-sectional medians (0.5 = no skill)."""
    data = frame[["date", score, target]].dropna()
    g = data.groupby("date")
    s = np.sign(data[score] - g[score].transform("median"))
    t = np.sign(data[target] - g[target].transform("median"))
    valid = (s != 0) & (t != 0)
    hits = ((s == t) & valid).groupby(data["date"]).sum()
    n = valid.groupby(data["date"]).sum()
    out = hits / n.where(n > 0)
    return out[(g.size() >= min_names) & out.notna()]


def decile_spread(
    frame: pd.DataFrame, score: str, target: str, n_bins: int = 10, min_names: int = 20
) -> pd.Series:
    """Per date, mean `target` of the top score bin minus that of the bottom bin (equal-count bins
    by cross-sectional score rank; deciles by default)."""
    data = frame[["date", score, target]].dropna()
    g = data.groupby("date")
    n = g[score].transform("size")
    pct = g[score].rank(method="first") / n
    bins = np.clip(np.ceil(pct * n_bins), 1, n_bins)
    top = data[target].where(bins == n_bins).groupby(data["date"]).mean()
    bottom = data[target].where(bins == 1).groupby(data["date"]).mean()
    spread = top - bottom
    return spread[(g.size() >= min_names) & spread.notna()]


def ic_decay(
    frame: pd.DataFrame, score: str, targets: dict[int, str], method: str = "spearman", min_names: int = 10
) -> dict[int, float]:
    """Mean daily IC of one score against forward returns of several horizons {horizon: column}."""
    out = {}
    for h, col in sorted(targets.items()):
        ic = daily_ic(frame, score, col, method=method, min_names=min_names) if col in frame else pd.Series()
        out[int(h)] = float(ic.mean()) if len(ic) else float("nan")
    return out


def evaluate_scores(
    frame: pd.DataFrame,
    score: str,
    targets: dict[int, str],
    primary: int = 5,
    min_names: int = 10,
    n_bins: int = 10,
) -> dict[str, float]:
    """Out-of-sample scorecard of one score column against forward-return columns {horizon: column}.

    Keys: `ic` (mean daily Pearson IC), `rank_ic`, `rank_ic_std`, `icir` (rank IC mean / sd),
    `t_stat` (overlap-corrected for the `primary` horizon), `hit_rate` (share of days with rank IC > 0),
    `sign_hit_rate`, `decile_spread` (mean top-minus-bottom decile forward return per date) and its
    `decile_spread_t`, `ic_decay_<h>` (mean rank IC at each horizon), `n_days`, `start`, `end`.
    All computed on the primary horizon's target unless named by horizon.
    """
    target = targets[primary]
    rank = daily_ic(frame, score, target, "spearman", min_names)
    pearson = daily_ic(frame, score, target, "pearson", min_names)
    summary = ic_summary(rank, horizon=primary)
    spread = decile_spread(frame, score, target, n_bins=n_bins, min_names=max(min_names, 2 * n_bins))
    spread_sum = ic_summary(spread, horizon=primary)
    out: dict[str, float] = {
        "ic": float(pearson.mean()) if len(pearson) else float("nan"),
        "rank_ic": summary["mean"],
        "rank_ic_std": summary["std"],
        "icir": summary["icir"],
        "t_stat": summary["t_stat"],
        "hit_rate": hit_rate(rank),
        "sign_hit_rate": float(sign_hit_rate(frame, score, target, min_names).mean()),
        "decile_spread": spread_sum["mean"],
        "decile_spread_t": spread_sum["t_stat"],
        "n_days": int(summary["n"]),
        "start": str(pd.Timestamp(rank.index.min()).date()) if len(rank) else "",
        "end": str(pd.Timestamp(rank.index.max()).date()) if len(rank) else "",
    }
    for h, value in ic_decay(frame, score, targets, "spearman", min_names).items():
        out[f"ic_decay_{h}"] = value
    return out
