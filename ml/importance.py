"""Feature importance over time: one definition for every zoo family, measured at each walk-forward refit.

Definition (method `permutation_rank_ic`). The importance of feature j at one refit is the drop in the
refit model's mean daily rank IC (`ml.metrics.daily_rank_ic`, the project's one definition, against
the spec's cross-sectional target) when column j is shuffled *within each date*: the cross-section of
every other column, the dates and the market state stay as they were, so only j's link to the target
breaks. It needs nothing but `predict`, so it means the same for a ridge, a booster, an MLP or any
`ZooEstimator` added later, and it is in units of rank IC: comparable across families and views.

Point in time. It is measured on the last dates of the refit's own training window (the tail
[window_start, train_end], labels purged before the test period as for the fit), never on the test
period: each value is known on the refit date. The model has been fitted on those rows, so it says
how much the model *relies* on a feature, not how well that holds out of sample (the walk-forward IC
answers that); a family that overfits a noise feature shows it here as reliance.

Cost (BENCHMARKS.md, "Feature importance at every refit"). It costs (features + 1) predictions of the
sample, which on a wide view rivals the refit itself, so it is held to yearly budgets split between
the refits measured in a year: (1) every refit is measured by default (`interval: null`; a pandas
period alias such as `Y` measures only the first refit of each period), (2) each measured refit
samples at most `dates_per_year` / (measured refits a year) dates (a quarterly family 42 / 4 = 10) and
(features + 1) x rows <= `max_predict_rows` / (measured refits a year) predicted rows, and at most
`max_rows` rows, (3) but never fewer than `min_dates` dates (nor more than `max_dates`). On a wide view
the floor binds: a quarterly booster on `all` measures 5 dates a refit. A model that is an exact
linear map of its features at a fixed market state (`linear_coefficients`: the moment-solved linear
families and the regime ridge, whose regime a within-date shuffle keeps) gets every shuffled score
from one vectorized update, score + coef_j (x_j shuffled - x_j), instead of a predict per feature:
the same numbers, without the per-call cost that dominates a monthly linear refit. One shuffle per
feature, seeded by the seed and the window: deterministic.

Config (`config/zoo.yaml`, key `importance`): enabled, interval, dates_per_year, max_dates, max_rows,
max_predict_rows, min_dates, min_names.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.cv import period_codes
from ml.metrics import daily_rank_ic
from ml.models.base import ZooEstimator, date_codes

if TYPE_CHECKING:  # ml.training imports this module
    from ml.training import PreparedView

METHOD = "permutation_rank_ic"
TABLE = "feature_importance"  # ml.feature_importance, written with ml.model_metrics (ml.pipeline)
COLUMNS = ["model_id", "family", "view", "refit_date", "feature", "importance", "method", "fold",
           "train_end", "window_start", "window_end", "baseline_ic"]


class ImportanceConfigError(ValueError):
    """An invalid `importance` section of the zoo configuration."""


@dataclass(frozen=True)
class ImportanceSettings:
    """How often and on how much data the importances are measured (zoo.yaml `importance:`)."""

    enabled: bool = True
    interval: str | None = None  # None: every refit; a pandas period alias: the first refit of each period
    dates_per_year: int = 42  # sampled dates a year, split between the measured refits ...
    max_dates: int = 42  # ... at most this many dates per refit (the training window's last ones)
    max_rows: int = 4000  # sample rows per refit: fewer dates on a wide universe ...
    max_predict_rows: int = 200_000  # ... and (features + 1) x rows predicted a year, split between refits ...
    min_dates: int = 5  # ... but never fewer dates than this in a refit
    min_names: int = 5  # the daily rank IC needs this many names on a date

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ImportanceSettings:
        raw = dict(cfg.get("importance") or {})
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ImportanceConfigError(f"importance: unknown keys {sorted(unknown)}; allowed {sorted(known)}")
        cast = {"enabled": bool, "interval": lambda v: None if v in (None, "", "none") else str(v)}
        out = cls(**{k: cast.get(k, int)(v) for k, v in raw.items()})
        if min(out.dates_per_year, out.max_dates, out.max_rows, out.max_predict_rows, out.min_dates,
               out.min_names) < 1:
            raise ImportanceConfigError(f"importance: counts must be >= 1: {raw}")
        if out.interval is not None:
            try:
                pd.Period("2020-01-01", freq=out.interval)
            except ValueError as exc:
                raise ImportanceConfigError(f"importance.interval: not a pandas period alias: {out.interval!r}") from exc
        return out


def periods_per_year(alias: str) -> int:
    """How many periods of a pandas alias a calendar year holds (M: 12, Q: 4, Y: 1)."""
    return max(len(np.unique(period_codes(pd.bdate_range("2001-01-01", "2001-12-31"), alias))), 1)


def measured_per_year(settings: ImportanceSettings, cadence: str | None) -> int:
    """Measured refits a year: the family's `cadence`, or `interval` when that is coarser."""
    per_year = periods_per_year(cadence) if cadence else 1
    if settings.interval is not None:
        per_year = min(per_year, periods_per_year(settings.interval))
    return per_year


