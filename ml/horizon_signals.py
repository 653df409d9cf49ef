"""Signals at several label horizons, each used at its own measured speed (issue 13, item 3).

The zoo may train extra-horizon models (`horizons:` in config/zoo.yaml; ids `<family>@<h>d-<view>-...`,
ml/models/horizons.py). A single blend of them all, judged by the 5-day label only, would trade every
horizon at one speed. So:

0. **The primary ensemble also weighs the shorter horizons' models** (`other_horizons: shorter` in
   config/ensemble.yaml): it learns each model's weight walk-forward on its own (primary) label, so a
   1-day model enters the 5-day blend only as far as it ranks 5-day returns (`primary_candidates`).
1. **One ensemble per horizon.** The models of horizon h are combined by the configured ensemble
   method against their own label (`fwd_ret_sn_<h>d`, known only h + 1 rows later) and calibrated into
   expected h-day returns (`ml.horizon_signals`, beside the primary `ml.signals`).
2. **What each horizon adds, at its own speed** (`horizon_alphas`, used by the held-book policy).
   Each extra horizon's expected return is first residualized, per date, on the signals before it
   (the primary first, then the extra horizons in increasing order), so a 1-day signal that mostly
   repeats the 5-day one adds only what it knows beyond it, and nothing is counted twice. Then the
   policy's own walk-forward edge measurement (`ml.portfolio.measured.measure_scaled_edge`) is run on
   that residual: the realized return per bp at each lag of the grid, shrunk by its t-statistic, and
   the lag where it peaks (its life). The alpha each residual brings is its expected return times its
   edge at its own peak, so a 2-day signal is worth what it earns in two days and a 3-month one what
   it earns over its life, each measured on past data only. A residual whose edge cannot be told from
   zero adds nothing: with no extra horizons, or none with a measured edge, the policy is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from typing import Any

import numpy as np
import pandas as pd

HORIZON_TAG = re.compile(r"@(\d+)d-")
HORIZON_SIGNAL_COLUMNS = ["date", "symbol", "horizon", "expected_return", "lower", "upper", "uncertainty",
                          "ensemble_version", "track_record_scale"]


def model_horizon(model_id: str, primary: int) -> int:
    """The label horizon a model was trained on: `@<h>d-` in its id, else the zoo's primary horizon."""
    m = HORIZON_TAG.search(str(model_id))
    return int(m.group(1)) if m else int(primary)


def models_by_horizon(models: Sequence[str], primary: int) -> dict[int, list[str]]:
    """{horizon: model ids}, the primary horizon first, then the others in increasing order."""
    out: dict[int, list[str]] = {}
    for m in models:
        out.setdefault(model_horizon(m, primary), []).append(str(m))
    return {h: out[h] for h in sorted(out, key=lambda h: (h != primary, h))}


OTHER_HORIZONS = ("none", "shorter", "all")


def primary_candidates(primary: Sequence[str], others: Mapping[int, Sequence[str]],
                       ensemble_cfg: Mapping[str, Any]) -> list[str]:
    """The models the primary ensemble may weigh, by `other_horizons`: `none` (its own horizon's only),
    `shorter` (the default: also every horizon shorter than the primary's) or `all`. They are weighed like
    any model, walk-forward on the primary label.

    Why shorter: a 1-day forecast predicts the first day of the 5-day label itself, a direct and less noisy
    read of its fast part; a 21-day forecast is mostly about days the 5-day label never sees. Measured on
    three markets (BENCHMARKS.md, "Shorter horizons' models in the primary ensemble"): the 1-day models
    raised the default's rank IC (t 2.0) and moved the others by noise; the 21-day ones never helped and
    cost the real panel 0.0013 (t -1.6)."""
    mode = ensemble_cfg["other_horizons"]  # the default lives in ml.ensemble.ENSEMBLE_DEFAULTS
    mode = {True: "all", False: "none", None: "none"}.get(mode, mode)  # YAML true / false / null
    if mode not in OTHER_HORIZONS:
        raise ValueError(f"other_horizons must be one of {OTHER_HORIZONS}, got {mode!r}")
    horizon = int(ensemble_cfg["horizon"])
    return list(primary) + [m for h in sorted(others) if mode == "all" or (mode == "shorter" and h < horizon)
                            for m in others[h]]


def horizon_config(ensemble_cfg: Mapping[str, Any], horizon: int) -> dict[str, Any]:
    """The ensemble configuration for horizon h: its label (`fwd_ret_sn_<h>d` unless the primary's
    label column is set explicitly for it) and its known lag."""
    cfg = deepcopy(dict(ensemble_cfg))
    cfg["horizon"] = int(horizon)
    cfg["label"] = {**dict(cfg.get("label") or {}), "column": f"fwd_ret_sn_{int(horizon)}d"}
    return cfg


def empty_horizon_signals() -> pd.DataFrame:
    return pd.DataFrame({
        "date": pd.Series(dtype="datetime64[ns]"), "symbol": pd.Series(dtype=str),
        "horizon": pd.Series(dtype="int64"), **{c: pd.Series(dtype="float64") for c in
                                                 ("expected_return", "lower", "upper", "uncertainty")},
        "ensemble_version": pd.Series(dtype=str), "track_record_scale": pd.Series(dtype="float64")})


