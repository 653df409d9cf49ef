"""Sequence family `gru`: a small GRU over each name's trailing window of its own features (issue 16).

Every other family scores a row (t, name) from that row alone. This one reads the name's last
`window` trading dates up to and including t, so it can see a path (e.g. the last ten days of
returns and residual returns), not only today's snapshot.

Data path (point in time). The family sets `needs_history = True`; the walk-forward trainer
(`ml.training._SpecRunner`) then hands it the normalized feature panel of every date from
`history_days` before the window being fitted / predicted up to that window's last date, with the
target NaN outside the (purged, subsampled) training rows (`history_design`, `history_predict`).
Features dated <= t are known at t; only labels need the purge, which the trainer already applies.
`trailing_windows` builds each row's window from a dense date x symbol cube by a lag gather: row
(t, s) reads cube[t - L + 1 .. t, s], so it never sees a later date nor another symbol's rows; dates
before the panel's first, or where the name has no row, are 0 (the cross-sectional neutral value).

Inputs. Views are wide (up to ~130 columns in `all`), so the GRU reads the first `n_inputs`
principal directions of the training window's normalized features (whitened), fitted on the
training rows only; narrower views keep all their directions.

Training: Adam with gradient clipping and L2 on the weights, a fixed number of minibatch steps
(`steps`) drawn by a seeded numpy generator, all inside one jitted `lax.scan`, float32 on CPU:
deterministic given `random_state`, and the cost of a refit does not grow with the training window
(the row cap `max_train_rows` in config/zoo.yaml bounds the window-building memory). Stored as
`.npz` (weights, PCA, parameters): predictions identical after `load`.

Serving (`history_scores`): today's online vectors plus the previous `history_days` trading dates'
point-in-time rows from the Feast offline store (`feature_store.training_frame`), normalized per
date like training, scored, today's rows kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from ml.models.base import ZooEstimator, as_panel, date_codes

if TYPE_CHECKING:  # pragma: no cover
    from ml.paths import DataPaths
    from ml.training import PreparedView

PREDICT_CHUNK = 4096  # rows per jitted forward call (one compiled shape)
PAD_ROWS = 4096  # training windows are padded to a multiple of this (fewer recompiles)


# ================================================================================ windows
def panel_codes(index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(date position, symbol position) of every row of a (date, symbol) index."""
    dcodes, _ = date_codes(index)
    scodes, _ = pd.factorize(np.asarray(index.get_level_values("symbol")), sort=True)
    return dcodes, scodes.astype(np.int64)


def trailing_windows(Z: np.ndarray, dcodes: np.ndarray, scodes: np.ndarray, window: int,
                     rows: np.ndarray | None = None) -> np.ndarray:
    """(n, window, k) float32: row i's own values at the `window` panel dates up to and including its
    date, oldest first; 0 before the panel starts or where the name has no row that date.

    Vectorized: one dense (dates, symbols, k) cube and a lag gather on the row's own symbol column.
    """
    Z = np.asarray(Z, dtype=np.float32)
    rows = np.arange(len(Z)) if rows is None else np.asarray(rows)
    cube = np.zeros((int(dcodes.max()) + 1, int(scodes.max()) + 1, Z.shape[1]), dtype=np.float32)
    cube[dcodes, scodes] = Z
    lags = dcodes[rows][:, None] - np.arange(window - 1, -1, -1)[None, :]
    out = cube[np.maximum(lags, 0), scodes[rows][:, None]]
    out[lags < 0] = 0.0
    return out


def history_design(prep: PreparedView, rows: np.ndarray, first: int, last: int,
                   history_days: int) -> tuple[pd.DataFrame, pd.Series]:
    """The trainer's fit input for a sequence family: every row dated from `history_days` before
    calendar position `first` to `last` (features only known by then), y set on the training `rows`."""
    start = max(0, first - int(history_days))
    span = slice(int(prep.bounds[start]), int(prep.bounds[last + 1]))
    X = prep.X.iloc[span]
    y = np.full(len(X), np.nan)
    y[np.asarray(rows) - span.start] = prep.y[rows]
    return X, pd.Series(y, index=X.index)


def history_predict(model: SequenceModel, prep: PreparedView, first: int, last: int) -> np.ndarray:
    """Scores of the rows dated `first`..`last`, windows reaching `history_days` back (never forward)."""
    start = max(0, first - int(model.history_days))
    X = prep.X.iloc[int(prep.bounds[start]): int(prep.bounds[last + 1])]
    return model.predict(X)[int(prep.bounds[first] - prep.bounds[start]):]


