"""Walk-forward training of the model zoo: out-of-sample predictions, per-fold records, serving models.

A *spec* is (family, view). `train_spec` runs one spec over a `PreparedView` (features normalized per
date once, cross-sectional target, per-date moments for the linear families) with the purged
`WalkForward` of `ml.cv`: at each refit it fits on the training window and scores the test period,
re-choosing hyper-parameters from the family's grid every `tune_every` refits on an inner purged
validation tail of the training window (never on data at or after the test window). It returns only
out-of-sample predictions (date, symbol, model_id, score), a fold table (windows, chosen params,
validation scores, timing) and the final model for serving: refit on every date up to the last one
with a complete label (rolling: the last `max_train_days` of them), with the hyper-parameters of the
last walk-forward refit (tuned on the final window itself when there was no fold).

Speed: features are normalized and (for the linear families) reduced to per-date moments once per
view; tree families and the MLP fit a deterministic random subsample of at most `max_train_rows`
training rows, seeded by (seed, window); every fit runs with `threads` BLAS/OpenMP threads (1 by
default: on a small shared host oversubscribed threads make LightGBM, XGBoost and BLAS many times
slower).

`train_zoo(frame_by_view, config, log)` runs every enabled (family, view) of `config/zoo.yaml` (its loader:
`ml.zoo_config`; view frames: `ml.view_frames`, both re-exported here)
with progress lines and returns predictions plus the out-of-sample metrics of each spec.

Frames. A view frame has columns `symbol`, `date`, the view's features and (or, under the key
`labels` of `frame_by_view`) the label columns named in the config. Feature columns are renamed
`<view>__<feature>` (Feast's full names; already-prefixed names are kept), so the `all` pseudo-view,
every view side by side, has no clashes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterGrid
from threadpoolctl import threadpool_limits

from ml.cv import WalkForward
from ml.importance import RefitImportance
from ml.metrics import daily_rank_ic, evaluate_scores
from ml.models.categories import (
    category_codes,
    category_columns,
)
from ml.models.uncertainty_scores import STD_COLUMN, FoldStd, StdSettings
from ml.view_frames import (  # noqa: F401 (re-exported: ml.training is where callers look)
    _keyed,
    build_view_frames,
    frames_from_wide,
    label_columns,
    load_view_frames,
)
from ml.zoo import (
    FAMILIES,
    CrossSectionalModel,
    DateMoments,
    ZooEstimator,
    cross_sectional_normalize,
    cross_sectional_target,
    make_model,
    market_state,
    state_source_columns,
)
from ml.zoo_config import (  # noqa: F401 (re-exported)
    ALL_VIEW,
    DEFAULT_CONFIG_PATH,
    DEFAULTS,
    FAMILY_KEYS,
    SEP,
    ConfigError,
    enabled_families,
    family_settings,
    load_config,
    longest_first,
    runs_on,
)


# ================================================================================ prepared view
@dataclass
class PreparedView:
    """A view ready for walk-forward: rows sorted by (date, symbol), features normalized per date."""

    view: str
    features: list[str]
    X: pd.DataFrame  # normalized features, index (date, symbol)
    state: pd.DataFrame  # date-level state columns (for regime families), same index
    state_columns: list[str]
    state_stat: str
    y: np.ndarray  # cross-sectional target (NaN where the label is missing)
    labels: pd.DataFrame  # raw label columns, same index
    calendar: np.ndarray  # unique dates (datetime64)
    codes: np.ndarray  # row -> calendar position
    bounds: np.ndarray  # rows of calendar position t: bounds[t]:bounds[t+1]
    preprocess: dict[str, Any]
    prepare_s: float = 0.0
    categories: pd.DataFrame | None = None  # category codes (ml/models/categories.py), same index
    _moments: DateMoments | None = field(default=None, repr=False)

    def rows(self, first: int, last: int) -> slice:
        return slice(int(self.bounds[first]), int(self.bounds[last + 1]))

    @property
    def moments(self) -> DateMoments:
        if self._moments is None:
            self._moments = DateMoments.from_arrays(
                self.X.to_numpy(), self.y, self.codes, len(self.calendar),
                state=self.state.to_numpy() if self.state.shape[1] else None, dates=self.calendar,
            )
        return self._moments

    def design(self, rows, with_state: bool, with_categories: bool = False) -> pd.DataFrame:
        X = self.X.iloc[rows]
        if with_categories and self.categories is not None:
            X = pd.concat([X, self.categories.iloc[rows]], axis=1)
        return pd.concat([X, self.state.iloc[rows]], axis=1) if with_state else X

    @property
    def last_labeled_pos(self) -> int:
        """Calendar position of the last date with any non-missing target."""
        labeled = np.flatnonzero(np.isfinite(self.y))
        return int(self.codes[labeled[-1]]) if len(labeled) else -1


def normalized_parts(parts) -> pd.DataFrame | None:
    """The normalized features of prepared views side by side, on the union of their (date, symbol) rows:
    what `prepare_view` would compute for a view joining them (`all`), since a feature's per-date
    normalization sees only the names holding it. None without parts."""
    frames = [p.X for p in parts if p is not None]
    return pd.concat(frames, axis=1) if frames else None


def prepare_view(frame: pd.DataFrame, view: str, cfg: Mapping, features: list[str] | None = None,
                 normalized: pd.DataFrame | None = None) -> PreparedView:
    """Sort, normalize the features per date, compute the target and the market state of one view.
    `normalized`: these features already normalized (`normalized_parts` of the views `all` joins), used
    when it holds every feature and the view has one row per (date, symbol); else computed here."""
    started = time.perf_counter()
    labels = label_columns(cfg)
    target_col = cfg["target"]["label"]
    if target_col not in frame.columns:
        raise ConfigError(f"view {view}: label column {target_col!r} not in frame")
    frame = _keyed(frame).sort_values(["date", "symbol"], kind="stable")
    unique_keys = not frame.duplicated(["date", "symbol"]).any()
    frame = frame.drop_duplicates(["date", "symbol"], keep="last")
    index = pd.MultiIndex.from_arrays([frame["date"].to_numpy(), frame["symbol"].to_numpy()], names=["date", "symbol"])
    cat_cols = category_columns(frame.columns)
    if features is None:
        features = [c for c in frame.columns if c not in ("date", "symbol", *labels, *cat_cols)
                    and pd.api.types.is_numeric_dtype(frame[c])]
    raw = pd.DataFrame(frame[features].to_numpy(dtype="float64", na_value=np.nan), index=index, columns=features)
    pre = cfg["preprocess"]
    if (normalized is not None and unique_keys and normalized.index.is_unique
            and set(features) <= set(normalized.columns)):
        X = normalized.reindex(index)[features].fillna(0.0)  # a row a part lacks: missing, so 0 as below
    else:
        X = cross_sectional_normalize(raw, pre["method"], float(pre["clip"]))
    state_cols, stat = state_source_columns(features, pre["state_pattern"])
    state = market_state(raw, state_cols, stat)
    y_raw = pd.Series(frame[target_col].to_numpy(dtype="float64"), index=index)
    y = cross_sectional_target(y_raw, cfg["target"]["transform"]).to_numpy()
    lab = pd.DataFrame({c: frame[c].to_numpy(dtype="float64") for c in labels if c in frame.columns}, index=index)
    calendar, codes = np.unique(frame["date"].to_numpy(dtype="datetime64[ns]"), return_inverse=True)
    bounds = np.searchsorted(codes, np.arange(len(calendar) + 1))
    return PreparedView(
        view=view, features=list(features), X=X, state=state, state_columns=state_cols, state_stat=stat,
        y=y, labels=lab, calendar=calendar, codes=codes, bounds=bounds, preprocess=dict(pre),
        prepare_s=time.perf_counter() - started,
        categories=category_codes(frame[cat_cols].set_axis(index)) if cat_cols else None,
    )


# ================================================================================ one spec
@dataclass
class SpecResult:
    model_id: str
    family: str
    view: str
    features: list[str]
    params: dict[str, Any]  # the final model's hyper-parameters
    predictions: pd.DataFrame  # out-of-sample only: date, symbol, model_id, score
    folds: pd.DataFrame
    final_model: CrossSectionalModel | None
    train_start: pd.Timestamp | None  # the final model's training window
    train_end: pd.Timestamp | None
    metrics: dict[str, Any]
    settings: dict[str, Any]
    seed: int
    elapsed_s: float
    cv: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    importance: pd.DataFrame | None = None  # ml.importance: one row per (refit, feature); None in old pickles


def _daily_rank_ic_mean(codes: np.ndarray, score: np.ndarray, target: np.ndarray, min_names: int = 5) -> float:
    """Mean over dates (`codes`) of the project's rank IC (`ml.metrics.daily_rank_ic`), for validation."""
    order = np.argsort(codes, kind="stable")
    index = pd.MultiIndex.from_arrays([np.asarray(codes)[order].astype("datetime64[ns]"), order], names=["date", "row"])
    ic = daily_rank_ic(pd.DataFrame({"s": np.asarray(score, dtype="float64")[order]}, index=index),
                       pd.Series(np.asarray(target, dtype="float64")[order], index=index), min_names)["s"]
    return float(ic.mean()) if ic.notna().any() else float("nan")


