"""Shared pieces of the JAX tabular networks (ml/models/tabular_nets.py): layers, a deterministic
training loop, MC dropout and `.npz` persistence.

Why by hand (jax + optax, no flax): a residual MLP and a one- or two-layer feature-tokenizer
transformer need a dense layer, a layer norm and dropout; writing them keeps the install to jaxlib +
optax. Everything is float32 on the CPU.

Determinism and cost on a small shared host:
- JAX is imported lazily (`jax_modules`), after forcing the CPU platform and single-threaded XLA CPU
  kernels (`XLA_FLAGS`: `--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`), like
  the zoo's `threads: 1` for BLAS: the walk-forward trainer and the Prefect flow parallelise across
  specs, not inside a fit. Importing `ml.zoo` does not import JAX.
- Every shape a jitted function sees is fixed per (network, batch size, feature count): minibatches
  drop the ragged tail (the epoch's permutation changes which rows), predictions run in padded
  chunks of `PREDICT_CHUNK` rows, so the walk-forward's many window sizes compile once. Compiled
  steps are cached per architecture and optimizer settings.
- Same seed, same data: same weights (seeded PRNG for init, minibatch order and dropout).

Early stopping holds out the last `val_fraction` of the training *dates* (not random rows), with
`overlap` (the label horizon, in dates) dropped before it, so the held-out labels share no return
days with the rows the weights were fitted on; the best epoch's weights are kept.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ml.models.base import ZooEstimator, as_panel, date_codes

PREDICT_CHUNK = 4096  # rows per jitted prediction call (fixed shape: one compile per network)
XLA_CPU_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


# ================================================================================ jax, lazily
def jax_modules():
    """(jax, jax.numpy, optax), CPU only and single-threaded XLA kernels unless the caller set them."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_CPU_FLAGS}".strip()
    import jax
    import jax.numpy as jnp
    import optax

    return jax, jnp, optax


# ================================================================================ layers
# Parameters are initialized with numpy (a seeded Generator): no eager JAX op, so nothing compiles
# before the first training step.
def uniform(rng: np.random.Generator, shape: tuple, limit: float) -> np.ndarray:
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def dense_init(rng: np.random.Generator, n_in: int, n_out: int, scale: float = 1.0) -> dict:
    """Uniform weights with variance scale^2 / n_in (LeCun), zero bias."""
    return {"w": uniform(rng, (n_in, n_out), scale * np.sqrt(3.0 / max(n_in, 1))),
            "b": np.zeros((n_out,), np.float32)}


def dense(p: dict, x):
    return x @ p["w"] + p["b"]


def norm_init(d: int) -> dict:
    return {"g": np.ones((d,), np.float32), "b": np.zeros((d,), np.float32)}


def layer_norm(p: dict, x, eps: float = 1e-5):
    _, jnp, _ = jax_modules()
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * p["g"] + p["b"]


# Dropout randomness: a counter-based integer hash (lowbias32) of (key, element index), not
# jax.random's threefry, whose unrolled rounds doubled the compile time of a training step on the
# 2-core VM (8 s vs 3.5 s under load) for no benefit to a dropout mask. Keys are uint32 scalars;
# `fold(key, i)` derives independent streams (per step, per layer, per MC sample).
def _hash(x):
    x = x ^ (x >> 16)
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> 16)


def fold(key, data):
    """A new uint32 key from `key` and an integer (or uint32 array) `data`."""
    _, jnp, _ = jax_modules()
    return _hash(_hash(jnp.asarray(key, jnp.uint32) ^ np.uint32(0x9E3779B9))
                 + jnp.asarray(data, jnp.uint32) * np.uint32(0x85EBCA6B))


def dropout(key, x, rate):
    """Inverted dropout; the identity when `key` is None (inference). `rate` may be traced, so one
    compiled step serves every dropout rate of a grid. MC dropout passes a key at inference."""
    if key is None:
        return x
    _, jnp, _ = jax_modules()
    bits = fold(key, jnp.arange(x.size, dtype=jnp.uint32).reshape(x.shape))
    keep = bits >= (jnp.asarray(rate, jnp.float32) * np.float32(2.0**32 - 512)).astype(jnp.uint32)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


# ================================================================================ compiled functions
# apply(params, x, key, rate, arch) -> (batch,) predictions. key None: dropout off; arch: a dict of
# the network's structure (static); rate: the dropout rate (traced).
ApplyFn = Callable[..., Any]


