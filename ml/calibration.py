"""From an ensemble score to an expected return with a prediction interval and an uncertainty.

Walk-forward, purged: at every refit date p (first date of each `refit` period) the calibrator is fitted
on rows dated <= p - horizon - 1 (their forward returns are realized by the close of p - 1) and
applied to the rows of [p, next refit). Nothing after p - 1 is used for a prediction at p.

* Expected return: centred isotonic (monotone) regression of the realized forward return, in bps, on
  the per-date transformed score (z or centered rank). Monotone keeps it honest with little capacity;
  centred keeps it strictly increasing between the pooled blocks, so it does not tie names the
  ensemble ranks apart (`monotone_curve`).
* Interval: normalized split-conformal. Residuals of the fit are divided by each name's scale (its
  trailing volatility over the horizon, known at the date), and the empirical quantiles of those
  scaled residuals per score bucket (with the finite-sample conformal correction) give lower/upper.
  Scaling by volatility keeps coverage even across calm/stressed periods and across names.
* Uncertainty (bps): the calibration's own standard error of the expected return (the bucket's mean
  realized return is an estimate: its standard error over the training dates, clustered by date and
  counting one independent date per `horizon` because forward returns overlap), combined in quadrature
  with how far the expected return moves when the score is moved by the models' disagreement (weighted
  cross-model sd of standardized scores); both inflated by the name's relative interval width (its
  noise level versus the day's median). The policy abstains where it exceeds the signal: a curve fitted
  to noise has a standard error as large as its values, so a market without alpha is not traded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from ml.ensemble import cumulative_days_with_data, date_bounds, known_windows, standardize
from ml.metrics import ic_summary

BPS = 1e4


def candidate_windows(window) -> list[int | None]:
    """The calibration's `window` setting as a list of candidates (None: expanding). The pieces that
    follow the calibration's window without choosing (prob_up, score-std intervals) take the first."""
    if isinstance(window, Sequence) and not isinstance(window, str):
        return [None if w is None else int(w) for w in window] or [None]
    return [None if window is None else int(window)]


