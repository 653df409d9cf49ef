"""Several label horizons: the same (family, view) specs also trained on 1- and 21-day labels.

The zoo's main target (`target` in config/zoo.yaml) is one horizon. A signal whose edge lasts two days
and one that lasts three months are both learnt best on their own label, so `horizons` lists extra
horizons, each with its label column and the families trained on it:

    horizons:
      1: {label: fwd_ret_sn_1d, families: [ridge, screened_ridge]}
      21: {label: fwd_ret_sn_21d, families: [ridge, screened_ridge]}

An extra-horizon spec is an ordinary spec with the target swapped: the purge (`cv.horizon`) becomes
that horizon (at least), its model id reads `<family>@<h>d-<view>-<digest>`, and its registry record
carries the target. Downstream, each horizon's models get an ensemble of their own against their
own label, and the policy adds what each horizon adds beyond the primary signal, at its own measured
speed (ml/horizon_signals.py, docs/policy.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import replace
from typing import Any

from ml.zoo import FAMILIES, cross_sectional_target


class HorizonConfigError(ValueError):
    """An invalid `horizons` block."""


def validate_horizons(cfg: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """The `horizons` block with integer keys; each needs a label and known families."""
    out: dict[int, dict[str, Any]] = {}
    for key, spec in (cfg.get("horizons") or {}).items():
        h = int(key)
        if h < 1:
            raise HorizonConfigError(f"horizons: {key!r} is not a positive number of trading days")
        if not isinstance(spec, Mapping) or not spec.get("label"):
            raise HorizonConfigError(f"horizons.{key}: needs a label column, e.g. {{label: fwd_ret_sn_{h}d}}")
        families = list(spec.get("families") or [])
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise HorizonConfigError(f"horizons.{key}: unknown families {unknown}; known: {sorted(FAMILIES)}")
        if h == int(cfg["target"]["horizon"]):
            raise HorizonConfigError(f"horizons.{key}: that is the main target's horizon already")
        out[h] = {"label": str(spec["label"]), "families": families}
    return out


def horizon_specs(cfg: Mapping[str, Any], families: list[str]) -> list[tuple[str, int]]:
    """(family, horizon) pairs of the extra horizons, for the enabled `families` only."""
    return [(f, h) for h, spec in validate_horizons(cfg).items() for f in spec["families"] if f in families]


def horizon_config(cfg: Mapping[str, Any], horizon: int) -> dict[str, Any]:
    """The zoo config with the target swapped to `horizon`'s label and the purge at least that long."""
    spec = validate_horizons(cfg)[int(horizon)]
    out = deepcopy(dict(cfg))
    out["target"] = {**out["target"], "label": spec["label"], "horizon": int(horizon), "tag": f"@{int(horizon)}d"}
    out["cv"] = {**out["cv"], "horizon": max(int(horizon), 1)}
    if spec["label"] not in out["evaluation"]["labels"].values():
        out["evaluation"] = {**out["evaluation"], "labels": {**out["evaluation"]["labels"], int(horizon): spec["label"]}}
    return out


def retarget(prep, cfg_h: Mapping[str, Any]):
    """A PreparedView sharing the normalized features of `prep`, with `cfg_h`'s target."""
    import numpy as np
    import pandas as pd

    label = cfg_h["target"]["label"]
    if label not in prep.labels.columns:
        raise HorizonConfigError(f"view {prep.view}: label column {label!r} not in the labels frame")
    y_raw = pd.Series(prep.labels[label].to_numpy(dtype="float64"), index=prep.X.index)
    y = cross_sectional_target(y_raw, cfg_h["target"]["transform"]).to_numpy()
    return replace(prep, y=np.asarray(y, dtype="float64"), _moments=None)
