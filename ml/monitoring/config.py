"""The lifecycle's configuration: defaults in one place, overlaid with `config/lifecycle.yaml`.

Every threshold here is either a statistical level (a significance, an in-control run length) whose
meaning does not depend on the market, or a window length; none is fitted to one market. The YAML
documents how each was checked across the scenario bench.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

from ml.config import read_source

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "lifecycle.yaml"

DEFAULTS: dict[str, Any] = {
    "label": "fwd_ret_sn_5d",       # labels.parquet column the models predict
    "horizon": 5,                   # trading days that label spans
    "known_lag": None,              # trading days until a date's IC may be used; None -> horizon + 1
    "min_names": 10,                # names a date needs for its cross-sectional IC
    "monthly": {"min_days": 10, "window_months": 12, "min_months": 6},  # the monthly IC table
    "activation": {"min_days": 126, "min_ic": 0.0, "min_t": 0.0, "max_days": 504},
    "retirement": {
        "window_days": 252,         # trailing known IC days the negative-edge test reads ...
        "min_days": 126,            # ... at least this many of the current generation
        "z": 2.326,                 # retire when the Newey-West t of the mean IC <= -z (one-sided 1%)
        "min_active": 1,            # never retire the last active model(s): deferred instead
    },
    "changepoint": {
        "enabled": True,
        "label": "fwd_ret_sn_1d",   # None -> `label`
        "horizon": None,            # the detector label's horizon; None -> `horizon` (or 1 for *_1d)
        "block": 1,                 # IC days per block; None -> the detector label's horizon
        "reference_days": 252,      # first known IC days of each generation: in-control mean and sd
        "reference": "first",       # first | expanding (every block ended >= guard_days earlier)
        "guard_days": 126,
        "allowance": 0.6,           # share of the reference IC a block may lose without counting against it
        "k_min": 0.5,
        "k_max": 3.0,
        "arl0_blocks": 80000,       # in-control average run length (blocks) before a false alarm
        "clip_z": 2.0,              # winsorize standardized blocks (daily ICs are fat-tailed); null: off
        "known_lag": None,          # derived: the detector label horizon + 1
    },
    "peers": {
        "enabled": False,           # retirement rules judge a model's IC minus its peers' (ml/monitoring/peers.py)
        "exclude": "model",         # model: every other model is a peer | view: only other views' models
        "min_peers": 3,             # peers with an IC that date; fewer: judged against zero
    },
    "view_decay": {"enabled": True, "min_share": 0.5, "min_retired": 2, "window_days": 63, "exclude": ["all"]},
    "requalification": {
        "enabled": True,
        "purge_days": 7,            # trading days after a retirement before a refit's training data include it
        "min_days": 126,            # fresh known IC days of the successor before it is judged
        "min_t": 2.0,               # its Newey-West t must reach this (a retired spec has evidence against it)
        "max_days": 504,            # still a candidate after this many: retired, next successor
        "max_generations": None,    # null: unlimited
    },
    "promotion": {
        "method": "contribution",   # contribution (to the live ensemble) | icir (stand-alone)
        "top_fraction": 0.2,
        "keep_fraction": None,
        "multiplier": 2.0,
        "window_days": 252,         # trailing known days of contribution
        "min_days": 63,
    },
    "drift": {"reference": "first", "reference_months": 12, "bins": 10, "min_rows": 200,
              "moderate": 0.1, "significant": 0.25, "views": None},
    "regime": {"vol_halflife": 4, "history_days": 756, "min_history": 252, "enter_quantile": 0.9,
               "exit_quantile": 0.8, "dispersion_halflife": 10, "dispersion_z": 2.0},
}


class LifecycleError(RuntimeError):
    """The lifecycle cannot run (missing inputs, bad configuration)."""


def _merge(base: Mapping, over: Mapping, where: str = "") -> dict:
    out = deepcopy(dict(base))
    for key, value in (over or {}).items():
        if isinstance(out.get(key), dict):
            if not isinstance(value, Mapping):
                raise LifecycleError(f"lifecycle config {where}{key}: expected a mapping, got {value!r}")
            unknown = set(value) - set(out[key])
            if unknown:
                raise LifecycleError(f"unknown lifecycle config keys {sorted(unknown)} under {where}{key}; "
                                     f"known: {sorted(out[key])}")
            out[key] = _merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = deepcopy(value)
    return out


def load_config(config: str | Path | Mapping | None = None) -> dict[str, Any]:
    """Defaults overlaid with a YAML file (default `AURORA_LIFECYCLE_CONFIG`, else `config/lifecycle.yaml`)
    or a dict; derived fields
    (`known_lag`, the detector's label/horizon/block) filled in. Unknown keys are an error."""
    config = read_source("lifecycle", config)  # AURORA_LIFECYCLE_CONFIG, else config/lifecycle.yaml
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise LifecycleError(f"unknown lifecycle config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = _merge(DEFAULTS, config)
    cfg["horizon"] = int(cfg["horizon"])
    if cfg["known_lag"] is None:
        cfg["known_lag"] = cfg["horizon"] + 1
    cp = cfg["changepoint"]
    if cp["label"] is None:
        cp["label"] = cfg["label"]
    if cp["horizon"] is None:
        cp["horizon"] = cfg["horizon"] if cp["label"] == cfg["label"] else label_horizon(cp["label"], cfg["horizon"])
    if cp["block"] is None:
        cp["block"] = max(int(cp["horizon"]), 1)
    cp["known_lag"] = int(cp["horizon"]) + 1
    if not 0 < float(cfg["promotion"]["top_fraction"]) <= 1:
        raise LifecycleError("promotion.top_fraction must be in (0, 1]")
    if cfg["promotion"]["method"] not in ("contribution", "icir"):
        raise LifecycleError("promotion.method must be contribution | icir")
    if float(cfg["retirement"]["z"]) <= 0:
        raise LifecycleError("retirement.z must be > 0 (a one-sided test's critical value)")
    if cfg["peers"]["exclude"] not in ("model", "view"):
        raise LifecycleError("peers.exclude must be model | view")
    if cfg["drift"]["reference"] not in ("first", "trailing"):
        raise LifecycleError("drift.reference must be first | trailing")
    return cfg


def label_horizon(label: str, default: int) -> int:
    """The horizon in a label name like fwd_ret_sn_1d (default when there is none)."""
    tail = str(label).rsplit("_", 1)[-1]
    return int(tail[:-1]) if tail.endswith("d") and tail[:-1].isdigit() else int(default)
