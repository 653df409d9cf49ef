"""Neural tabular families in JAX: a small residual MLP and a feature-tokenizer transformer.

Both fit per-date ranked forward returns, a target that is mostly noise, so both are small and
regularized hard: dropout, decoupled weight decay (AdamW), gradient clipping, early stopping on the
last training dates (ml/models/neural.py), and the trainer's row cap. Both expose
`predict_std(X, n_samples)`: MC dropout, the per-row spread of the prediction with dropout kept on,
as the model's epistemic uncertainty.

- `residual_mlp` (Gorishniy et al. 2021's ResNet baseline, shrunk): a linear stem to `width`, then
  `n_blocks` pre-norm residual blocks x + Dropout(W2 Dropout(ReLU(W1 LayerNorm(x)))), then
  LayerNorm -> ReLU -> linear head.
- `ft_transformer` (FT-Transformer, same paper, shrunk): each feature j becomes a token
  x_j w_j + b_j (its own linear embedding, width `d_token`), a learned CLS token is prepended,
  `n_layers` pre-norm transformer layers (multi-head self-attention with `n_heads` heads, a ReLU
  feed-forward of width 2 d_token, dropout on attention weights and residual branches) and the
  CLS token's final state feeds a LayerNorm -> ReLU -> linear head. Its cost grows with the square
  of the number of features (tokens), so the zoo runs it on narrow views (config/zoo.yaml).
"""

from __future__ import annotations

import numpy as np

from ml.models.neural import (
    NeuralEstimator,
    dense,
    dense_init,
    dropout,
    fold,
    jax_modules,
    layer_norm,
    norm_init,
    uniform,
)


def _keys(key, n: int) -> list:
    """n dropout keys, or n Nones at inference (dropout is then the identity)."""
    if key is None:
        return [None] * n
    return [fold(key, i + 1) for i in range(n)]


class _TrainingParams:
    """Constructor arguments shared by the JAX families (see NeuralEstimator)."""

    def _set_training(self, learning_rate, weight_decay, batch_size, max_epochs, patience, val_fraction, overlap,
                      random_state, mc_samples) -> None:
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.overlap = overlap
        self.random_state = random_state
        self.mc_samples = mc_samples


# ================================================================================ residual MLP
class ResidualMLPModel(_TrainingParams, NeuralEstimator):
    """Small pre-norm residual MLP (see module docstring); JAX, stored as .npz."""

    family = "residual_mlp"
    grid = {"dropout": [0.1, 0.3], "weight_decay": [0.01, 0.1]}

    def __init__(self, width: int = 32, n_blocks: int = 2, hidden_factor: int = 2, dropout: float = 0.2,
                 learning_rate: float = 3e-3, weight_decay: float = 0.05, batch_size: int = 512,
                 max_epochs: int = 20, patience: int = 3, val_fraction: float = 0.2, overlap: int = 5,
                 random_state: int = 0, mc_samples: int = 20):
        self.width = width
        self.n_blocks = n_blocks
        self.hidden_factor = hidden_factor
        self.dropout = dropout
        self._set_training(learning_rate, weight_decay, batch_size, max_epochs, patience, val_fraction, overlap,
                           random_state, mc_samples)

    def _arch(self) -> tuple:
        return (("width", int(self.width)), ("n_blocks", int(self.n_blocks)),
                ("hidden_factor", int(self.hidden_factor)))

    @staticmethod
    def _init(rng: np.random.Generator, n_features: int, arch: dict) -> dict:
        d, h = arch["width"], arch["width"] * arch["hidden_factor"]
        stem = dense_init(rng, n_features, d)
        blocks = [{"norm": norm_init(d), "up": dense_init(rng, d, h), "down": dense_init(rng, h, d, scale=0.5)}
                  for _ in range(arch["n_blocks"])]
        return {"stem": stem, "blocks": blocks, "norm": norm_init(d), "head": dense_init(rng, d, 1, scale=0.1)}

    @staticmethod
    def _apply(params, x, key, rate, arch: dict):
        jax, _, _ = jax_modules()
        keys = _keys(key, 2 * len(params["blocks"]))
        z = dense(params["stem"], x)
        for i, block in enumerate(params["blocks"]):
            u = jax.nn.relu(dense(block["up"], layer_norm(block["norm"], z)))
            u = dense(block["down"], dropout(keys[2 * i], u, rate))
            z = z + dropout(keys[2 * i + 1], u, rate)
        z = jax.nn.relu(layer_norm(params["norm"], z))
        return dense(params["head"], z)[:, 0]