@dataclass
class Calibrator:
    """Walk-forward isotonic calibration with conformal intervals (see the module docstring)."""

    horizon: int = 5
    refit: str = "M"
    min_train_days: int = 126  # dates in the training window with a usable (score, label) pair
    # trailing training dates; None: all data with a known label. A list (e.g. [null, 504]): every
    # candidate is fitted, and each refit period takes the one whose own out-of-sample expected returns had
    # the lower mean squared error over the last `choice_window` dates whose label is known then
    window: int | None | Sequence[int | None] = None
    choice_window: int = 252
    choice_min_days: int = 63  # known dates behind a choice; before that, the first candidate
    choice_min_t: float = 0.0  # leave the first candidate only when the other's lower loss has this t
    # scale each date's expected returns by the calibration's own out-of-sample track record so far
    # (`track_record_scale`); before `track_record_min_days` known dates, unscaled
    track_record: bool = True
    track_record_min_days: int = 63
    transform: str = "zscore"  # zscore | rank (per-date transform of the score)
    n_buckets: int = 10  # score buckets for the conformal quantiles
    coverage: float = 0.8
    disagreement_scale: float = 0.5  # score moved by this many cross-model sds for the uncertainty
    calibration_error: bool = True  # add the calibration's own standard error to the uncertainty
    smooth_bins: int | None = 50  # isotonic fit on this many quantile-bin means, linearly interpolated
    clip: float = 3.0
    chosen_window: list = field(default_factory=list, init=False, repr=False)  # (from date, window) chosen

    @property
    def windows(self) -> list[int | None]:
        """The candidate training windows (one, unless `window` is a list)."""
        return candidate_windows(self.window)

    def transform_score(self, score: pd.Series) -> pd.Series:
        return standardize(score.to_frame("s"), clip=self.clip, method=self.transform)["s"]

    def fit_predict(
        self,
        score: pd.Series,
        label: pd.Series,
        scale: pd.Series | None = None,
        dispersion: pd.Series | None = None,
    ) -> pd.DataFrame:
        """Signals for every row of `score` after the warm-up: expected_return, lower, upper,
        uncertainty (bps over the horizon), plus the transformed score `x`.

        `label`: realized forward return (return units) on the same (date, symbol) index;
        `scale`: per-row return scale over the horizon known at the date (e.g. trailing daily vol *
        sqrt(horizon)); None uses 1; `dispersion`: cross-model sd of standardized scores (or None).
        With several candidate windows, each refit period's rows come from the candidate chosen then
        (`choose_windows`)."""
        windows = self.windows
        fits = [self._fit_predict(score, label, scale, dispersion, w) for w in windows]
        if len(fits) == 1:
            self.chosen_window = []
            out = fits[0]
        else:
            out = self._choose(fits, windows, label)
        if not self.track_record or out.empty:
            return out.assign(track_record_scale=1.0)
        calendar = score.index.get_level_values("date").unique().sort_values()
        b = track_record_scale(out["expected_return"], label, calendar, self.horizon, self.track_record_min_days)
        return rescale(out, b.reindex(out.index.get_level_values("date")).to_numpy())

    def _fit_predict(self, score, label, scale, dispersion, window: int | None) -> pd.DataFrame:
        """`fit_predict` with one training window."""
        score = score.sort_index()
        x = self.transform_score(score).to_numpy()
        y = label.reindex(score.index).to_numpy(dtype="float64") * BPS
        s = np.ones(len(x)) if scale is None else scale.reindex(score.index).to_numpy(dtype="float64") * BPS
        s = np.where(np.isfinite(s) & (s > 0), s, np.nan)
        d = np.zeros(len(x)) if dispersion is None else dispersion.reindex(score.index).to_numpy(dtype="float64")
        calendar, codes, starts = date_bounds(score.index)
        # a name without a scale takes the median of the same date (never other, possibly later, dates)
        day_median = pd.Series(s).groupby(codes).transform("median").to_numpy()
        s = np.where(np.isfinite(s), s, np.where(np.isfinite(day_median), day_median, 1.0))
        periods = calendar.to_period(self.refit)
        refits = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
        er = np.full(len(x), np.nan)
        lo, hi, half_band = er.copy(), er.copy(), er.copy()
        row_at = np.r_[starts, len(x)]
        alpha = (1.0 - self.coverage) / 2.0
        days_with_data = cumulative_days_with_data(np.isfinite(x) & np.isfinite(y), starts)
        fitted_any = False
        for k, p, first, last in known_windows(refits, self.horizon, window, days_with_data,
                                               self.min_train_days):
            train = slice(row_at[first], row_at[last + 1])
            xt, yt, st = x[train], y[train], s[train]
            ok = np.isfinite(xt) & np.isfinite(yt)
            if ok.sum() < 10 * self.n_buckets:
                continue
            iso = monotone_curve(xt[ok], yt[ok], self.smooth_bins)
            u = (yt[ok] - iso.predict(xt[ok])) / st[ok]
            edges = np.unique(np.quantile(xt[ok], np.linspace(0, 1, self.n_buckets + 1)[1:-1]))
            bucket = np.searchsorted(edges, xt[ok], side="right")
            q_lo, q_hi = conformal_quantiles(u, bucket, len(edges) + 1, alpha)
            se = bucket_standard_errors(yt[ok], bucket, codes[train][ok], len(edges) + 1, self.horizon)
            end = refits[k + 1] if k + 1 < len(refits) else len(calendar)
            test = slice(row_at[p], row_at[end])
            xs = x[test]
            okx = np.isfinite(xs)
            pred = np.where(okx, iso.predict(np.where(okx, xs, 0.0)), np.nan)
            b = np.searchsorted(edges, np.where(okx, xs, 0.0), side="right")
            er[test] = pred
            lo[test] = np.where(okx, pred + q_lo[b] * s[test], np.nan)
            hi[test] = np.where(okx, pred + q_hi[b] * s[test], np.nan)
            move = self.disagreement_scale * np.nan_to_num(d[test])
            up, down = iso.predict(np.where(okx, xs + move, 0.0)), iso.predict(np.where(okx, xs - move, 0.0))
            spread = 0.5 * np.abs(up - down)
            half_band[test] = np.sqrt(spread ** 2 + se[b] ** 2) if self.calibration_error else spread
            fitted_any = True
        out = pd.DataFrame({"x": x, "expected_return": er, "lower": lo, "upper": hi}, index=score.index)
        if not fitted_any:
            out["uncertainty"] = np.nan
            return out.iloc[0:0]
        width = hi - lo
        ok = np.isfinite(width)
        # the day's median width, via a groupby (one pass over the panel)
        med = pd.Series(np.where(ok, width, np.nan)).groupby(codes).transform("median").to_numpy()
        rel = np.where(ok & (med > 0), width / med, 1.0)
        out["uncertainty"] = half_band * rel
        return out[np.isfinite(out["expected_return"])]

    def _choose(self, fits: list[pd.DataFrame], windows: list[int | None], label: pd.Series) -> pd.DataFrame:
        """Per refit period, the rows of the candidate chosen by `choose_windows`."""
        calendar = fits[0].index.get_level_values("date").unique()
        for f in fits[1:]:
            calendar = calendar.union(f.index.get_level_values("date").unique())
        y = label * BPS
        loss = pd.DataFrame({i: ((f["expected_return"] - y.reindex(f.index)) ** 2).groupby(level="date").mean()
                             for i, f in enumerate(fits)}).reindex(calendar)
        pick = choose_windows(loss, calendar.to_period(self.refit), self.horizon, self.choice_window,
                              self.choice_min_days, self.choice_min_t)
        changed = pick[pick.ne(pick.shift())]
        self.chosen_window = [(d, windows[i]) for d, i in changed.items()]
        parts = [f[pick.reindex(f.index.get_level_values("date")).to_numpy() == i] for i, f in enumerate(fits)]
        return pd.concat(parts).sort_index()


