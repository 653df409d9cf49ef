"""The change-point detector: a one-sided lower CUSUM (Page 1954) on a model's daily IC.

It watches the IC on the 1-day sector-neutral return by default (known four days sooner than the
5-day IC and free of its overlap). The generation's own first `reference_days` known IC values give
the in-control mean mu0 and sd s. Each later block adds z = clip((IC - mu0) / s, +-clip_z) (daily ICs
are fat-tailed: a few extreme days must not decide), and S_b = max(0, S_{b-1} - z_b - k). The model is
retired when S_b > h.

- k = `allowance` * mu0 / s, clipped to [k_min, k_max]: a block may lose `allowance` of the reference
  edge without counting against the model, so an edge that halves in a stressed regime does not
  retire it.
- h is solved per model from Siegmund's approximation of the in-control average run length,
  ARL0(h) = (exp(2 k b) - 2 k b - 1) / (2 k^2) with b = h + 1.166, set to `arl0_blocks`. Every model
  then gets the same nominal false-alarm rate, measured against its own noise, whatever its IC level.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ml.monitoring.config import LifecycleError
from ml.monitoring.ic import known_dates


def cusum_threshold(k: float, arl0: float) -> float:
    """Threshold h of a one-sided CUSUM on unit-variance normal increments with reference value k whose
    in-control average run length is `arl0` (Siegmund's approximation, solved by bisection)."""
    k = float(k)

    def arl(h: float) -> float:
        b = h + 1.166
        if k < 1e-9:
            return b * b
        x = 2 * k * b
        return (math.expm1(x) - x) / (2 * k * k)

    lo, hi = 0.0, 1.0
    while arl(hi) < arl0:
        hi *= 2
        if hi > 1e6:
            break
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if arl(mid) < arl0 else (lo, mid)
    return hi


def cusum_lower(z: np.ndarray, k: float | np.ndarray) -> np.ndarray:
    """One-sided lower CUSUM path S_b = max(0, S_{b-1} - z_b - k_b) of standardized values z (k a
    scalar or one value per block)."""
    z = np.asarray(z, dtype=float)
    kk = np.broadcast_to(np.asarray(k, dtype=float), z.shape)
    out = np.empty(len(z))
    s = 0.0
    for i in range(len(z)):
        s = max(0.0, s - z[i] - kk[i])
        out[i] = s
    return out


def cusum_blocks(ic: np.ndarray, block: int, reference_days: int, allowance: float = 0.6,
                 k_min: float = 0.5, k_max: float = 3.0, arl0_blocks: float = 20000.0,
                 reference: str = "first", guard_days: int = 126, clip_z: float | None = 2.0) -> dict[str, Any]:
    """The change-point detector on one model's daily IC series (oldest first), see the module
    docstring. The series is cut into blocks of `block` days from its start; monitoring starts after
    the first `reference_days`. Reference `first`: mu0 and the block sd from the first
    `reference_days`; `expanding`: from every block that ended at least `guard_days` before the
    monitored block (never fewer than the first `reference_days`), so the reference averages over
    more regimes while a recent decay cannot leak into it. Returns per-block arrays (end index into
    `ic`, block mean, reference mean and sd, k, threshold h, z, statistic); empty when the history
    is shorter than the reference."""
    ic = np.asarray(ic, dtype=float)
    block = max(int(block), 1)
    keys = ("end", "mean", "mu0", "sd", "k", "h", "z", "stat")
    n_ref_blocks = int(reference_days) // block
    nb = len(ic) // block
    if n_ref_blocks < 4 or nb <= n_ref_blocks:
        return {k: np.zeros(0) for k in keys}
    means = ic[: nb * block].reshape(nb, block).mean(axis=1)
    c1 = np.concatenate([[0.0], np.cumsum(means)])
    c2 = np.concatenate([[0.0], np.cumsum(means * means)])
    j = np.arange(n_ref_blocks, nb)
    if reference == "expanding":
        r = np.maximum(n_ref_blocks, j - int(guard_days) // block)
    elif reference == "first":
        r = np.full(len(j), n_ref_blocks)
    else:
        raise LifecycleError(f"changepoint.reference must be first | expanding, got {reference!r}")
    mu0 = c1[r] / r
    var = np.maximum((c2[r] - r * mu0 * mu0) / (r - 1), 0.0)
    sd = np.sqrt(var)
    sd = np.where(sd > 0, sd, 1e-6)
    k = np.clip(allowance * mu0 / sd, k_min, k_max)
    h = np.array([_threshold_cached(round(float(x), 3), float(arl0_blocks)) for x in k])
    z = (means[j] - mu0) / sd
    if clip_z:
        z = np.clip(z, -float(clip_z), float(clip_z))
    stat = cusum_lower(z, k)
    return {"end": (j + 1) * block - 1, "mean": means[j], "mu0": mu0, "sd": sd, "k": k, "h": h, "z": z, "stat": stat}


@functools.lru_cache(maxsize=4096)
def _threshold_cached(k: float, arl0: float) -> float:
    return cusum_threshold(k, arl0)


CUSUM_COLUMNS = ["model_id", "block_end", "known_at", "block_ic", "z", "cusum", "threshold", "k", "reference_ic",
                 "reference_sd", "alarm"]


def cusum_frame(model_id: str, dates: np.ndarray, ic: np.ndarray, calendar: pd.DatetimeIndex,
                cp: Mapping[str, Any]) -> pd.DataFrame:
    """The detector's block path on one IC series (dates ascending): CUSUM_COLUMNS, alarm where the
    statistic exceeds its threshold, each block known `cp['known_lag']` trading days after it ends."""
    res = cusum_blocks(np.asarray(ic, dtype=float), cp["block"], cp["reference_days"], cp["allowance"],
                       cp["k_min"], cp["k_max"], cp["arl0_blocks"], cp["reference"], cp["guard_days"], cp["clip_z"])
    if not len(res["end"]):
        return pd.DataFrame(columns=CUSUM_COLUMNS)
    ends = pd.DatetimeIndex(np.asarray(dates)[res["end"].astype(int)])
    return pd.DataFrame({
        "model_id": model_id, "block_end": ends, "known_at": known_dates(ends, calendar, cp["known_lag"]),
        "block_ic": res["mean"], "z": res["z"], "cusum": res["stat"], "threshold": res["h"], "k": res["k"],
        "reference_ic": res["mu0"], "reference_sd": res["sd"], "alarm": res["stat"] > res["h"],
    })[CUSUM_COLUMNS]


def changepoint_table(daily: pd.DataFrame, calendar: pd.DatetimeIndex, cp: Mapping[str, Any]) -> pd.DataFrame:
    """The detector's block path of every model over its whole IC history (CUSUM_COLUMNS)."""
    frames = [cusum_frame(m, g["date"].to_numpy(), g["ic"].to_numpy(), calendar, cp)
              for m, g in daily.sort_values(["model_id", "date"]).groupby("model_id", sort=True)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CUSUM_COLUMNS)