# ================================================================================ FT-Transformer
class FTTransformerModel(_TrainingParams, NeuralEstimator):
    """Small feature-tokenizer transformer (see module docstring); JAX, stored as .npz."""

    family = "ft_transformer"
    grid = {"dropout": [0.1, 0.3]}

    def __init__(self, d_token: int = 16, n_layers: int = 1, n_heads: int = 2, dropout: float = 0.2,
                 learning_rate: float = 3e-3, weight_decay: float = 0.05, batch_size: int = 512,
                 max_epochs: int = 15, patience: int = 3, val_fraction: float = 0.2, overlap: int = 5,
                 random_state: int = 0, mc_samples: int = 20):
        self.d_token = d_token
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self._set_training(learning_rate, weight_decay, batch_size, max_epochs, patience, val_fraction, overlap,
                           random_state, mc_samples)

    def _arch(self) -> tuple:
        if int(self.d_token) % int(self.n_heads):
            raise ValueError(f"d_token ({self.d_token}) must be a multiple of n_heads ({self.n_heads})")
        return (("d_token", int(self.d_token)), ("n_layers", int(self.n_layers)),
                ("n_heads", int(self.n_heads)))

    @staticmethod
    def _init(rng: np.random.Generator, n_features: int, arch: dict) -> dict:
        d = arch["d_token"]
        limit = 1.0 / np.sqrt(d)
        tokens = {"tok_w": uniform(rng, (n_features, d), limit), "tok_b": uniform(rng, (n_features, d), limit),
                  "cls": uniform(rng, (d,), limit)}
        layers = [{"norm1": norm_init(d), "q": dense_init(rng, d, d), "k": dense_init(rng, d, d),
                   "v": dense_init(rng, d, d), "o": dense_init(rng, d, d, scale=0.5), "norm2": norm_init(d),
                   "up": dense_init(rng, d, 2 * d), "down": dense_init(rng, 2 * d, d, scale=0.5)}
                  for _ in range(arch["n_layers"])]
        return {**tokens, "layers": layers, "norm": norm_init(d), "head": dense_init(rng, d, 1, scale=0.1)}

    @staticmethod
    def _apply(params, x, key, rate, arch: dict):
        jax, jnp, _ = jax_modules()
        heads = arch["n_heads"]
        tokens = x[:, :, None] * params["tok_w"] + params["tok_b"]  # (B, p, d)
        cls = jnp.broadcast_to(params["cls"], (x.shape[0], 1, params["cls"].shape[0]))
        t = jnp.concatenate([cls, tokens], axis=1)  # (B, p + 1, d)
        B, T, d = t.shape
        dh = d // heads
        keys = _keys(key, 4 * len(params["layers"]))
        for i, layer in enumerate(params["layers"]):
            h = layer_norm(layer["norm1"], t)

            def split(a):
                return a.reshape(B, T, heads, dh).transpose(0, 2, 1, 3)  # (B, H, T, dh)

            q, k, v = split(dense(layer["q"], h)), split(dense(layer["k"], h)), split(dense(layer["v"], h))
            att = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh), axis=-1)
            att = dropout(keys[4 * i], att, rate)
            mixed = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, d)
            t = t + dropout(keys[4 * i + 1], dense(layer["o"], mixed), rate)
            u = jax.nn.relu(dense(layer["up"], layer_norm(layer["norm2"], t)))
            u = dense(layer["down"], dropout(keys[4 * i + 2], u, rate))
            t = t + dropout(keys[4 * i + 3], u, rate)
        z = jax.nn.relu(layer_norm(params["norm"], t[:, 0]))
        return dense(params["head"], z)[:, 0]