class _SpecRunner:
    """Fits one family on calendar windows of a prepared view (moments fast path or row matrices)."""

    def __init__(self, prep: PreparedView, family: str, settings: dict, seed: int):
        self.prep, self.family, self.settings, self.seed = prep, family, settings, seed
        self.cls = FAMILIES[family]

    def fit(self, first: int, last: int, params: dict, model=None) -> ZooEstimator:
        """Fit `params` on [first, last]; `model`: an unfitted wrapper to fit instead on the same rows
        (the bootstrap ensemble of `ml.models.uncertainty_scores`)."""
        model = make_model(self.family, **params) if model is None else model
        prep = self.prep
        if self.cls.uses_moments:
            return model.fit_moments(prep.moments.subset(np.arange(first, last + 1)), prep.features)
        rows = np.arange(prep.bounds[first], prep.bounds[last + 1])
        rows = rows[np.isfinite(prep.y[rows])]
        cap = self.settings["max_train_rows"]
        if cap and len(rows) > cap:
            rng = np.random.default_rng([self.seed, first, last])
            rows = np.sort(rng.choice(rows, size=int(cap), replace=False))
        if getattr(self.cls, "needs_history", False):  # sequence families: the panel up to `last`, y on `rows`
            from ml.models.sequence import history_design

            return model.fit(*history_design(prep, rows, first, last, model.history_days))
        X = prep.design(rows, self.cls.needs_state, self.cls.needs_categories)
        return model.fit(X, pd.Series(prep.y[rows], index=X.index))

    def predict(self, model: ZooEstimator, first: int, last: int) -> np.ndarray:
        if getattr(self.cls, "needs_history", False):  # windows reach back before `first`, never past `last`
            from ml.models.sequence import history_predict

            return history_predict(model, self.prep, first, last)
        return model.predict(self.prep.design(self.prep.rows(first, last), self.cls.needs_state,
                                              self.cls.needs_categories))

    def tune(self, wf: WalkForward, first: int, last: int, base: dict, grid: dict, val_fraction: float):
        """Best grid point by mean daily rank IC on the purged validation tail of [first, last]."""
        split = wf.inner_calendar_split(first, last, val_fraction)
        candidates = list(ParameterGrid(grid)) if grid else []
        if split is None or len(candidates) < 2:
            return ({**base, **candidates[0]} if candidates else dict(base)), {}
        a, b, v0, v1 = split
        rows = self.prep.rows(v0, v1)
        codes, target = self.prep.codes[rows], self.prep.y[rows]
        scores = {}
        best, best_score = None, -np.inf
        for cand in candidates:
            params = {**base, **cand}
            model = self.fit(a, b, params)
            score = _daily_rank_ic_mean(codes, self.predict(model, v0, v1), target)
            key = json.dumps(cand, sort_keys=True, default=str)
            scores[key] = score
            if np.isfinite(score) and score > best_score:
                best, best_score = params, score
        return (best if best is not None else {**base, **candidates[0]}), scores


