"""`prob_up`: the calibrated probability that a name beats its sector over the horizon, and how to judge it.

The outcome is `label > 0`, with `label` the sector-neutral forward return the expected-return
calibration learns from (`ml.evaluation.load_label`: `fwd_ret_sn_<h>d`, by default relative to the
day's cross-sectional mean). The input is the ensemble score after the calibration's per-date
transform (z or rank), so `prob_up` is monotone in the same score as `expected_return`.

Walk-forward, purged, like `ml.calibration.Calibrator`: at every refit date p (first date of each
`refit` period) the mappings are fitted on rows dated <= p - horizon - 1 (their outcomes are known by
the close of p - 1) and applied to the rows of [p, next refit). Two candidates are fitted each time:

* Platt scaling: a logistic regression of the outcome on the score (two parameters; with no signal
  its slope goes to zero and it returns the base rate);
* isotonic: a monotone step curve on equal-count bin means (more shape, more variance).

`method="auto"` picks, at each refit, the candidate with the lower Brier score on the past
out-of-sample probabilities both produced (rows whose outcome is known at p; isotonic must win by
`selection_margin`, the simpler model keeps ties), Platt until there are `selection_min_days` such
dates: the choice never looks at the full sample.

Judging: `brier_score`, `brier_skill_score` (against the base rate known at the time: the training
window's share of ups at each refit) and `reliability_table` (bins of predicted probability: mean
predicted, observed frequency, count).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ml.calibration import candidate_windows, monotone_curve
from ml.ensemble import cumulative_days_with_data, date_bounds, known_windows

METHODS = ("platt", "isotonic", "auto")
CANDIDATES = ("platt", "isotonic")


def up_outcome(label: pd.Series) -> pd.Series:
    """1.0 where the forward return is above zero, 0.0 at or below, NaN where it is unknown."""
    y = label.to_numpy(dtype="float64")
    return pd.Series(np.where(np.isfinite(y), (y > 0).astype(float), np.nan), index=label.index, name="up")


def fit_platt(x: np.ndarray, y: np.ndarray, l2: float = 1e-6, max_iter: int = 50) -> tuple[float, float]:
    """(intercept, slope) of P(y = 1 | x) = expit(a + b x): Newton-Raphson on the log-likelihood with
    a tiny ridge (keeps a separable or constant sample finite). Two parameters: little to overfit."""
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    w = np.array([np.log(rate / (1 - rate)), 0.0])
    for _ in range(max_iter):
        p = expit(w[0] + w[1] * x)
        r, v = y - p, p * (1 - p)
        grad = np.array([r.sum(), (r * x).sum()]) - l2 * w
        hess = np.array([[v.sum(), (v * x).sum()], [(v * x).sum(), (v * x * x).sum()]]) + l2 * np.eye(2)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        if not np.isfinite(step).all():
            break
        w = w + step
        if np.max(np.abs(step)) < 1e-9:
            break
    return float(w[0]), float(w[1])


@dataclass
class ProbabilityCalibrator:
    """Walk-forward score -> P(beats its sector over the horizon) (see the module docstring)."""

    horizon: int = 5
    refit: str = "M"
    min_train_days: int = 126  # dates in the training window with a usable (score, outcome) pair
    window: int | None = None  # trailing training dates; None: all data with a known outcome
    method: str = "auto"  # platt | isotonic | auto (lower past out-of-sample Brier, Platt until known)
    smooth_bins: int | None = 50  # isotonic fit on this many equal-count bin means
    selection_window: int | None = 252  # trailing dates of out-of-sample probabilities `auto` compares on
    selection_min_days: int = 63  # dates with both candidates' past probabilities before `auto` may switch
    selection_margin: float = 1e-4  # isotonic must beat Platt's past Brier by this much (the simpler wins ties)
    min_rows: int = 100  # a refit with fewer usable training rows is skipped

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"probability method must be one of {METHODS}, got {self.method!r}")

    def fit_predict(self, x: pd.Series, outcome: pd.Series) -> pd.DataFrame:
        """Per row of `x` after the warm-up: prob_up, both candidates' probabilities (prob_platt,
        prob_isotonic), the candidate used (method) and the base rate known at the time (base_rate).

        `x`: the per-date transformed score, index (date, symbol); `outcome`: 1/0/NaN on the same index
        (`up_outcome`), NaN where not yet realized."""
        x = x.sort_index()
        xv = x.to_numpy(dtype="float64")
        yv = outcome.reindex(x.index).to_numpy(dtype="float64")
        calendar, _, starts = date_bounds(x.index)
        periods = calendar.to_period(self.refit)
        refits = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
        row_at = np.r_[starts, len(xv)]
        n = len(xv)
        probs = {c: np.full(n, np.nan) for c in CANDIDATES}
        chosen = np.full(n, -1, dtype=np.int8)
        base = np.full(n, np.nan)
        usable = np.isfinite(xv) & np.isfinite(yv)
        days_with_data = cumulative_days_with_data(usable, starts)
        # a few dozen refit dates; every row operation inside is vectorized
        for k, p, first, last in known_windows(refits, self.horizon, self.window, days_with_data,
                                               self.min_train_days):
            train = slice(row_at[first], row_at[last + 1])
            ok = usable[train]
            if ok.sum() < self.min_rows:
                continue
            xt, yt = xv[train][ok], yv[train][ok]
            a, b = fit_platt(xt, yt)
            curve = monotone_curve(xt, yt, self.smooth_bins, centred=False)
            end = refits[k + 1] if k + 1 < len(refits) else len(calendar)
            test = slice(row_at[p], row_at[end])
            xs = xv[test]
            okx = np.isfinite(xs)
            probs["platt"][test] = np.where(okx, expit(a + b * np.where(okx, xs, 0.0)), np.nan)
            probs["isotonic"][test] = np.where(okx, np.clip(curve.predict(np.where(okx, xs, 0.0)), 0.0, 1.0), np.nan)
            base[test] = float(yt.mean())
            chosen[test] = CANDIDATES.index(self._select(probs, yv, usable, row_at, last))
        pick = np.where(chosen == 1, probs["isotonic"], probs["platt"])
        out = pd.DataFrame({"prob_up": np.where(chosen >= 0, pick, np.nan), "prob_platt": probs["platt"],
                            "prob_isotonic": probs["isotonic"], "base_rate": base,
                            "method": pd.Categorical.from_codes(np.maximum(chosen, 0), CANDIDATES)},
                           index=x.index)
        return out[np.isfinite(out["prob_up"])]

    def _select(self, probs: Mapping[str, np.ndarray], y: np.ndarray, usable: np.ndarray, row_at: np.ndarray,
                last: int) -> str:
        """The candidate for the period starting after calendar row `last` + horizon + 1: the fixed
        method, or (auto) the lower Brier score over past out-of-sample probabilities of rows dated
        <= `last` (outcomes known by then), trailing `selection_window` dates; Platt when too few."""
        if self.method != "auto":
            return self.method
        first = 0 if self.selection_window is None else max(0, last - self.selection_window + 1)
        rows = slice(row_at[first], row_at[last + 1])
        both = usable[rows] & np.isfinite(probs["platt"][rows]) & np.isfinite(probs["isotonic"][rows])
        starts = row_at[first:last + 1] - row_at[first]
        days = cumulative_days_with_data(both, starts)[-1] if len(starts) else 0
        if days < self.selection_min_days:
            return "platt"
        yy = y[rows][both]
        scores = {c: float(np.mean((probs[c][rows][both] - yy) ** 2)) for c in CANDIDATES}
        return "isotonic" if scores["isotonic"] < scores["platt"] - self.selection_margin else "platt"


def probability_from_config(cfg: Mapping[str, Any]) -> ProbabilityCalibrator:
    """The ensemble config's `probability` section over the calibration's refit, warm-up and window
    (so `prob_up` starts with `expected_return`) and the horizon. Where the calibration chooses between
    several windows, the probability takes the first candidate."""
    cal = dict(cfg.get("calibration") or {})
    base = {k: cal[k] for k in ("refit", "min_train_days", "window") if k in cal}
    base["window"] = candidate_windows(base.get("window"))[0]
    return ProbabilityCalibrator(horizon=int(cfg["horizon"]), **{**base, **dict(cfg.get("probability") or {})})


# ================================================================================ judging
def _aligned(prob: pd.Series | np.ndarray, outcome: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(prob, pd.Series) and isinstance(outcome, pd.Series):
        outcome = outcome.reindex(prob.index)
    p, y = np.asarray(prob, dtype="float64"), np.asarray(outcome, dtype="float64")
    ok = np.isfinite(p) & np.isfinite(y)
    return p[ok], y[ok]


def brier_score(prob: pd.Series | np.ndarray, outcome: pd.Series | np.ndarray) -> float:
    """Mean squared difference between the probability and the 0/1 outcome (rows with both)."""
    p, y = _aligned(prob, outcome)
    return float(np.mean((p - y) ** 2)) if len(p) else float("nan")


def brier_skill_score(prob: pd.Series | np.ndarray, outcome: pd.Series | np.ndarray,
                      reference: pd.Series | np.ndarray) -> float:
    """1 - Brier(prob) / Brier(reference) on the rows where all three exist: above 0 beats the
    reference (e.g. the base rate known at the time), 0 matches it, below 0 is worse."""
    if isinstance(prob, pd.Series):
        outcome = outcome.reindex(prob.index) if isinstance(outcome, pd.Series) else outcome
        reference = reference.reindex(prob.index) if isinstance(reference, pd.Series) else reference
    frame = pd.DataFrame({"p": np.asarray(prob, dtype="float64"), "r": np.asarray(reference, dtype="float64"),
                          "y": np.asarray(outcome, dtype="float64")}).dropna()
    ref = float(np.mean((frame["r"] - frame["y"]) ** 2)) if len(frame) else float("nan")
    if not np.isfinite(ref) or ref <= 0:
        return float("nan")
    return 1.0 - float(np.mean((frame["p"] - frame["y"]) ** 2)) / ref


def reliability_table(prob: pd.Series | np.ndarray, outcome: pd.Series | np.ndarray, n_bins: int = 10,
                      strategy: str = "quantile") -> pd.DataFrame:
    """Bins of predicted probability (equal-count `quantile` bins, or `uniform` on [0, 1]): bin,
    count n, mean predicted and observed frequency of ups. On a calibrated forecast observed ~ predicted."""
    p, y = _aligned(prob, outcome)
    if not len(p):
        return pd.DataFrame(columns=["bin", "n", "predicted", "observed"])
    if strategy == "quantile":
        order = np.argsort(p, kind="stable")
        bins = np.empty(len(p), dtype=int)
        bins[order] = np.minimum((np.arange(len(p)) * n_bins) // len(p), n_bins - 1)
    elif strategy == "uniform":
        bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    else:
        raise ValueError(f"strategy must be quantile | uniform, got {strategy!r}")
    frame = pd.DataFrame({"bin": bins + 1, "p": p, "y": y})
    out = frame.groupby("bin").agg(n=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"))
    return out.reset_index()


def probability_metrics(probs: pd.DataFrame, outcome: pd.Series) -> dict[str, Any]:
    """The comparison-table figures of a `ProbabilityCalibrator.fit_predict` frame (restricted by the
    caller to the rows it judges): brier_score, brier_skill (against the base rate known at the time),
    base_rate (observed share of ups) and prob_method (the candidate used at the latest refit)."""
    y = outcome.reindex(probs.index)
    known = y.notna() & probs["prob_up"].notna()
    return {
        "brier_score": brier_score(probs["prob_up"], y),
        "brier_skill": brier_skill_score(probs["prob_up"], y, probs["base_rate"]),
        "base_rate": float(y[known].mean()) if known.any() else float("nan"),
        "prob_method": str(probs["method"].iloc[-1]) if len(probs) else "",
    }