def refit_share(settings: ImportanceSettings, cadence: str | None) -> ImportanceSettings:
    """The caps of one measured refit: the yearly budgets (`dates_per_year`, `max_predict_rows`) split
    between the refits measured in a year, within [min_dates, max_dates] dates."""
    per_year = measured_per_year(settings, cadence)
    dates = int(min(settings.max_dates, max(settings.min_dates, settings.dates_per_year // per_year)))
    return replace(settings, max_dates=dates, max_predict_rows=max(settings.max_predict_rows // per_year, 1))


def sample_window(bounds: np.ndarray, first: int, last: int, n_features: int,
                  settings: ImportanceSettings) -> tuple[int, int]:
    """Calendar positions [start, last]: the tail of the training window [first, last] that is measured:
    `max_dates` dates, fewer so that it holds about `max_rows` rows and (n_features + 1) x rows stays
    within `max_predict_rows`, but never fewer than `min_dates` (nor more than the window)."""
    n_dates = last - first + 1
    per_date = max((int(bounds[last + 1]) - int(bounds[first])) / max(n_dates, 1), 1.0)
    rows = min(settings.max_rows, settings.max_predict_rows / (n_features + 1))
    k = min(settings.max_dates, max(settings.min_dates, int(rows // per_date)), n_dates)
    return last - k + 1, last


def within_date_permutations(codes: np.ndarray, n_columns: int, rng: np.random.Generator) -> np.ndarray:
    """(n, n_columns) row indices: column j is a random permutation of the rows within each date.

    `codes` (the date of each row) must be sorted: sorting code + U[0, 1) keeps every row in its date
    block and shuffles it inside, for all columns in one argsort."""
    keys = np.asarray(codes, dtype="float64")[:, None] + rng.random((len(codes), n_columns))
    return np.argsort(keys, axis=0, kind="stable")


def linear_coefficients(model: ZooEstimator, X: pd.DataFrame) -> np.ndarray | None:
    """The model's weight on each column of `X` ((columns,), or (rows, columns) when a row's slopes
    depend on its other columns) when its prediction is exactly intercept + X @ w at those other
    columns (a family declares it with `linear_coefficients`); None for any other model."""
    getter = getattr(model, "linear_coefficients", None)
    return None if getter is None else getter(X)


def permutation_importance(
    model: ZooEstimator, X: pd.DataFrame, target: np.ndarray, features: list[str], seed: Any = 0,
    min_names: int = 5, score_from: int = 0,
) -> tuple[pd.Series, float]:
    """(importance per feature, baseline mean daily rank IC) of a fitted `model` on rows `X`.

    `X`: the design the model predicts from (index (date, symbol) grouped by date, feature and state
    columns); `target`: the row-aligned target. Rows before `score_from` are context only (a sequence
    family's trailing windows): shuffled and predicted, not scored. Importance = baseline mean daily
    rank IC minus the mean daily rank IC with that feature shuffled within each date (NaN when no
    date has `min_names` names).
    """
    codes, dates = date_codes(X.index)
    if np.any(np.diff(codes) < 0):
        raise ValueError("permutation_importance: rows must be sorted by date")
    cols = list(X.columns)
    missing = [f for f in features if f not in cols]
    if missing:
        raise ValueError(f"permutation_importance: X lacks features {missing[:5]}")
    values = X.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    perms = within_date_permutations(codes, len(features), np.random.default_rng(seed))
    scores = np.empty((len(values), len(features) + 1))

    def predict(array: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(pd.DataFrame(array, index=X.index, columns=cols)), dtype="float64").ravel()

    scores[:, 0] = predict(values)
    coef = linear_coefficients(model, X)
    if coef is not None:  # an exact linear map: shuffling x_j moves the score by coef_j (x_j shuffled - x_j)
        at = [cols.index(f) for f in features]
        design = np.nan_to_num(values[:, at], nan=0.0)  # the linear families read a missing value as 0
        shuffled = np.take_along_axis(design, perms, axis=0)
        scores[:, 1:] = scores[:, :1] + (shuffled - design) * coef[..., at]
    else:
        for j, feature in enumerate(features):
            c = cols.index(feature)
            kept = values[:, c].copy()
            values[:, c] = kept[perms[:, j]]
            scores[:, j + 1] = predict(values)
            values[:, c] = kept
    # own index (date, row number): never the shared view's MultiIndex (its lazy engine is not thread-safe)
    kept_rows = slice(int(score_from), None)
    index = pd.MultiIndex.from_arrays([dates[codes[kept_rows]], np.arange(len(codes))[kept_rows]], names=["date", "row"])
    label = pd.Series(np.asarray(target, dtype="float64")[kept_rows], index=index)
    ic = daily_rank_ic(pd.DataFrame(scores[kept_rows], index=index), label, min_names).to_numpy()
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(ic, axis=0) if np.isfinite(ic).any() else np.full(ic.shape[1], np.nan)
    return pd.Series(mean[0] - mean[1:], index=list(features), dtype="float64"), float(mean[0])


class RefitImportance:
    """Collects the importances of one spec's walk-forward refits (called by `ml.training`)."""

    def __init__(self, prep: PreparedView, family: str, cfg: Mapping[str, Any], seed: int,
                 cadence: str | None = None):
        self.prep, self.family, self.seed = prep, family, int(seed)
        self.settings = ImportanceSettings.from_config(cfg)
        self.share = refit_share(self.settings, cadence)  # the family's refit cadence splits the yearly budget
        self.parts: list[pd.DataFrame] = []
        self._last_period: pd.Period | None = None

    def due(self, refit_date) -> bool:
        """The first refit of each `interval` period (every refit when `interval` is None)."""
        if not self.settings.enabled or not self.prep.features:
            return False
        if self.settings.interval is None:
            return True
        period = pd.Period(pd.Timestamp(refit_date), freq=self.settings.interval)
        if period == self._last_period:
            return False
        self._last_period = period
        return True

    def record(self, fold: int, model: ZooEstimator, first: int, last: int, test_start: int) -> float:
        """Measure the refit of training window [first, last] (calendar positions) whose test period
        starts at `test_start`, when due; returns the seconds it took (0 when not due)."""
        if not self.due(self.prep.calendar[test_start]):
            return 0.0
        started = time.perf_counter()
        prep = self.prep
        w0, w1 = sample_window(prep.bounds, first, last, len(prep.features), self.share)
        # a family that reads each name's trailing window (`needs_history`, e.g. the sequence family)
        # gets its history before the window as context, as the trainer gives it (never past w1)
        history = int(getattr(model, "history_days", 0)) if getattr(type(model), "needs_history", False) else 0
        h0 = max(0, w0 - history)
        rows = prep.rows(h0, w1)
        X = prep.design(rows, type(model).needs_state, getattr(type(model), "needs_categories", False))
        imp, base = permutation_importance(model, X, prep.y[rows], prep.features, seed=[self.seed, first, last],
                                           min_names=self.settings.min_names,
                                           score_from=int(prep.bounds[w0] - prep.bounds[h0]))
        cal = prep.calendar
        self.parts.append(pd.DataFrame({
            "refit_date": cal[test_start], "feature": imp.index, "importance": imp.to_numpy(), "method": METHOD,
            "fold": fold, "train_end": cal[last], "window_start": cal[w0], "window_end": cal[w1], "baseline_ic": base,
        }))
        return time.perf_counter() - started

    def frame(self, model_id: str, view: str) -> pd.DataFrame:
        """The long table rows of this spec (COLUMNS), one per (refit, feature)."""
        if not self.parts:
            return empty_frame()
        out = pd.concat(self.parts, ignore_index=True)
        out.insert(0, "view", view)
        out.insert(0, "family", self.family)
        out.insert(0, "model_id", model_id)
        return out[COLUMNS]


def empty_frame() -> pd.DataFrame:
    dtypes = {"refit_date": "datetime64[ns]", "train_end": "datetime64[ns]", "window_start": "datetime64[ns]",
              "window_end": "datetime64[ns]", "importance": "float64", "baseline_ic": "float64", "fold": "int64"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "object")) for c in COLUMNS})


def importance_table(specs, model_ids: set[str] | None = None) -> pd.DataFrame:
    """`ml.feature_importance` rows of spec results (`training.SpecResult.importance`), optionally only
    the registered `model_ids`; dates as dates, one row per (model, refit, feature)."""
    parts = [s.importance for s in specs
             if getattr(s, "importance", None) is not None and len(s.importance)
             and (model_ids is None or s.model_id in model_ids)]
    out = pd.concat(parts, ignore_index=True) if parts else empty_frame()
    out = out.reindex(columns=COLUMNS)
    for col in ("refit_date", "train_end", "window_start", "window_end"):
        out[col] = pd.to_datetime(out[col]).dt.date
    out["fold"] = out["fold"].astype("int64")
    out["importance"] = out["importance"].astype("float64")
    out["baseline_ic"] = out["baseline_ic"].astype("float64")
    return out.sort_values(["model_id", "refit_date", "feature"], kind="stable").reset_index(drop=True)
