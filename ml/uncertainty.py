"""Model uncertainty (issue 16): date-block bootstrap ensembles of any zoo family, and return intervals
from a per-row score standard deviation, to be compared with the calibration's conformal intervals.

* `BootstrapEnsemble(estimator, n_boot, block="date", seed)` fits clones of a zoo estimator on
  bootstrap resamples of the training *dates* (whole cross-sections: names on one date share its
  market, so resampling rows would understate the uncertainty; `block=k` resamples runs of k
  consecutive dates, for overlapping forward-return labels). `predict` is the members' mean,
  `predict_std` their standard deviation: the model's own estimation uncertainty for each row.
* `std_intervals` turns such a std (bootstrap, or MC dropout of the neural families) into return
  intervals around the calibrated expected return: normalized split-conformal, like
  `ml.calibration.Calibrator`, but each residual is scaled by the name's volatility times its
  *relative* score std (its std over the day's median std). Walk-forward with the same purge, so the
  coverage is honest and the comparison with the conformal intervals is on sharpness (mean width) at
  (near) equal coverage: a std that knows which rows are uncertain gives narrower intervals there.
* `ensemble_score_std` combines per-model score stds into the std of the ensemble's score.

`config/ensemble.yaml` `intervals.method` (conformal | bootstrap | mc_dropout) selects which intervals
`ml.signals` carries; the non-conformal ones need a per-row std (`ml.prediction_std`), else conformal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone

from ml.calibration import BPS, candidate_windows, conformal_quantiles
from ml.ensemble import cumulative_days_with_data, known_windows
from ml.metrics import date_bounds, group_sums

INTERVAL_METHODS = ("conformal", "bootstrap", "mc_dropout")


# ================================================================================ bootstrap ensemble
def date_block_resample(n_dates: int, block: str | int, rng: np.random.Generator) -> np.ndarray:
    """Calendar positions of one bootstrap sample (n_dates of them, with repeats): single dates
    (`block="date"`) or runs of `block` consecutive dates starting at uniformly drawn positions."""
    k = 1 if block == "date" else int(block)
    if k < 1:
        raise ValueError(f"block must be 'date' or a positive number of dates, got {block!r}")
    k = min(k, n_dates)
    n_blocks = -(-n_dates // k)
    starts = rng.integers(0, n_dates - k + 1, size=n_blocks)
    return (starts[:, None] + np.arange(k)[None, :]).ravel()[:n_dates]


class BootstrapEnsemble(RegressorMixin, BaseEstimator):
    """Clones of `estimator` fitted on date-block bootstrap resamples of the training panel (see the
    module docstring). Works with any zoo family: moments-based families get resampled per-date
    moments (`fit_moments`), the others resampled rows, a repeated date's copies told apart by a
    suffixed symbol so each copy keeps its own cross-section. Deterministic given `seed`."""

    def __init__(self, estimator=None, n_boot: int = 10, block: str | int = "date", seed: int = 0):
        self.estimator = estimator
        self.n_boot = n_boot
        self.block = block
        self.seed = seed

    @property
    def uses_moments(self) -> bool:
        return bool(getattr(self.estimator, "uses_moments", False))

    @property
    def needs_state(self) -> bool:
        return bool(getattr(self.estimator, "needs_state", False))

    def _member(self, b: int):
        est = clone(self.estimator)
        for name in ("random_state", "seed"):
            if name in est.get_params():
                est.set_params(**{name: int(self.seed) * 1000 + b})
        return est

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> BootstrapEnsemble:
        """X indexed by (date, symbol) sorted by date; y aligned with X's rows."""
        _, codes, starts = date_bounds(X.index)
        yv = pd.Series(np.asarray(y.reindex(X.index) if isinstance(y, pd.Series) else y, dtype="float64"),
                       index=X.index)
        rng = np.random.default_rng(self.seed)
        ends = np.r_[starts[1:], len(X)]
        self.estimators_ = []
        for b in range(int(self.n_boot)):
            pos = np.sort(date_block_resample(len(starts), self.block, rng))
            lengths = ends[pos] - starts[pos]
            offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            rows = np.repeat(starts[pos], lengths) + offsets
            copy = np.repeat(_copy_number(pos), lengths).astype(str)
            Xb = X.iloc[rows]
            symbols = Xb.index.get_level_values("symbol").to_numpy().astype(str)
            tagged = np.where(copy != "0", np.char.add(np.char.add(symbols, "~"), copy), symbols)
            index = pd.MultiIndex.from_arrays([Xb.index.get_level_values("date"), tagged], names=["date", "symbol"])
            Xb = Xb.set_axis(index)
            self.estimators_.append(self._member(b).fit(Xb, pd.Series(yv.to_numpy()[rows], index=index)))
        return self

    def fit_moments(self, moments, features) -> BootstrapEnsemble:
        """Moments-based families: each member on the moments of the resampled dates (repeats count twice)."""
        rng = np.random.default_rng(self.seed)
        self.estimators_ = [self._member(b).fit_moments(
            moments.subset(np.sort(date_block_resample(moments.n_dates, self.block, rng))), features)
            for b in range(int(self.n_boot))]
        return self

    def predict_members(self, X: pd.DataFrame) -> np.ndarray:
        """(n_boot, rows) predictions of every member."""
        return np.stack([np.asarray(est.predict(X), dtype="float64") for est in self.estimators_])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_members(X).mean(axis=0)

    def predict_std(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_members(X).std(axis=0, ddof=1)

    def predict_mean_std(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        members = self.predict_members(X)
        return members.mean(axis=0), members.std(axis=0, ddof=1)


def _copy_number(pos: np.ndarray) -> np.ndarray:
    """For sorted positions with repeats, 0 for a date's first copy, 1 for its second, ..."""
    first = np.searchsorted(pos, pos, side="left")
    return np.arange(len(pos)) - first


# ================================================================================ ensemble std
def ensemble_score_std(raw_scores: pd.DataFrame, raw_std: pd.DataFrame, weights: pd.DataFrame) -> pd.Series:
    """Std of the ensemble score from per-model score stds: each model's std in its standardized units
    (divided by the day's cross-sectional sd of its raw scores), averaged with the ensemble's weights
    over the models that have a std on the row (renormalized). A first-order approximation that
    ignores the correlation of the members' errors across models (a weighted mean, not a quadrature
    sum: errors of models trained on the same dates are strongly correlated)."""
    raw_std = raw_std.reindex(index=raw_scores.index, columns=raw_scores.columns)
    calendar, codes, starts = date_bounds(raw_scores.index)
    x = raw_scores.to_numpy(dtype="float64")
    ok = np.isfinite(x)
    n = group_sums(ok.astype(float), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = group_sums(np.where(ok, x, 0.0), starts) / n
        sd = np.sqrt(np.maximum(group_sums(np.where(ok, x * x, 0.0), starts) / n - mean**2, 0.0))
        z_std = raw_std.to_numpy(dtype="float64") / sd[codes]
    w = weights.reindex(index=calendar, columns=raw_scores.columns).fillna(0.0).to_numpy()[codes]
    has = np.isfinite(z_std) & ok
    w = np.where(has, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (w * np.where(has, z_std, 0.0)).sum(axis=1) / w.sum(axis=1)
    return pd.Series(np.where(w.sum(axis=1) > 0, out, np.nan), index=raw_scores.index, name="score_std")


# ================================================================================ intervals
@dataclass
class StdIntervals:
    """Walk-forward return intervals around a calibrated expected return, normalized by each row's
    volatility scale times its relative score std (see the module docstring). At each refit date p the
    quantiles come from rows dated <= p - horizon - 1, per expected-return bucket like the conformal
    ones; rows before the first fit get no interval."""

    horizon: int = 5
    refit: str = "M"
    coverage: float = 0.8
    min_train_days: int = 126
    window: int | None = None
    n_buckets: int = 10
    rel_clip: tuple[float, float] = (0.25, 4.0)  # relative std bounds (a zero or huge std is noise)
    power: float = 1.0  # how strongly the relative std scales the interval (0: volatility only)

    def relative_std(self, std: pd.Series) -> pd.Series:
        """Each row's std over the median std of its date, clipped; 1 where unknown."""
        s = std.to_numpy(dtype="float64")
        _, codes, _ = date_bounds(std.index)
        med = pd.Series(np.where(np.isfinite(s) & (s > 0), s, np.nan)).groupby(codes).transform("median").to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.clip(s / med, *self.rel_clip) ** self.power
        return pd.Series(np.where(np.isfinite(rel), rel, 1.0), index=std.index)

    def fit_predict(self, expected_return: pd.Series, std: pd.Series, label: pd.Series,
                    scale: pd.Series | None = None) -> pd.DataFrame:
        """lower / upper (bps) for the rows of `expected_return` (bps); `label` in return units;
        `scale`: per-row return scale over the horizon (e.g. trailing vol * sqrt(h)), None: 1."""
        er = expected_return.sort_index()
        calendar, codes, starts = date_bounds(er.index)
        e = er.to_numpy(dtype="float64")
        y = label.reindex(er.index).to_numpy(dtype="float64") * BPS
        s = np.ones(len(e)) if scale is None else scale.reindex(er.index).to_numpy(dtype="float64") * BPS
        day_med = pd.Series(np.where(np.isfinite(s) & (s > 0), s, np.nan)).groupby(codes).transform("median")
        s = np.where(np.isfinite(s) & (s > 0), s, np.nan_to_num(day_med.to_numpy(), nan=1.0))
        r = s * self.relative_std(std.reindex(er.index)).to_numpy()
        lo, hi = np.full(len(e), np.nan), np.full(len(e), np.nan)
        row_at = np.r_[starts, len(e)]
        usable = np.isfinite(e) & np.isfinite(y)
        days = cumulative_days_with_data(usable, starts)
        periods = calendar.to_period(self.refit)
        refits = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
        alpha = (1.0 - self.coverage) / 2.0
        for k, p, first, last in known_windows(refits, self.horizon, self.window, days, self.min_train_days):
            train = slice(row_at[first], row_at[last + 1])
            ok = usable[train]
            if ok.sum() < 10 * self.n_buckets:
                continue
            et = e[train][ok]
            u = (y[train][ok] - et) / r[train][ok]
            edges = np.unique(np.quantile(et, np.linspace(0, 1, self.n_buckets + 1)[1:-1]))
            q_lo, q_hi = conformal_quantiles(u, np.searchsorted(edges, et, side="right"), len(edges) + 1, alpha)
            end = refits[k + 1] if k + 1 < len(refits) else len(calendar)
            test = slice(row_at[p], row_at[end])
            ev = e[test]
            okx = np.isfinite(ev)
            b = np.searchsorted(edges, np.where(okx, ev, 0.0), side="right")
            lo[test] = np.where(okx, ev + q_lo[b] * r[test], np.nan)
            hi[test] = np.where(okx, ev + q_hi[b] * r[test], np.nan)
        return pd.DataFrame({"lower": lo, "upper": hi}, index=er.index)


def interval_width(signals: pd.DataFrame) -> float:
    """Mean interval width (bps) over rows with an interval: the sharpness (smaller is sharper)."""
    w = (signals["upper"] - signals["lower"]).to_numpy(dtype="float64")
    return float(np.nanmean(w)) if np.isfinite(w).any() else float("nan")


def interval_score(signals: pd.DataFrame, realized: pd.Series, coverage: float = 0.8) -> float:
    """Mean interval (Winkler) score, bps: width plus 2 / alpha times how far a realized return falls
    outside. A proper score: it rewards narrow intervals only where they still cover, so it ranks
    interval methods that differ in both coverage and width (the mean width alone can favour an
    interval that is wide where it should be narrow and too narrow where it should be wide)."""
    y = realized.reindex(signals.index).to_numpy(dtype="float64") * BPS
    lo, hi = signals["lower"].to_numpy(dtype="float64"), signals["upper"].to_numpy(dtype="float64")
    ok = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return float("nan")
    k = 2.0 / (1.0 - coverage)
    score = (hi - lo) + k * np.maximum(lo - y, 0.0) + k * np.maximum(y - hi, 0.0)
    return float(score[ok].mean())


def interval_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The `intervals` section of the ensemble config with its defaults; validates the method."""
    spec = {"method": "conformal", **dict(cfg.get("intervals") or {})}
    if spec["method"] not in INTERVAL_METHODS:
        raise ValueError(f"intervals.method must be one of {INTERVAL_METHODS}, got {spec['method']!r}")
    return spec


def read_prediction_std(paths) -> pd.DataFrame | None:
    """`ml.prediction_std` (date, symbol, model_id, score_std: a bootstrap or MC-dropout std of each
    out-of-sample score) as a wide panel like the score panel; None when the warehouse has none."""
    import duckdb

    try:
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            long = con.execute("select date, symbol, model_id, score_std from ml.prediction_std").df()
    except (duckdb.Error, OSError):
        return None
    if long.empty:
        return None
    long = long.assign(date=pd.to_datetime(long["date"]), symbol=long["symbol"].astype(str))
    wide = long.pivot_table(index=["date", "symbol"], columns="model_id", values="score_std", aggfunc="last")
    wide.columns = [str(c) for c in wide.columns]
    return wide.sort_index()


def signal_intervals(signals: pd.DataFrame, weights: pd.DataFrame, raw_scores: pd.DataFrame,
                     score_std: pd.DataFrame | None, label: pd.Series, scale: pd.Series | None,
                     cfg: Mapping[str, Any], log=print) -> pd.DataFrame:
    """The calibration path's hook: an ensemble's signals with the configured intervals (conformal:
    unchanged); its score std from the models' stds (`ensemble_score_std`, the ensemble's weights)."""
    if interval_settings(cfg)["method"] == "conformal":
        return signals
    std = None
    if score_std is not None:
        if "model_id" in raw_scores.columns:  # long predictions (date, symbol, model_id, score)
            from ml.ensemble import score_panel

            raw_scores = score_panel(raw_scores)
        models = [m for m in raw_scores.columns if m in score_std.columns]
        if models:
            std = ensemble_score_std(raw_scores[models], score_std[models], weights[models])
    return apply_intervals(signals, std, label, scale, cfg, log)


def apply_intervals(signals: pd.DataFrame, score_std: pd.Series | None, label: pd.Series,
                    scale: pd.Series | None, cfg: Mapping[str, Any], log=print) -> pd.DataFrame:
    """`ml.signals` rows with lower / upper replaced by the configured interval method's (conformal:
    unchanged). Needs a per-row score std; without one the conformal intervals stay and it says so."""
    spec = interval_settings(cfg)
    if spec["method"] == "conformal":
        return signals
    if score_std is None or not np.isfinite(score_std.to_numpy(dtype="float64")).any():
        log(f"[ensemble] intervals.method={spec['method']} but no score std (ml.prediction_std) is available: "
            "keeping the conformal intervals")
        return signals
    cal = dict(cfg.get("calibration") or {})
    params = {k: v for k, v in spec.items() if k in ("rel_clip", "power", "n_buckets")}
    if "rel_clip" in params:
        params["rel_clip"] = tuple(params["rel_clip"])
    maker = StdIntervals(horizon=int(cfg["horizon"]), refit=cal.get("refit", "M"),
                         coverage=float(cal.get("coverage", 0.8)), min_train_days=int(cal.get("min_train_days", 126)),
                         window=candidate_windows(cal.get("window"))[0], **params)
    frame = signals.assign(date=pd.to_datetime(signals["date"])).set_index(["date", "symbol"])
    bands = maker.fit_predict(frame["expected_return"], score_std, label, scale)
    frame[["lower", "upper"]] = bands.reindex(frame.index).to_numpy()
    return frame.reset_index()[list(signals.columns)]