def spec_model_id(family: str, view: str, cfg: Mapping, features: list[str], last_date) -> str:
    """Deterministic id: family, view and a digest of settings, target, CV, features and data end."""
    payload = json.dumps(
        {"family": family_settings(cfg, family), "target": cfg["target"], "cv": cfg["cv"],
         "preprocess": cfg["preprocess"], "features": features, "end": str(last_date)},
        sort_keys=True, default=str,
    )
    tag = str(cfg["target"].get("tag") or "")  # "@<h>d" for an extra label horizon
    return f"{family}{tag}-{view}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


def train_spec(
    prep: PreparedView,
    family: str,
    cfg: Mapping | None = None,
    log: Callable[[str], None] | None = None,
    fit_final: bool = True,
) -> SpecResult:
    """Walk-forward one family on one prepared view: OOS predictions, fold table, final model."""
    cfg = load_config(cfg) if not isinstance(cfg, dict) or "cv" not in cfg else cfg
    with threadpool_limits(limits=int(cfg.get("threads") or 1)):
        return _train_spec(prep, family, cfg, log, fit_final)


def _train_spec(prep: PreparedView, family: str, cfg: Mapping, log, fit_final: bool) -> SpecResult:
    started = time.perf_counter()
    settings = family_settings(cfg, family)
    cv = cfg["cv"]
    seed = int(cfg["seed"])
    wf = WalkForward(
        cadence=settings["cadence"], horizon=int(cv["horizon"]), embargo=int(cv["embargo"]),
        min_train_days=int(cv["min_train_days"]), max_train_days=settings["max_train_days"],
        first_test_date=cv.get("first_test_date"),
    )
    runner = _SpecRunner(prep, family, settings, seed)
    importance = RefitImportance(prep, family, cfg, seed, settings["cadence"])  # per refit, its window's tail
    stds = FoldStd(StdSettings.from_config(cfg), runner, family, seed)  # intervals.method's per-row std
    last_labeled = prep.last_labeled_pos
    model_id = spec_model_id(family, prep.view, cfg, prep.features,
                             prep.calendar[last_labeled] if last_labeled >= 0 else None)
    grid, base = settings["grid"], settings["params"]
    chosen: dict | None = None
    fold_rows, scores = [], []
    for k, (a, b, s, e) in enumerate(wf.calendar_folds(prep.calendar)):
        t0 = time.perf_counter()
        tuned, val_scores = False, {}
        if chosen is None or (grid and k % settings["tune_every"] == 0):
            chosen, val_scores = runner.tune(wf, a, b, base, grid, float(cv["val_fraction"]))
            tuned = bool(val_scores)
        model = runner.fit(a, b, chosen)
        scores.append(runner.predict(model, s, e))
        fold_rows.append({
            "fold": k, "train_start": prep.calendar[a], "train_end": prep.calendar[b],
            "test_start": prep.calendar[s], "test_end": prep.calendar[e],
            "n_train_dates": b - a + 1, "n_test_rows": int(prep.bounds[e + 1] - prep.bounds[s]),
            "params": json.dumps(chosen, sort_keys=True, default=str), "tuned": tuned,
            "val_scores": json.dumps(val_scores), "fit_s": time.perf_counter() - t0,
        })
        fold_rows[-1]["importance_s"] = importance.record(k, model, a, b, s)
        fold_rows[-1]["std_s"] = stds.record(k, model, a, b, s, e, chosen)
    folds = pd.DataFrame(fold_rows)
    if fold_rows:
        first_test = int(np.searchsorted(prep.calendar, np.datetime64(folds["test_start"].iloc[0])))
        rows = slice(int(prep.bounds[first_test]), len(prep.codes))
        idx = prep.X.index[rows]
        predictions = pd.DataFrame({
            "date": idx.get_level_values("date"), "symbol": idx.get_level_values("symbol"),
            "model_id": model_id, "score": np.concatenate(scores),
        })
        if stds.active:
            predictions[STD_COLUMN] = stds.column()
    else:
        rows = slice(0, 0)
        predictions = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "symbol": pd.Series(dtype=str),
                                    "model_id": pd.Series(dtype=str), "score": pd.Series(dtype=float)})
    final_model, train_start, train_end = None, None, None
    final_params = dict(chosen) if chosen is not None else dict(base)
    if fit_final and last_labeled >= 0:
        first = 0 if settings["max_train_days"] is None else max(0, last_labeled - int(settings["max_train_days"]) + 1)
        if chosen is None:
            final_params, _ = runner.tune(wf, first, last_labeled, base, grid, float(cv["val_fraction"]))
        est = runner.fit(first, last_labeled, final_params)
        pre = prep.preprocess
        final_model = CrossSectionalModel.from_fitted(
            est, prep.features, preprocess=pre["method"], clip=float(pre["clip"]),
            state_pattern=pre["state_pattern"],
            state_columns=prep.state_columns if est.needs_state else [], state_stat=prep.state_stat,
        )
        train_start, train_end = pd.Timestamp(prep.calendar[first]), pd.Timestamp(prep.calendar[last_labeled])
    metrics = evaluate_predictions(predictions, prep.labels.iloc[rows], cfg)
    elapsed = time.perf_counter() - started
    result = SpecResult(
        model_id=model_id, family=family, view=prep.view, features=list(prep.features), params=final_params,
        predictions=predictions, folds=folds, final_model=final_model, train_start=train_start,
        train_end=train_end, metrics=metrics, settings=settings, seed=seed, elapsed_s=elapsed,
        cv={**dict(cv), "cadence": settings["cadence"], "max_train_days": settings["max_train_days"]},
        target=dict(cfg["target"]), importance=importance.frame(model_id, prep.view),
    )
    if log:
        log(f"{family} x {prep.view}: {len(folds)} folds, OOS rank IC {metrics.get('rank_ic', float('nan')):.4f}"
            f" in {elapsed:.1f}s")
    return result