class Flat:
    """A parameter pytree as one float32 vector: the optimizer then updates one array instead of a
    dozen small ones, which halved the step's XLA compile time (about 4 s vs 8 s on the loaded VM)."""

    def __init__(self, template):
        jax, _, _ = jax_modules()
        leaves, self.treedef = jax.tree_util.tree_flatten(template)
        self.shapes = [np.shape(a) for a in leaves]
        self.bounds = np.cumsum([0] + [int(np.prod(sh)) for sh in self.shapes]).tolist()

    def ravel(self, tree) -> np.ndarray:
        jax, _, _ = jax_modules()
        return np.concatenate([np.asarray(a, np.float32).ravel() for a in jax.tree_util.tree_leaves(tree)])

    def unravel(self, flat):
        """The pytree back (works on numpy arrays and traced jax arrays alike)."""
        jax, _, _ = jax_modules()
        parts = [flat[a:b].reshape(sh) for a, b, sh in zip(self.bounds[:-1], self.bounds[1:], self.shapes, strict=True)]
        return jax.tree_util.tree_unflatten(self.treedef, parts)


@functools.lru_cache(maxsize=64)
def _step_fn(init: Callable, apply: ApplyFn, arch: tuple, n_features: int, clip: float):
    """(optimizer, layout, jitted step) for this network on `n_features` inputs: MSE loss,
    global-norm clipping, Adam moments, then the decoupled weight decay of AdamW,
    p <- p - lr (adam_update + wd p), on the flat parameter vector. Learning rate, weight decay,
    dropout rate and the step's dropout key are traced: one compile per network and feature count,
    whatever the grid."""
    jax, jnp, optax = jax_modules()
    settings = dict(arch)
    layout = Flat(init(np.random.default_rng(0), n_features, settings))
    opt = optax.chain(optax.clip_by_global_norm(clip), optax.scale_by_adam())

    def loss(flat, xb, yb, key, rate):
        pred = apply(layout.unravel(flat), xb, key, rate, settings)
        return jnp.mean((pred - yb) ** 2)

    @jax.jit
    def step(flat, state, xb, yb, seed, counter, rate, lr, wd):
        key = fold(seed, counter)
        value, grads = jax.value_and_grad(loss)(flat, xb, yb, key, rate)
        updates, state = opt.update(grads, state, flat)
        return flat - lr * (updates + wd * flat), state, value

    return opt, layout, step


@functools.lru_cache(maxsize=64)
def _forward_fn(apply: ApplyFn, arch: tuple, n_samples: int):
    """Jitted chunk forward: n_samples = 0 -> deterministic (dropout off), (chunk,);
    n_samples > 0 -> MC dropout (dropout on), one seeded key per sample, (n_samples, chunk)."""
    jax, _, _ = jax_modules()
    settings = dict(arch)
    if n_samples == 0:
        return jax.jit(lambda params, x: apply(params, x, None, 0.0, settings))

    def sampled(params, x, seed, chunk, rate):
        keys = fold(fold(seed, chunk), np.arange(n_samples, dtype=np.uint32))
        return jax.vmap(lambda k: apply(params, x, k, rate, settings))(keys)

    return jax.jit(sampled)


def _chunks(X: np.ndarray):
    """Fixed-size padded chunks of X: yields (chunk, n_valid)."""
    for start in range(0, len(X), PREDICT_CHUNK):
        part = X[start:start + PREDICT_CHUNK]
        n = len(part)
        if n < PREDICT_CHUNK:
            part = np.concatenate([part, np.zeros((PREDICT_CHUNK - n, X.shape[1]), np.float32)])
        yield part, n


def forward(apply: ApplyFn, arch: tuple, params, X: np.ndarray) -> np.ndarray:
    """Deterministic predictions (dropout off) in float32, chunked."""
    fn = _forward_fn(apply, arch, 0)
    out = [np.asarray(fn(params, part))[:n] for part, n in _chunks(np.asarray(X, np.float32))]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def mc_samples(apply: ApplyFn, arch: tuple, params, X: np.ndarray, rate: float, n_samples: int,
               seed: int) -> np.ndarray:
    """(n_samples, n_rows) predictions with dropout (at `rate`) on; keys derive from `seed` and the chunk."""
    fn = _forward_fn(apply, arch, int(n_samples))
    out = [np.asarray(fn(params, part, np.uint32(seed), np.uint32(k), np.float32(rate)))[:, :n]
           for k, (part, n) in enumerate(_chunks(np.asarray(X, np.float32)))]
    return np.concatenate(out, axis=1) if out else np.zeros((int(n_samples), 0), np.float32)


