"""Per-row score stds recorded during walk-forward training, for the non-conformal interval methods.

`config/ensemble.yaml` `intervals.method` picks the intervals `ml.signals` carries (`ml/uncertainty.py`).
`bootstrap` and `mc_dropout` need each out-of-sample score's std, which only the training stage can
measure (it holds the fitted model of every refit), so `train_spec` asks a `FoldStd` at each refit:

* `mc_dropout`: every family with `predict_std` (the JAX nets, `ml/models/tabular_nets.py`) scores the
  test period `n_samples` times with dropout on; the spread is the row's std. Cost: n_samples forward
  passes per refit, no extra fit.
* `bootstrap`: the families listed in `intervals.bootstrap.families` (default: ridge only, whose moments
  make a refit nearly free) also fit a `BootstrapEnsemble` of `n_boot` members on date-block resamples of
  the same training window (same rows, same hyper-parameters); its members' spread is the std. The point
  score stays the single model's. Cost: n_boot extra fits per refit.
* `conformal` (default): nothing is computed and no column is added.

Point in time: a refit's std uses only its training window (the bootstrap) and the test rows' own
features (MC dropout: a row's passes do not depend on the other rows scored with it). The stds travel as
a `score_std` column of the spec's predictions and are written to `ml.prediction_std` (date, symbol,
model_id, score_std) with the registration (`ml.pipeline.register_zoo_result`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.zoo import FAMILIES, make_model

STD_COLUMN = "score_std"
TABLE = "prediction_std"
COLUMNS = ["date", "symbol", "model_id", STD_COLUMN]


@dataclass(frozen=True)
class StdSettings:
    """What the configured interval method asks the training stage to measure."""

    method: str = "conformal"
    families: tuple[str, ...] = ("ridge",)  # bootstrap: families that fit a bootstrap ensemble per refit
    n_boot: int = 10
    block: str | int = "date"
    n_samples: int = 20  # mc_dropout: forward passes per row

    @classmethod
    def from_config(cls, zoo_cfg: Mapping[str, Any] | None = None) -> StdSettings:
        """From an `intervals` key of the zoo config when present (tests, benches), else from
        `config/ensemble.yaml` (`ml.ensemble.load_config`: `AURORA_ENSEMBLE_CONFIG` honoured)."""
        from ml.uncertainty import interval_settings

        if zoo_cfg is not None and "intervals" in zoo_cfg:
            spec = interval_settings({"intervals": zoo_cfg["intervals"]})
        else:
            from ml.ensemble import load_config

            spec = interval_settings(load_config())
        boot, mc = dict(spec.get("bootstrap") or {}), dict(spec.get("mc_dropout") or {})
        families = tuple(str(f) for f in boot.get("families", cls.families))
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"intervals.bootstrap.families: unknown families {unknown}")
        block = boot.get("block", cls.block)
        return cls(method=str(spec["method"]), families=families, n_boot=int(boot.get("n_boot", cls.n_boot)),
                   block=block if block == "date" else int(block), n_samples=int(mc.get("n_samples", cls.n_samples)))

    def applies(self, family: str) -> bool:
        """Whether `family` records a std under this method (sequence families never: their design
        reaches back in time and neither estimator wraps it)."""
        cls = FAMILIES[family]
        if getattr(cls, "needs_history", False):
            return False
        if self.method == "mc_dropout":
            return callable(getattr(cls, "predict_std", None))
        return self.method == "bootstrap" and family in self.families

    def token(self) -> str:
        """Short digest for cache keys (a cached spec trained under another method lacks the stds)."""
        return "conformal" if self.method == "conformal" else hashlib.sha256(
            json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()[:10]


class FoldStd:
    """Collects one spec's per-refit test-row stds (see the module docstring); inert when the method
    does not apply to the family."""

    def __init__(self, settings: StdSettings, runner, family: str, seed: int):
        self.settings, self.runner, self.family, self.seed = settings, runner, family, int(seed)
        self.active = settings.applies(family)
        self.parts: list[np.ndarray] = []

    def record(self, k: int, model, a: int, b: int, s: int, e: int, params: dict) -> float:
        """Std of the test rows s..e of refit k (trained on a..b with `params`); returns seconds spent."""
        if not self.active:
            return 0.0
        t0 = time.perf_counter()
        runner, cls = self.runner, FAMILIES[self.family]
        X = runner.prep.design(runner.prep.rows(s, e), cls.needs_state, cls.needs_categories)
        fold_seed = self.seed * 1009 + k
        if self.settings.method == "mc_dropout":
            std = model.predict_std(X, n_samples=self.settings.n_samples, seed=fold_seed)
        else:
            from ml.uncertainty import BootstrapEnsemble

            boot = BootstrapEnsemble(make_model(self.family, **params), n_boot=self.settings.n_boot,
                                     block=self.settings.block, seed=fold_seed)
            std = runner.fit(a, b, params, model=boot).predict_std(X)
        self.parts.append(np.asarray(std, dtype="float64"))
        return time.perf_counter() - t0

    def column(self) -> np.ndarray | None:
        """The stds of every test row in prediction order; None when inactive."""
        if not self.active:
            return None
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


def std_table(predictions: pd.DataFrame, model_ids: set[str] | None = None) -> pd.DataFrame:
    """`ml.prediction_std` rows from predictions carrying a `score_std` column: one row per
    prediction with a finite std (of the registered `model_ids`); empty with the columns otherwise."""
    if STD_COLUMN not in predictions.columns:
        frame = pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                              zip(COLUMNS, ["datetime64[ns]", str, str, "float64"], strict=True)})
    else:
        keep = np.isfinite(predictions[STD_COLUMN].to_numpy(dtype="float64"))
        if model_ids is not None:
            keep &= predictions["model_id"].isin(model_ids).to_numpy()
        frame = predictions.loc[keep, COLUMNS].copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    frame[STD_COLUMN] = frame[STD_COLUMN].astype("float64")
    return frame.reset_index(drop=True)