# ================================================================================ the GRU (jax)
def _init_params(k: int, hidden: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lim = np.sqrt(6.0 / (k + hidden))
    u = rng.standard_normal((hidden, 3 * hidden))
    q = np.concatenate([np.linalg.qr(u[:, i * hidden:(i + 1) * hidden])[0] for i in range(3)], axis=1)
    return {
        "wx": rng.uniform(-lim, lim, (k, 3 * hidden)).astype(np.float32),
        "uh": q.astype(np.float32),
        "b": np.zeros(3 * hidden, dtype=np.float32),
        "wo": (0.01 * rng.standard_normal(hidden)).astype(np.float32),
        "bo": np.zeros((), dtype=np.float32),
    }


_JIT: dict[str, Any] = {}


def _compiled() -> dict[str, Any]:
    """The jitted forward and training loop (built on first use: importing ml.zoo stays jax-free)."""
    if _JIT:
        return _JIT
    from ml.models.neural import jax_modules

    jax, jnp, optax = jax_modules()  # CPU only, single-threaded XLA kernels: the zoo's thread budget

    def forward(params, x):
        hidden = params["uh"].shape[0]
        xs = jnp.einsum("blk,kg->lbg", x, params["wx"]) + params["b"]

        def cell(h, xt):
            hh = h @ params["uh"]
            z = jax.nn.sigmoid(xt[:, :hidden] + hh[:, :hidden])
            r = jax.nn.sigmoid(xt[:, hidden:2 * hidden] + hh[:, hidden:2 * hidden])
            n = jnp.tanh(xt[:, 2 * hidden:] + r * hh[:, 2 * hidden:])
            return (1.0 - z) * n + z * h, None

        h0 = jnp.zeros((x.shape[0], hidden), dtype=x.dtype)
        h, _ = jax.lax.scan(cell, h0, xs)
        return h @ params["wo"] + params["bo"]

    def loss_fn(params, x, y, l2):
        err = forward(params, x) - y
        penalty = sum(jnp.sum(params[w] ** 2) for w in ("wx", "uh", "wo"))
        return jnp.mean(err**2) + l2 * penalty

    @jax.jit
    def train(params, windows, targets, batches, lr, l2):
        opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))

        def step(carry, idx):
            p, s = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, windows[idx], targets[idx], l2)
            updates, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), loss

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), batches)
        return params, losses

    _JIT.update(forward=jax.jit(forward), train=train)
    return _JIT


