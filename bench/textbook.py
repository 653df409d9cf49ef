"""The scenario bench's textbook baselines (issue 13, item 4): every row shows the best textbook signal
on the same dates as the ensemble's published signals.

The signals are those of `ml.baselines.textbook_signals`:
- the 5-day reversal;
- the sector-residual reversal;
- 12-1 momentum;
- post-earnings drift, where the market has fundamentals.

Each is scored by the project's rank IC against the zoo's label (`fwd_ret_sn_5d`) on the dates of
`ml.signals`, over all of them and over their last third, with the t of the signals' daily gap to the best
one over each span (a real panel's last third is often too short to tell its gap from noise). The best of them is picked with hindsight,
which makes it a conservative bar: the ensemble has to beat the best one after the fact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.baselines import textbook_signals
from ml.metrics import daily_rank_ic, ic_summary

LABEL = "fwd_ret_sn_5d"
HORIZON = 5  # trading days the label spans: consecutive daily ICs overlap this much


def _ics(scores: pd.DataFrame, label: pd.Series, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Daily rank IC of each score column on `dates` (dates x columns)."""
    scores = scores[scores.index.get_level_values("date").isin(dates)].sort_index()
    return daily_rank_ic(scores, label)


def textbook_row(data_dir: Path, market, signals: pd.DataFrame) -> dict[str, Any]:
    """The baseline columns of one scenario row. `signals`: ml.signals (date, symbol, expected_return)."""
    labels_file = data_dir / "features" / "labels.parquet"
    if not labels_file.exists() or signals.empty:
        return {}
    lab = pd.read_parquet(labels_file, columns=["date", "symbol", LABEL])
    label = pd.Series(lab[LABEL].to_numpy(dtype="float64"), index=pd.MultiIndex.from_arrays(
        [pd.to_datetime(lab["date"]), lab["symbol"].astype(str)], names=["date", "symbol"])).dropna()
    fundamentals_file = data_dir / "raw" / "fundamentals.parquet"
    fundamentals = pd.read_parquet(fundamentals_file) if fundamentals_file.exists() else None
    panel = pd.DataFrame({name: market.long(values, name) for name, values in
                          textbook_signals(market, fundamentals).items()})
    sig = signals.assign(date=pd.to_datetime(signals["date"]), symbol=signals["symbol"].astype(str))
    panel["signals"] = sig.set_index(["date", "symbol"])["expected_return"].reindex(panel.index)
    dates = pd.DatetimeIndex(sorted(sig["date"].unique()))
    last_third = dates[len(dates) * 2 // 3:]
    out: dict[str, Any] = {}
    for tag, span in (("", dates), ("_last_third", last_third)):
        daily = _ics(panel, label, span)
        ic = daily.mean()
        books = ic.drop("signals").dropna()
        best = str(books.idxmax()) if len(books) else None
        out[f"signal_rank_ic{tag}"] = float(ic["signals"])
        out[f"textbook_best{tag}"] = best
        out[f"textbook_best_rank_ic{tag}"] = float(books.max()) if best else float("nan")
        if not tag:
            out.update({f"textbook_{k}": float(v) for k, v in ic.drop("signals").items()})
        if best:  # is the gap more than noise? t of the daily IC difference, overlapping 5-day labels
            gap = ic_summary(daily["signals"] - daily[best], horizon=HORIZON)
            out[f"signal_minus_textbook_t{tag}"] = gap["t_stat"]
    best = out.get("textbook_best_rank_ic_last_third", float("nan"))
    out["signal_over_textbook_last_third"] = (out["signal_rank_ic_last_third"] / best
                                               if np.isfinite(best) and best > 0 else float("nan"))
    return out