def evaluate_predictions(predictions: pd.DataFrame, labels: pd.DataFrame, cfg: Mapping) -> dict[str, Any]:
    """`metrics.evaluate_scores` of OOS predictions against the raw label columns of the same rows.

    `labels` is row-aligned with `predictions` (taken by position from the prepared view): the zoo's
    tasks share one PreparedView across threads, and a label lookup by MultiIndex would build that
    index's lazy hash engine concurrently, which pandas does not make thread-safe (spurious KeyError).
    """
    ev = cfg["evaluation"]
    targets = {h: c for h, c in ev["labels"].items() if c in labels.columns}
    if predictions.empty or int(ev["primary"]) not in targets:
        return {"n_days": 0}
    if len(labels) != len(predictions):
        raise ValueError(f"labels ({len(labels)} rows) are not row-aligned with predictions ({len(predictions)})")
    frame = pd.DataFrame({"date": predictions["date"].to_numpy(), "score": predictions["score"].to_numpy()})
    for col in targets.values():
        frame[col] = labels[col].to_numpy()
    return evaluate_scores(frame, "score", targets, primary=int(ev["primary"]))


# ================================================================================ the zoo
@dataclass
class ZooResult:
    specs: list[SpecResult]
    predictions: pd.DataFrame  # all OOS predictions: date, symbol, model_id, score
    metrics: pd.DataFrame  # one row per spec: model_id, family, view, metrics..., seconds
    timings: dict[str, float]