# ================================================================================ training loop
def early_stopping_split(codes: np.ndarray, val_fraction: float, overlap: int,
                         min_dates: int = 20) -> tuple[np.ndarray, np.ndarray] | None:
    """(train rows, validation rows): validation = the last `val_fraction` of the distinct dates,
    training = dates more than `overlap` dates before it. None when there are too few dates."""
    uniq = np.unique(codes)
    n_val = int(round(val_fraction * len(uniq)))
    n_train = len(uniq) - n_val - int(overlap)
    if val_fraction <= 0 or n_val < 1 or n_train < min_dates:
        return None
    train_last, val_first = uniq[n_train - 1], uniq[len(uniq) - n_val]
    return np.flatnonzero(codes <= train_last), np.flatnonzero(codes >= val_first)


def train_network(init: Callable, apply: ApplyFn, arch: tuple, X: np.ndarray, y: np.ndarray,
                  codes: np.ndarray, *, dropout_rate: float, learning_rate: float, weight_decay: float,
                  batch_size: int, max_epochs: int, patience: int, val_fraction: float, overlap: int, seed: int,
                  clip: float = 1.0) -> tuple[dict, dict]:
    """Fit a network by minibatch AdamW on MSE with early stopping on the last dates.

    Returns (params as numpy arrays, history: epochs run, best epoch, validation losses)."""
    X = np.asarray(X, np.float32)
    y = np.asarray(y, np.float32)
    opt, layout, step = _step_fn(init, apply, arch, X.shape[1], float(clip))
    params = layout.ravel(init(np.random.default_rng([int(seed), 1]), X.shape[1], dict(arch)))
    state = opt.init(params)
    hyper = (np.float32(dropout_rate), np.float32(learning_rate), np.float32(weight_decay))
    split = early_stopping_split(codes, val_fraction, overlap)
    fit_rows, val_rows = (np.arange(len(X)), None) if split is None else split
    Xf, yf = X[fit_rows], y[fit_rows]
    bs = int(min(batch_size, len(Xf)))
    n_batches = max(len(Xf) // bs, 1)
    rng = np.random.default_rng(int(seed))
    best, best_loss, best_epoch, losses, bad, counter = params, np.inf, 0, [], 0, 0
    for epoch in range(int(max_epochs)):
        order = rng.permutation(len(Xf))[: n_batches * bs].reshape(n_batches, bs)
        for b in range(n_batches):
            params, state, _ = step(params, state, Xf[order[b]], yf[order[b]], np.uint32(seed),
                                    np.uint32(counter), *hyper)
            counter += 1
        if val_rows is None:
            best, best_epoch = params, epoch + 1
            continue
        pred = forward(apply, arch, layout.unravel(np.asarray(params)), X[val_rows])
        val_loss = float(np.mean((pred - y[val_rows]) ** 2))
        losses.append(val_loss)
        if val_loss < best_loss - 1e-6:
            best, best_loss, best_epoch, bad = params, val_loss, epoch + 1, 0
        else:
            bad += 1
            if bad >= int(patience):
                break
    history = {"epochs": len(losses) if val_rows is not None else int(max_epochs), "best_epoch": best_epoch,
               "val_loss": losses}
    return layout.unravel(np.asarray(best)), history


# ================================================================================ estimator base
class NeuralEstimator(ZooEstimator):
    """Base of the JAX families: targets standardized for training, predictions in target units;
    `predict_std` is MC dropout; weights stored as `.npz` (arrays + a JSON header, no pickle).

    Subclasses define `_arch()` (hashable network settings), `_init(key, n_features, arch)` and
    `_apply(params, x, key, rate, arch)` (static methods, so compiled steps are shared across fits),
    and these training parameters (constructor arguments): dropout, learning_rate, weight_decay, batch_size,
    max_epochs, patience, val_fraction, overlap, random_state, mc_samples.
    """

    artifact_format: ClassVar[str] = "npz"
    artifact_file: ClassVar[str] = "model.npz"

    def _arch(self) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _init(key, n_features: int, arch: dict):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _apply(params, x, key, train: bool, arch: dict):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: pd.Series):
        X = as_panel(X)
        feats = self._feature_columns(X)
        yv = np.asarray(y.reindex(X.index) if isinstance(y, pd.Series) else y, dtype="float64")
        ok = np.isfinite(yv)
        values = X[feats].to_numpy(dtype="float32", na_value=0.0)[ok]
        codes, _ = date_codes(X.index)
        self.feature_names_in_ = np.asarray(feats, dtype=object)
        self.n_features_in_ = len(feats)
        self.y_mean_ = float(yv[ok].mean()) if ok.any() else 0.0
        sd = float(yv[ok].std()) if ok.sum() > 1 else 0.0
        self.y_scale_ = sd if sd > 1e-12 else 1.0
        params, self.history_ = train_network(
            type(self)._init, type(self)._apply, self._arch(), values,
            (yv[ok] - self.y_mean_) / self.y_scale_, codes[ok], dropout_rate=self.dropout,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay, batch_size=self.batch_size,
            max_epochs=self.max_epochs, patience=self.patience, val_fraction=self.val_fraction,
            overlap=self.overlap, seed=self.random_state,
        )
        self.params_ = params
        return self

    def _values(self, X: pd.DataFrame) -> np.ndarray:
        return self._check_features(X).astype(np.float32)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        out = forward(type(self)._apply, self._arch(), self.params_, self._values(X))
        return out.astype("float64") * self.y_scale_ + self.y_mean_

    def predict_std(self, X: pd.DataFrame, n_samples: int | None = None, seed: int | None = None) -> np.ndarray:
        """Per-row standard deviation of the prediction across `n_samples` forward passes with
        dropout kept on (MC dropout, Gal & Ghahramani 2016): the network's epistemic uncertainty, in
        target units. Deterministic given `seed` (default: `random_state`); not a forecast of the
        label's noise, which on ranked returns dwarfs it."""
        n = int(n_samples or self.mc_samples)
        if n < 2:
            raise ValueError("predict_std needs n_samples >= 2")
        draws = mc_samples(type(self)._apply, self._arch(), self.params_, self._values(X), self.dropout, n,
                           self.random_state if seed is None else seed)
        return draws.astype("float64").std(axis=0) * self.y_scale_

    # -- persistence: numpy arrays in an .npz, the header as a JSON string (loads with allow_pickle=False)
    def save(self, directory: Path) -> str:
        jax, _, _ = jax_modules()
        leaves = jax.tree_util.tree_leaves(self.params_)
        header = {"class": type(self).__name__, "params": _plain(self.get_params()),
                  "feature_names_in_": [str(c) for c in self.feature_names_in_],
                  "y_mean_": self.y_mean_, "y_scale_": self.y_scale_, "n_leaves": len(leaves),
                  "history_": _plain(getattr(self, "history_", {}))}
        path = Path(directory) / self.artifact_file
        arrays = {f"leaf_{i:04d}": np.asarray(a) for i, a in enumerate(leaves)}
        with open(path, "wb") as fh:
            np.savez(fh, header=np.asarray(json.dumps(header)), **arrays)
        return path.name

    @classmethod
    def load(cls, path: Path) -> NeuralEstimator:
        jax, _, _ = jax_modules()
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            leaves = [data[f"leaf_{i:04d}"] for i in range(int(header["n_leaves"]))]
        from ml.zoo import FAMILY_CLASSES  # the registry of every family lives with the families

        model = FAMILY_CLASSES[header["class"]](**header["params"])
        model.feature_names_in_ = np.asarray(header["feature_names_in_"], dtype=object)
        model.n_features_in_ = len(model.feature_names_in_)
        model.y_mean_, model.y_scale_ = float(header["y_mean_"]), float(header["y_scale_"])
        model.history_ = header.get("history_", {})
        skeleton = type(model)._init(np.random.default_rng(0), model.n_features_in_, dict(model._arch()))
        treedef = jax.tree_util.tree_structure(skeleton)
        model.params_ = jax.tree_util.tree_unflatten(treedef, leaves)
        return model

    @classmethod
    def load_native(cls, path: Path, params: dict, feature_names) -> NeuralEstimator:
        """The registry's native-format entry point: the .npz carries its own parameters."""
        return cls.load(path)


def _plain(value: Any) -> Any:
    """JSON-ready copy (tuples -> lists, numpy scalars -> Python)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