# ================================================================================ the family
class SequenceModel(ZooEstimator):
    """GRU over each name's last `window` dates of its first `n_inputs` principal directions.

    `fit(X, y)`: X is a (date, symbol) panel of normalized features covering the training rows (y
    finite) and the dates before them that their windows need; rows with a NaN y only supply history.
    `predict(X)` scores every row of X from X's own earlier rows of the same symbol.
    """

    family = "gru"
    grid = {"l2": [1e-4, 1e-2]}
    needs_history: ClassVar[bool] = True
    artifact_format = "npz"
    artifact_file = "model.npz"

    def __init__(self, window: int = 10, hidden: int = 8, n_inputs: int = 8, l2: float = 1e-3,
                 learning_rate: float = 3e-3, steps: int = 150, batch_size: int = 256, random_state: int = 0):
        self.window = window
        self.hidden = hidden
        self.n_inputs = n_inputs
        self.l2 = l2
        self.learning_rate = learning_rate
        self.steps = steps
        self.batch_size = batch_size
        self.random_state = random_state

    @property
    def history_days(self) -> int:
        """Trading dates before a row that its window reads."""
        return int(self.window) - 1

    # -- inputs
    def _project(self, X: pd.DataFrame) -> np.ndarray:
        values = self._check_features(X)
        return ((values - self.mean_) @ self.components_).astype(np.float32)

    def _fit_projection(self, values: np.ndarray) -> None:
        """Whitened leading principal directions of the training rows (sign fixed: deterministic)."""
        self.mean_ = values.mean(0)
        centered = values - self.mean_
        cov = centered.T @ centered / max(len(values) - 1, 1)
        evals, evecs = np.linalg.eigh(cov)
        keep = np.argsort(evals)[::-1][: min(int(self.n_inputs), values.shape[1])]
        evecs = evecs[:, keep]
        evecs *= np.where(evecs[np.abs(evecs).argmax(0), np.arange(len(keep))] < 0, -1.0, 1.0)
        self.components_ = evecs / np.sqrt(np.maximum(evals[keep], 1e-6))

    # -- estimator API
    def fit(self, X: pd.DataFrame, y: pd.Series) -> SequenceModel:
        X = as_panel(X)
        self.feature_names_in_ = np.asarray(self._feature_columns(X), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        target = np.asarray(y.reindex(X.index) if isinstance(y, pd.Series) else y, dtype="float64")
        rows = np.flatnonzero(np.isfinite(target))
        if len(rows) == 0:
            raise ValueError("SequenceModel.fit: no row with a finite target")
        values = self._check_features(X)
        self._fit_projection(values[rows])
        dcodes, scodes = panel_codes(X.index)
        windows = trailing_windows(self._project(X), dcodes, scodes, int(self.window), rows)
        n = len(rows)
        padded = -(-n // PAD_ROWS) * PAD_ROWS
        windows = np.concatenate([windows, np.zeros((padded - n, *windows.shape[1:]), np.float32)])
        targets = np.concatenate([target[rows], np.zeros(padded - n)]).astype(np.float32)
        rng = np.random.default_rng([int(self.random_state), n])
        batches = rng.integers(0, n, size=(int(self.steps), min(int(self.batch_size), n)))
        params = _init_params(windows.shape[2], int(self.hidden), int(self.random_state))
        trained, losses = _compiled()["train"](params, windows, targets, batches,
                                               np.float32(self.learning_rate), np.float32(self.l2))
        self.params_ = {key: np.asarray(value) for key, value in trained.items()}
        self.train_loss_ = float(np.asarray(losses)[-max(1, len(losses) // 10):].mean())
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        X = as_panel(X)
        if len(X) == 0:
            return np.zeros(0)
        dcodes, scodes = panel_codes(X.index)
        windows = trailing_windows(self._project(X), dcodes, scodes, int(self.window))
        forward = _compiled()["forward"]
        out = np.empty(len(windows), dtype=np.float64)
        for lo in range(0, len(windows), PREDICT_CHUNK):
            chunk = windows[lo: lo + PREDICT_CHUNK]
            pad = PREDICT_CHUNK - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
            out[lo: lo + PREDICT_CHUNK] = np.asarray(forward(self.params_, chunk))[: PREDICT_CHUNK - pad]
        return out

    # -- persistence: plain arrays, no pickle
    def save(self, directory: Path) -> str:
        path = Path(directory) / self.artifact_file
        meta = json.dumps({"params": self.get_params(), "features": [str(c) for c in self.feature_names_in_],
                           "train_loss": self.train_loss_})
        with path.open("wb") as fh:  # a file handle: np.savez would append .npz to a str path
            np.savez(fh, meta=np.array(meta), mean=self.mean_, components=self.components_,
                     **{f"w_{k}": v for k, v in self.params_.items()})
        return path.name

    @classmethod
    def load(cls, path: Path) -> SequenceModel:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            model = cls(**meta["params"])
            model.feature_names_in_ = np.asarray(meta["features"], dtype=object)
            model.n_features_in_ = len(model.feature_names_in_)
            model.train_loss_ = float(meta["train_loss"])
            model.mean_, model.components_ = data["mean"], data["components"]
            model.params_ = {k[2:]: data[k] for k in data.files if k.startswith("w_")}
        return model


# ================================================================================ serving
def history_scores(paths: DataPaths, model: Any, X_today: pd.DataFrame) -> np.ndarray:
    """Serve a sequence model: `X_today` (one date's raw vectors, index (date, symbol)) preceded by the
    previous `history_days` trading dates' point-in-time rows from the Feast offline store (every name
    priced on those dates, so each date's cross-sectional normalization matches the batch), normalized
    per date by `model` (a CrossSectionalModel), scored; returns the scores of `X_today`'s rows."""
    from ml import feature_store

    X_today = as_panel(X_today)
    days = int(model.estimator_.history_days)
    today = pd.Timestamp(X_today.index.get_level_values("date").max())
    prices = pd.read_parquet(paths.raw_table("prices"), columns=["date", "symbol"])
    prices["date"] = pd.to_datetime(prices["date"])
    calendar = np.sort(prices["date"].unique())
    past = calendar[calendar < np.datetime64(today)][-days:] if days else calendar[:0]
    feats = list(model.features_)
    if len(past):  # every name priced those dates: the same cross-sections the batch normalized
        entity = prices.loc[prices["date"].isin(past), ["symbol", "date"]].astype({"symbol": str})
        entity = entity.sort_values(["date", "symbol"]).reset_index(drop=True)
        views = sorted({str(c).split("__", 1)[0] for c in feats})
        hist = feature_store.training_frame(paths, entity, views=views, with_labels=False)
        hist = hist.assign(date=pd.to_datetime(hist["date"])).set_index(["date", "symbol"])
        panel = pd.concat([hist.reindex(columns=feats), X_today[feats]])
    else:
        panel = X_today[feats]
    scores = np.asarray(model.predict(panel), dtype="float64")
    return scores[len(panel) - len(X_today):]