# the lowest track-record scale: not 0, so that the calibration curve's own values stay recoverable from the
# published ones (`unscale`) for the policy, which measures its own edge on them
TRACK_RECORD_FLOOR = 1e-6


def track_record_scale(expected: pd.Series, label: pd.Series, calendar: pd.DatetimeIndex, horizon: int,
                       min_days: int = 63) -> pd.Series:
    """Per date t, how much of its predicted spread the calibration has delivered out of sample so far:
    the slope through the origin of the realized label on the expected return (both demeaned per date,
    so it measures the cross-sectional scale), pooled over every date <= t - horizon - 1 (labels known
    at t), floored at `TRACK_RECORD_FLOOR` (nothing delivered); 1 while fewer than `min_days` such dates
    have both. Expanding, with no window to choose: a signal that decays after the calibration learned it
    (both real panels) is scaled down, one that holds stays near 1. `expected` in bps, `label` in return
    units, on (date, symbol)."""
    y = label.reindex(expected.index) * BPS
    ok = expected.notna() & y.notna()
    dates = expected.index.get_level_values("date")[ok.to_numpy()]
    x = expected[ok] - expected[ok].groupby(dates).transform("mean")
    y = y[ok] - y[ok].groupby(dates).transform("mean")
    xy = (x * y).groupby(dates).sum().reindex(calendar, fill_value=0.0)
    xx = (x * x).groupby(dates).sum().reindex(calendar, fill_value=0.0)
    n = pd.Series(1.0, index=pd.Index(dates).unique()).reindex(calendar, fill_value=0.0)  # dates, not rows
    lag = int(horizon) + 1
    cxy, cxx, cn = (v.cumsum().shift(lag, fill_value=0.0) for v in (xy, xx, n))
    slope = (cxy / cxx.where(cxx > 0)).clip(lower=TRACK_RECORD_FLOOR)
    return slope.where(cn >= int(min_days)).fillna(1.0).rename("track_record_scale")


def rescale(signals: pd.DataFrame, b: np.ndarray) -> pd.DataFrame:
    """Signals with the expected return scaled by b per row (b > 0, kept in `track_record_scale`); the
    interval moves with it (same width around the new centre) and the uncertainty scales with it, so the
    policy's abstention (uncertainty against the expected return) is unchanged. Columns a frame lacks
    (an interval, an uncertainty) stay absent."""
    out = signals.copy()
    b = np.asarray(b, dtype="float64")
    er = out["expected_return"].to_numpy(dtype="float64")
    out["expected_return"] = b * er
    for c in ("lower", "upper"):
        if c in out.columns:
            out[c] = out[c].to_numpy(dtype="float64") + (b - 1.0) * er
    if "uncertainty" in out.columns:
        out["uncertainty"] = b * out["uncertainty"].to_numpy(dtype="float64")
    out["track_record_scale"] = b
    return out