def train_zoo(
    frame_by_view: Mapping[str, pd.DataFrame],
    config: str | Path | Mapping | None = None,
    log: Callable[[str], None] | None = print,
    families: list[str] | None = None,
    views: list[str] | None = None,
) -> ZooResult:
    """Walk-forward every enabled (family, view) of the config; progress lines through `log`.

    `frame_by_view`: raw view frames (and optionally `labels`), e.g. from `load_view_frames` or
    `frames_from_wide`. `families` / `views` narrow the configured lists.
    """
    say = log or (lambda _msg: None)
    cfg = load_config(config)
    if views is not None:
        cfg["views"] = list(views)
    fams = [f for f in enabled_families(cfg) if families is None or f in families]
    started = time.perf_counter()
    frames = build_view_frames(frame_by_view, cfg)
    skipped = [v for v in cfg["views"] if v not in frames]
    if skipped:
        say(f"[zoo] views without data, skipped: {', '.join(skipped)}")
    from ml.models.horizons import horizon_config, horizon_specs, retarget

    n_base = sum(runs_on(cfg, f, v) for v in frames for f in fams)
    total = n_base + sum(runs_on(cfg, f, v) for v in frames for f, _ in horizon_specs(cfg, fams))
    say(f"[zoo] {len(fams)} families x {len(frames)} views = {n_base} models"
        + (f", + {total - n_base} on other label horizons" if total > n_base else ""))
    specs: list[SpecResult] = []
    timings: dict[str, float] = {}
    done = 0
    parts: list[PreparedView] = []
    for view, frame in frames.items():
        prep = prepare_view(frame, view, cfg, normalized=normalized_parts(parts) if view == ALL_VIEW else None)
        if view != ALL_VIEW:
            parts.append(prep)
        timings[f"prepare:{view}"] = prep.prepare_s
        runs = [(fam, None, prep, cfg) for fam in fams if runs_on(cfg, fam, view)]
        for h in dict.fromkeys(h for _, h in horizon_specs(cfg, fams)):
            cfg_h = horizon_config(cfg, h)
            prep_h = retarget(prep, cfg_h)  # one per horizon: its families share the per-date moments
            runs += [(fam, h, prep_h, cfg_h) for fam, hh in horizon_specs(cfg, fams)
                     if hh == h and runs_on(cfg, fam, view)]
        for fam, h, prep_run, cfg_run in runs:
            res = train_spec(prep_run, fam, cfg_run)
            specs.append(res)
            done += 1
            name = fam if h is None else f"{fam}@{h}d"
            timings[f"{name}:{view}"] = res.elapsed_s
            say(f"[zoo] {done}/{total} {name:<13} x {view:<15} rank IC {res.metrics.get('rank_ic', float('nan')):+.4f}"
                f"  {res.elapsed_s:6.1f}s  (elapsed {time.perf_counter() - started:6.1f}s)")
        for _, _, prep_run, _ in runs:
            prep_run._moments = None
    timings["total"] = time.perf_counter() - started
    result = zoo_result(specs, timings)
    say(f"[zoo] done: {total} models in {timings['total']:.1f}s")
    return result


def zoo_result(specs: list[SpecResult], timings: dict[str, float] | None = None) -> ZooResult:
    """Gather spec results (from `train_zoo` or from one task per spec) into a ZooResult."""
    preds = [s.predictions for s in specs if len(s.predictions)]
    predictions = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(
        columns=["date", "symbol", "model_id", "score"])
    metrics = pd.DataFrame([
        {"model_id": s.model_id, "family": s.family, "view": s.view, **s.metrics, "seconds": s.elapsed_s,
         "n_folds": len(s.folds), "n_features": len(s.features)}
        for s in specs
    ])
    return ZooResult(specs=specs, predictions=predictions, metrics=metrics, timings=dict(timings or {}))