def build_horizon_signals(
    panel: pd.DataFrame,
    horizons: Mapping[int, Sequence[str]],
    ensemble_cfg: Mapping[str, Any],
    label_for: Callable[[Mapping[str, Any]], pd.Series],
    calibrate: Callable[[Any, pd.Series, Mapping[str, Any]], pd.DataFrame],
    families: Mapping[str, str] | None = None,
    date_multipliers: pd.DataFrame | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """`ml.horizon_signals`: for each extra horizon h, the configured ensemble of its models against its
    own label, calibrated into expected h-day returns (bps). `label_for(cfg)` gives the realized label
    of a horizon's config; `calibrate(result, label, cfg)` the calibrated signal rows."""
    from ml import ensemble as ens

    frames = []
    for h, models in horizons.items():
        cfg = horizon_config(ensemble_cfg, h)
        label = label_for(cfg)
        method = str(cfg["method"])
        _, results = ens.ensembles_from_config(panel[list(models)], label, cfg, methods=[method], families=families,
                                               date_multipliers=date_multipliers)
        signals = calibrate(results[method], label, cfg)
        ic = ens.daily_rank_ic(results[method].score.to_frame("score"), label)["score"].mean()
        log(f"[ensemble] horizon {h}d: {len(models)} models, {method} rank IC {ic:+.4f} against {cfg['label']['column']}")
        frames.append(signals.assign(horizon=int(h)))
    if not frames:
        return empty_horizon_signals()
    out = pd.concat(frames, ignore_index=True)
    out["date"] = pd.to_datetime(out["date"])
    return out[HORIZON_SIGNAL_COLUMNS]


def component_grids(horizon_signals: pd.DataFrame | None, grid: Callable[[pd.Series], np.ndarray]
                    ) -> dict[int, np.ndarray]:
    """{horizon: dates x names expected returns} on the market grid (`grid`: MarketPanel.grid)."""
    if horizon_signals is None or horizon_signals.empty:
        return {}
    from ml.calibration import unscale

    frame = unscale(horizon_signals).assign(date=pd.to_datetime(horizon_signals["date"]),
                                            symbol=horizon_signals["symbol"].astype(str))
    return {int(h): grid(part.set_index(["date", "symbol"])["expected_return"])
            for h, part in frame.groupby("horizon", sort=True)}


def residualize(target: np.ndarray, bases: Sequence[np.ndarray]) -> np.ndarray:
    """Per date, the cross-sectional OLS residual of `target` on `bases` (with an intercept) over the
    names where all are finite; NaN elsewhere. Only same-date values enter: nothing from the future."""
    y = np.asarray(target, dtype=float)
    if not bases:
        return y.copy()
    ok = np.isfinite(y)
    for b in bases:
        ok &= np.isfinite(b)
    n = ok.sum(axis=1, keepdims=True)
    cols = [np.ones_like(y)] + [np.asarray(b, dtype=float) for b in bases]
    X = np.stack([np.where(ok, c, 0.0) for c in cols], axis=2)  # T x N x K
    yy = np.where(ok, y, 0.0)
    xtx = np.einsum("tnk,tnl->tkl", X, X)
    xty = np.einsum("tnk,tn->tk", X, yy)
    k = X.shape[2]
    coef = np.einsum("tkl,tl->tk", np.linalg.pinv(xtx, hermitian=True), xty)  # pinv: a date with collinear bases
    resid = yy - np.einsum("tnk,tk->tn", X, coef)
    return np.where(ok & (n > k), resid, np.nan)


def horizon_alphas(
    primary: np.ndarray,
    components: Mapping[int, np.ndarray],
    returns: np.ndarray,
    sigma: np.ndarray,
    exponents: tuple[float, ...] = (0.0, 1.0),
    lags: tuple[int, ...] = (1, 2, 3, 5, 10, 21),
    min_dates: int = 63,
) -> tuple[np.ndarray, np.ndarray, dict[int, Any]]:
    """The alpha the extra horizons add to the primary signal (dates x names, return per unit weight over
    each residual's own measured life), the longest such life per date (0: none), and each horizon's
    measured edge. Residuals are taken in order: each extra horizon on the primary and the extra
    horizons before it."""
    from ml.portfolio.measured import measure_scaled_edge

    T, N = np.shape(primary)
    extra, life = np.zeros((T, N)), np.zeros(T)
    bases: list[np.ndarray] = [np.asarray(primary, dtype=float)]
    edges: dict[int, Any] = {}
    for h in sorted(components):
        comp = np.asarray(components[h], dtype=float)
        resid = residualize(comp, bases)
        bases.append(comp)
        edge, _, multiplier = measure_scaled_edge(resid, returns, sigma, exponents=exponents, lags=lags,
                                                  min_dates=min_dates)
        extra += np.nan_to_num(resid * multiplier * edge.edge[:, None])
        life = np.maximum(life, edge.horizon)
        edges[int(h)] = edge
    return extra, life, edges