def unscale(signals: pd.DataFrame) -> pd.DataFrame:
    """The calibration curve's own signals from published ones: `rescale` by 1 / each row's
    `track_record_scale` (missing or absent: 1, as in a warehouse written before the column). The policy
    reads these: it measures its own edge per bp of expected return (`ml.portfolio.measured`), and a
    track record applied before that would be counted twice."""
    if "track_record_scale" not in signals.columns:
        return signals
    b = signals["track_record_scale"].to_numpy(dtype="float64")
    b = np.where(np.isfinite(b) & (b > 0), b, 1.0)
    if (b == 1.0).all():
        return signals
    return rescale(signals, 1.0 / b).assign(track_record_scale=1.0)


def choose_windows(loss: pd.DataFrame, periods: pd.PeriodIndex, horizon: int, window: int,
                   min_days: int, min_t: float = 0.0) -> pd.Series:
    """Per date, the candidate (column of `loss`: each candidate's daily out-of-sample mean squared error)
    used for it: at each period's first date p, the candidate with the lowest mean loss over the last
    `window` dates <= p - horizon - 1 (whose labels are known at p) on which every candidate has one;
    the first candidate while fewer than `min_days` such dates exist, or while the best one's gain over
    it has a t below `min_t` (`ml.metrics.ic_summary`'s, corrected for labels overlapping `horizon`
    days). Held for the whole period."""
    values = loss.to_numpy(dtype="float64")
    both = np.isfinite(values).all(axis=1)
    starts = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
    pick = np.zeros(len(loss), dtype=int)
    for k, p in enumerate(starts):
        last = p - horizon - 1
        end = starts[k + 1] if k + 1 < len(starts) else len(loss)
        rows = np.flatnonzero(both[: max(last + 1, 0)])[-window:]
        if len(rows) >= min_days:
            best = int(np.argmin(values[rows].mean(axis=0)))
            if best and min_t > 0 and not ic_summary(pd.Series(values[rows, 0] - values[rows, best]),
                                                     horizon)["t_stat"] >= min_t:
                best = 0
            pick[p:end] = best
    return pd.Series(pick, index=loss.index)


@dataclass
class _Curve:
    knots_x: np.ndarray
    knots_y: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.knots_x, self.knots_y)


