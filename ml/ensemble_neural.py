"""Two more ensemble weighters (issue 16): a small neural meta-model and a walk-forward choice of method.

* `NeuralStacked` - a softmax-gated combination: each date's model weights are a softmax over models of
  `bias[m] + MLP(features[t, m])`, where the features are what is known about model m at date t (its
  trailing out-of-sample IC and ICIR, lagged by horizon + 1 rows, and whether they are known yet). The
  tiny MLP (shared across models, so it generalizes to models it has not seen) and the per-model biases
  are fitted by full-batch Adam to maximize the mean daily correlation of the combined score with the
  per-date ranked label, with an L2 penalty that pulls every logit toward zero, i.e. toward equal
  weights. Refitted every `refit` period on dates whose label is known by then, from the same seeded
  initial parameters: deterministic, and nothing after `refit date - horizon - 1` reaches a weight.
  Training runs on per-date sufficient statistics (X'X, X'y, y'y of the date's cross-section), so a
  step costs O(dates x models^2), whatever the number of names.
* `WalkForwardChoice` - the choice between ensemble methods made walk-forward: at each date all weight
  goes to the candidate method (equal, ic_weighted, stacked, neural_stacked, ...) whose ensemble had the
  best trailing out-of-sample rank IC known at that date (labels known horizon + 1 rows later). The
  method picked by full-sample results is hindsight; this one is what a forecaster could have run.

Both follow the `ml.ensemble.Weighter` protocol and are registered in `ml.ensemble.make_weighter`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.metrics import date_bounds, group_sums


# ================================================================================ per-date statistics
def date_statistics(panel: pd.DataFrame, y: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
    """Centered per-date cross-product statistics of the standardized scores (missing -> 0, the
    neutral score) and the label on rows with a label: n (D,), sxx (D, m, m), sxy (D, m), syy (D,)."""
    ok = np.isfinite(y)
    x = np.where(np.isfinite(panel.to_numpy(dtype="float64")) & ok[:, None], panel.to_numpy(dtype="float64"), 0.0)
    yy = np.where(ok, y, 0.0)
    w = ok.astype(float)
    n = group_sums(w, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = group_sums(x, starts) / np.maximum(n, 1.0)[:, None]
        my = group_sums(yy, starts) / np.maximum(n, 1.0)
    codes = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(y)]))
    xc = np.where(ok[:, None], x - mx[codes], 0.0)
    yc = np.where(ok, yy - my[codes], 0.0)
    ends = np.r_[starts[1:], len(y)]
    sxx = np.stack([xc[a:b].T @ xc[a:b] for a, b in zip(starts, ends, strict=True)])  # one small product per date
    return {"n": n, "sxx": sxx, "sxy": group_sums(xc * yc[:, None], starts), "syy": group_sums(yc * yc, starts)}


def gate_features(stats: Mapping[str, np.ndarray], calendar: pd.DatetimeIndex, columns, horizon: int,
                  window: int, min_periods: int, min_names: int) -> np.ndarray:
    """(D, m, 3) features known at each date: trailing mean daily IC (x10), trailing ICIR, and 1 where
    they are known (0 and 0 otherwise); the IC of date s enters at row s + horizon + 1."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = stats["sxy"] / np.sqrt(np.einsum("dmm->dm", stats["sxx"]) * stats["syy"][:, None])
    ic = np.where((stats["n"][:, None] >= min_names) & np.isfinite(ic), ic, np.nan)
    frame = pd.DataFrame(ic, index=calendar, columns=columns)
    roll = frame.rolling(window, min_periods=min_periods)
    mean = roll.mean().shift(horizon + 1).to_numpy()
    sd = roll.std().shift(horizon + 1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        icir = mean / np.where(sd > 0, sd, np.nan)
    known = np.isfinite(mean) & np.isfinite(icir)
    feats = np.stack([np.where(known, np.clip(10.0 * mean, -3, 3), 0.0),
                      np.where(known, np.clip(icir, -3, 3), 0.0), known.astype(float)], axis=-1)
    return feats


# ================================================================================ the neural weighter
def _train_fn(hidden: int, steps: int, warm_steps: int, learning_rate: float):
    """Jitted full-batch trainers (cold: `steps`, warm-started: `warm_steps`; jax caches them per
    shape): params0, data, train-date mask -> params."""
    from ml.models.neural import jax_modules

    jax, jnp, optax = jax_modules()  # CPU only, single-threaded XLA kernels

    def logits(params, feats, present):
        h = jnp.tanh(feats @ params["w1"] + params["b1"])  # (D, m, hidden)
        z = params["bias"][None, :] + h @ params["w2"]
        return jnp.where(present, z, -1e9)

    def loss(params, feats, present, sxx, sxy, syy, mask, l2):
        z = logits(params, feats, present)
        w = jax.nn.softmax(z, axis=-1)
        cov = jnp.sum(w * sxy, axis=-1)
        var = jnp.sum(w * jnp.matmul(sxx, w[..., None])[..., 0], axis=-1)
        corr = cov / jnp.sqrt(var * syy + 1e-12)
        n_train = jnp.maximum(jnp.sum(mask), 1.0)
        fit = jnp.sum(jnp.where(mask, corr, 0.0)) / n_train
        # the pull toward equal weights: each date's logits' spread around their mean over present models
        k = jnp.maximum(jnp.sum(present, axis=-1), 1.0)
        zc = jnp.where(present, z - jnp.sum(jnp.where(present, z, 0.0), axis=-1, keepdims=True) / k[:, None], 0.0)
        spread = jnp.sum(jnp.where(mask, jnp.sum(zc * zc, axis=-1) / k, 0.0)) / n_train
        decay = jnp.sum(params["w1"] ** 2) + jnp.sum(params["w2"] ** 2)
        return -fit + l2 * spread + 1e-3 * decay

    opt = optax.adam(learning_rate)

    def make(n_steps):
        @jax.jit
        def train(params, feats, present, sxx, sxy, syy, mask, l2):
            def step(carry, _):
                p, s = carry
                g = jax.grad(loss)(p, feats, present, sxx, sxy, syy, mask, l2)
                upd, s = opt.update(g, s, p)
                return (optax.apply_updates(p, upd), s), None

            (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=n_steps)
            return params

        return train

    return make(steps), make(warm_steps)


def gate_weights(params: Mapping[str, np.ndarray], feats: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The gate's forward pass in numpy (dates x models weights; zero where a model has no score)."""
    h = np.tanh(feats @ params["w1"] + params["b1"])
    z = np.where(present, params["bias"][None, :] + h @ params["w2"], -np.inf)
    z = z - np.max(np.where(present, z, -1e300), axis=-1, keepdims=True)
    e = np.where(present, np.exp(z), 0.0)
    return e / np.maximum(e.sum(axis=-1, keepdims=True), 1e-300)


_TRAINERS: dict[tuple, Any] = {}


@dataclass
class NeuralStacked:
    """Walk-forward softmax-gated meta-model (see the module docstring). Equal weights over the models
    present until `min_train_days` dates with a label exist; `l2` (strength of the pull toward equal
    weights) is deliberately large: the daily IC differences between zoo models are mostly noise."""

    horizon: int = 5
    refit: str = "M"
    hidden: int = 8
    l2: float = 0.05  # strength of the pull of each date's logits toward their mean (equal weights)
    steps: int = 150  # Adam steps of the first fit
    warm_steps: int = 30  # ... of each later fit, started from the previous refit's parameters
    learning_rate: float = 0.05
    min_train_days: int = 126
    window: int | None = None  # trailing training dates; None: expanding
    ic_window: int = 63  # trailing dates of the gate's IC features
    ic_min_periods: int = 21
    label_transform: str = "rank"
    date_stride: int | None = None  # train on every k-th date (None: the horizon)
    min_names: int = 10
    seed: int = 0
    fitted: list = field(default_factory=list, init=False, repr=False)  # (refit date, params) of the last call

    def weights(self, panel: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
        from ml.ensemble import cumulative_days_with_data, known_windows, standardize
        from ml.models.neural import jax_modules

        jax, jnp, _ = jax_modules()

        calendar, _, starts = date_bounds(panel.index)
        y = standardize(label.reindex(panel.index).to_frame("y"), method=self.label_transform)["y"].to_numpy()
        stats = date_statistics(panel, y, starts)
        feats = gate_features(stats, calendar, panel.columns, self.horizon, self.ic_window, self.ic_min_periods,
                              self.min_names)
        present = group_sums(np.isfinite(panel.to_numpy(dtype="float64")).astype(float), starts) > 0
        usable = (stats["n"] >= self.min_names) & (stats["syy"] > 0)
        n_models = panel.shape[1]
        counts = present.sum(axis=1, keepdims=True)
        out = np.where(present, 1.0 / np.maximum(counts, 1), 0.0)
        days = cumulative_days_with_data(np.repeat(usable, np.diff(np.r_[starts, len(y)])), starts)
        periods = calendar.to_period(self.refit)
        refits = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
        key = (self.hidden, self.steps, self.warm_steps, self.learning_rate)
        if key not in _TRAINERS:
            _TRAINERS[key] = _train_fn(*key)
        train_cold, train_warm = _TRAINERS[key]
        k1, k2 = jax.random.split(jax.random.PRNGKey(self.seed))
        init = {"w1": 0.5 * jax.random.normal(k1, (feats.shape[-1], self.hidden)),
                "b1": 0.1 * jax.random.normal(k2, (self.hidden,)),
                "w2": jnp.zeros(self.hidden), "bias": jnp.zeros(n_models)}
        # training dates on a fixed grid of every `date_stride`-th date: consecutive forward returns overlap,
        # so the grid loses little information and cuts each step's cost by the stride
        sub = np.arange(0, len(calendar), max(int(self.date_stride or self.horizon), 1))
        f32 = {k: jnp.asarray(v[sub], dtype=jnp.float32) for k, v in
               {"feats": feats, "sxx": stats["sxx"], "sxy": stats["sxy"], "syy": np.where(usable, stats["syy"], 1.0)}
               .items()}
        pres = jnp.asarray(present[sub])
        self.fitted = []
        start = init
        for k, p, first, last in known_windows(refits, self.horizon, self.window, days, self.min_train_days):
            mask = jnp.asarray(usable[sub] & (sub >= first) & (sub <= last))
            train = train_cold if not self.fitted else train_warm
            params = train(start, f32["feats"], pres, f32["sxx"], f32["sxy"], f32["syy"], mask, self.l2)
            start = params
            params = {name: np.asarray(v, dtype="float64") for name, v in params.items()}
            end = refits[k + 1] if k + 1 < len(refits) else len(calendar)
            out[p:end] = gate_weights(params, feats[p:end], present[p:end])
            self.fitted.append((calendar[p], params))
        return pd.DataFrame(out, index=calendar, columns=panel.columns)


# ================================================================================ walk-forward choice
@dataclass
class WalkForwardChoice:
    """All weight, at each date, on the candidate method with the best trailing out-of-sample rank IC
    known then (the IC of date s is known at s + horizon + 1); the first candidate until
    `min_periods` known IC days exist. `choice` holds the method used per date after `weights()`."""

    horizon: int = 5
    candidates: Sequence[str] = ("equal", "ic_weighted", "stacked", "neural_stacked")
    window: int = 252
    min_periods: int = 63
    statistic: str = "ic"  # ic | icir
    config: Mapping[str, Any] | None = None  # the ensemble config whose sections parametrize the candidates
    min_names: int = 10
    choice: pd.Series = field(default_factory=lambda: pd.Series(dtype=object), init=False, repr=False)
    candidate_weights: dict = field(default_factory=dict, init=False, repr=False)
    # {method: weights} already built on the same panel and label (ml.ensemble.ensembles_from_config)
    precomputed: dict = field(default_factory=dict, init=False, repr=False)

    def weights(self, panel: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
        from ml.ensemble import ICWeighted, combine, make_weighter

        calendar, _, _ = date_bounds(panel.index)
        names = [str(c) for c in self.candidates]
        if not names or "walk_forward_choice" in names:
            raise ValueError(f"walk_forward_choice candidates must be other methods, got {names}")
        weights = {c: (self.precomputed[c] if self.precomputed.get(c) is not None
                       else make_weighter(c, self.config, self.horizon).weights(panel, label))
                   .reindex(index=calendar, columns=panel.columns).fillna(0.0) for c in names}
        scores = pd.DataFrame({c: combine(panel, w)[0] for c, w in weights.items()}, index=panel.index)
        # each candidate's trailing IC (or ICIR) known at the date: the one definition ICWeighted uses
        known = ICWeighted(horizon=self.horizon, window=self.window, min_periods=self.min_periods,
                           statistic=self.statistic, min_names=self.min_names
                           ).statistic_frame(scores, label)[list(names)].to_numpy()
        best = np.where(np.isfinite(known).any(axis=1), np.nan_to_num(known, nan=-np.inf).argmax(axis=1), 0)
        stack = np.stack([weights[c].to_numpy() for c in names])  # (candidates, dates, models)
        out = stack[best, np.arange(len(calendar))]
        self.choice = pd.Series(np.asarray(names, dtype=object)[best], index=calendar, name="method")
        self.candidate_weights = weights
        return pd.DataFrame(out, index=calendar, columns=panel.columns)