def monotone_curve(x: np.ndarray, y: np.ndarray, n_bins: int | None = 50, centred: bool = True) -> _Curve:
    """Increasing fit of y on x: isotonic regression on the means of `n_bins` equal-count bins of x
    (count-weighted), centred, linear between knots and flat beyond. Binning first takes the noise out
    of the tails, where raw isotonic regression chases a few extreme outcomes.

    Centred isotonic regression (Oron and Flournoy, 2017): each block that the isotonic fit pooled
    becomes one knot, at the block's weighted mean x, instead of a flat step across it. The curve is
    then strictly increasing wherever the fit rises at all, so two names with different scores get
    different expected returns: a flat step would tie most of a day's names (60% of them on the
    default market) and throw away the ranking the ensemble was validated on. A fit with no rise at
    all (a market without alpha) stays one flat value. `centred=False`: the isotonic steps themselves
    (flat across each block, linear only between neighbouring bins), as ml/probability.py uses them.

    Centring smooths a true step into a ramp between block centres: right for an expected return,
    which moves smoothly with the score; a probability curve keeps its steps (its Platt-or-isotonic
    choice is judged on Brier scores, where a sharp threshold should stay sharp)."""
    if n_bins is None or len(x) <= 2 * n_bins:
        if not centred:
            iso = IsotonicRegression(out_of_bounds="clip").fit(x, y)
            return _Curve(np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_))
        bx, where = np.unique(x, return_inverse=True)  # one point per distinct x, weighted by its count
        counts = np.bincount(where).astype(float)
        by = np.bincount(where, y) / counts
    else:
        order = np.argsort(x, kind="stable")
        groups = np.minimum((np.arange(len(x)) * n_bins) // len(x), n_bins - 1)
        counts = np.bincount(groups, minlength=n_bins).astype(float)
        bx = np.bincount(groups, x[order], minlength=n_bins) / counts
        by = np.bincount(groups, y[order], minlength=n_bins) / counts
    fitted = IsotonicRegression().fit(bx, by, sample_weight=counts).predict(bx)
    return _centred(bx, fitted, counts) if centred else _Curve(bx, fitted)


def _centred(x: np.ndarray, fitted: np.ndarray, weights: np.ndarray) -> _Curve:
    """One knot per run of equal fitted values (an isotonic block), at the run's weighted mean x."""
    block = np.r_[0, np.cumsum(np.diff(fitted) != 0)]
    w = np.bincount(block, weights)
    return _Curve(np.bincount(block, weights * x) / w, np.bincount(block, weights * fitted) / w)


def bucket_standard_errors(y: np.ndarray, bucket: np.ndarray, dates: np.ndarray, n_buckets: int,
                           horizon: int) -> np.ndarray:
    """Per score bucket, the standard error of the mean realized return (bps): the mean over dates of the
    bucket's per-date mean, its sd across dates over sqrt(dates / horizon) (overlapping forward returns
    are about one independent observation per horizon; names on one date share its market). Buckets with
    fewer than two dates take the largest standard error found."""
    frame = pd.DataFrame({"y": y, "b": bucket, "d": dates})
    per_date = frame.groupby(["b", "d"], sort=False)["y"].mean()
    g = per_date.groupby(level="b")
    sd, n = g.std(ddof=1), g.size()
    se = (sd / np.sqrt(np.maximum(n / max(int(horizon), 1), 1.0))).reindex(range(n_buckets))
    fill = float(np.nanmax(se.to_numpy())) if np.isfinite(se.to_numpy()).any() else 0.0
    return se.fillna(fill).to_numpy(dtype="float64")


def conformal_quantiles(
    u: np.ndarray, bucket: np.ndarray, n_buckets: int, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per bucket, the lower and upper conformal quantiles of scaled residuals u at levels alpha and
    1 - alpha with the finite-sample correction (level ceil((n + 1) q) / n); empty buckets borrow
    the pooled quantiles."""
    frame = pd.DataFrame({"u": u, "b": bucket})
    g = frame.groupby("b")["u"]
    n = g.size().reindex(range(n_buckets)).fillna(0).to_numpy()
    lo_level = np.clip(np.floor((n + 1) * alpha) / np.maximum(n, 1), 0.0, 1.0)
    hi_level = np.clip(np.ceil((n + 1) * (1 - alpha)) / np.maximum(n, 1), 0.0, 1.0)
    q_lo, q_hi = np.empty(n_buckets), np.empty(n_buckets)
    pooled = np.quantile(u, [alpha, 1 - alpha])
    sorted_u = {b: np.sort(v.to_numpy()) for b, v in g}
    for b in range(n_buckets):  # a handful of buckets
        v = sorted_u.get(b)
        if v is None or len(v) < 20:
            q_lo[b], q_hi[b] = pooled
            continue
        q_lo[b] = np.quantile(v, lo_level[b])
        q_hi[b] = np.quantile(v, hi_level[b])
    return q_lo, q_hi


# ================================================================================ metrics
def interval_coverage(signals: pd.DataFrame, realized: pd.Series) -> float:
    """Share of rows with a realized return whose [lower, upper] (bps) contains it."""
    y = realized.reindex(signals.index) * BPS
    ok = y.notna() & signals["lower"].notna() & signals["upper"].notna()
    inside = (signals.loc[ok, "lower"] <= y[ok]) & (y[ok] <= signals.loc[ok, "upper"])
    return float(inside.mean()) if ok.any() else float("nan")


def calibration_table(signals: pd.DataFrame, realized: pd.Series, n_bins: int = 10,
                      score: str = "expected_return") -> pd.DataFrame:
    """Per score decile (per-date ranks pooled over dates): count, mean predicted and mean realized
    forward return (bps)."""
    y = realized.reindex(signals.index) * BPS
    frame = pd.DataFrame({"pred": signals["expected_return"], "score": signals[score], "y": y}).dropna()
    dates = frame.index.get_level_values("date")
    pct = frame.groupby(dates)["score"].rank(method="first", pct=True)
    frame["decile"] = np.clip(np.ceil(pct * n_bins), 1, n_bins).astype(int)
    return frame.groupby("decile").agg(n=("y", "size"), predicted=("pred", "mean"), realized=("y", "mean"))


def calibration_error(signals: pd.DataFrame, realized: pd.Series, n_bins: int = 10,
                      score: str = "expected_return") -> float:
    """Count-weighted mean |mean predicted - mean realized| over score deciles, divided by the
    realized top-minus-bottom decile spread (so it reads as a share of the signal's range)."""
    table = calibration_table(signals, realized, n_bins, score)
    if len(table) < 2:
        return float("nan")
    err = float(np.average((table["predicted"] - table["realized"]).abs(), weights=table["n"]))
    spread = float(table["realized"].iloc[-1] - table["realized"].iloc[0])
    return err / spread if spread > 0 else float("nan")
