"""The zoo's configuration: `config/zoo.yaml` merged over `DEFAULTS`, validated (`load_config`), and
each family's effective settings (`family_settings`, `enabled_families`, `runs_on`). One loader for the
one YAML; `ml.training` re-exports all of it."""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

from ml.config import read_source
from ml.data.views import feature_views
from ml.importance import ImportanceConfigError, ImportanceSettings
from ml.zoo import DEFAULT_STATE_PATTERN, FAMILIES, make_model

ALL_VIEW = "all"
SEP = "__"
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "zoo.yaml"

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "threads": 1,  # BLAS/OpenMP threads inside fits (oversubscribed multi-threading is slow on small hosts)
    "views": "auto",  # auto: every feature view of the dbt project (ml/data/views.py), then `all`
    "target": {"label": "fwd_ret_sn_5d", "transform": "rank", "horizon": 5},
    "evaluation": {"labels": {1: "fwd_ret_sn_1d", 5: "fwd_ret_sn_5d", 21: "fwd_ret_sn_21d"}, "primary": 5},
    "preprocess": {"method": "rank_gauss", "clip": 3.0, "state_pattern": DEFAULT_STATE_PATTERN},
    "cv": {
        "cadence": "M",
        "horizon": None,  # purge in trading days; None -> target.horizon
        "embargo": 2,
        "min_train_days": 504,
        "max_train_days": None,
        "first_test_date": None,
        "tune_every": 12,
        "val_fraction": 0.2,
        "max_train_rows": None,
    },
    "families": {name: {"enabled": True} for name in FAMILIES},
    "horizons": {},  # extra label horizons (ml/models/horizons.py): {h: {label, families}}
}
FAMILY_KEYS = {"enabled", "params", "grid", "cadence", "tune_every", "max_train_rows", "max_train_days", "views"}


class ConfigError(ValueError):
    """An invalid zoo configuration."""


# ================================================================================ configuration
def _merge(base: dict, over: Mapping) -> dict:
    out = deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = deepcopy(value)
    return out


def load_config(config: str | Path | Mapping | None = None) -> dict[str, Any]:
    """The zoo configuration: defaults overlaid with a YAML file or a dict.

    With no argument: the file named by `AURORA_ZOO_CONFIG`, else `config/zoo.yaml`. Validates
    families, views, target transform and CV settings; fills `cv.horizon` from the target.
    """
    cfg = _merge(DEFAULTS, read_source("zoo", config))  # AURORA_ZOO_CONFIG, else config/zoo.yaml
    if cfg["views"] == "auto":
        cfg["views"] = [*feature_views(), ALL_VIEW]
    labels = cfg["evaluation"]["labels"]
    cfg["evaluation"]["labels"] = {int(h): str(c) for h, c in labels.items()}
    target, cv = cfg["target"], cfg["cv"]
    if target["transform"] not in ("rank", "demean", "raw"):
        raise ConfigError(f"target.transform must be rank | demean | raw, got {target['transform']!r}")
    if cv["horizon"] is None:
        cv["horizon"] = int(target["horizon"])
    if int(cv["horizon"]) < int(target["horizon"]):
        raise ConfigError(f"cv.horizon ({cv['horizon']}) must be >= the label horizon ({target['horizon']})")
    for name, fam in cfg["families"].items():
        if name not in FAMILIES:
            raise ConfigError(f"unknown family {name!r} in config; known: {sorted(FAMILIES)}")
        unknown = set(fam) - FAMILY_KEYS
        if unknown:
            raise ConfigError(f"family {name}: unknown keys {sorted(unknown)}; allowed {sorted(FAMILY_KEYS)}")
        if fam.get("views") is not None and not isinstance(fam["views"], list | tuple):
            raise ConfigError(f"family {name}: views must be a list of view names, got {fam['views']!r}")
        make_model(name, **(fam.get("params") or {}))  # validates parameter names
        grid = fam.get("grid")
        if grid is not None:
            make_model(name, **{k: v[0] for k, v in grid.items() if v})
    if int(cfg["evaluation"]["primary"]) not in cfg["evaluation"]["labels"]:
        raise ConfigError("evaluation.primary must be one of evaluation.labels' horizons")
    from ml.models.horizons import HorizonConfigError, validate_horizons

    try:
        cfg["horizons"] = validate_horizons(cfg)
    except HorizonConfigError as exc:
        raise ConfigError(str(exc)) from exc
    try:
        ImportanceSettings.from_config(cfg)  # the `importance` section (ml/importance.py)
    except ImportanceConfigError as exc:
        raise ConfigError(str(exc)) from exc
    return cfg


def family_settings(cfg: Mapping, family: str) -> dict[str, Any]:
    """A family's effective settings: params (seeded), grid, cadence, tune_every, row cap, window."""
    fam = dict(cfg["families"].get(family) or {})
    cv = cfg["cv"]
    cls = FAMILIES[family]
    params = dict(fam.get("params") or {})
    default_params = cls().get_params()
    if "random_state" in default_params:
        params.setdefault("random_state", int(cfg["seed"]))
    if "overlap" in default_params:
        params.setdefault("overlap", int(cfg["target"]["horizon"]))
    grid = fam.get("grid")
    return {
        "enabled": bool(fam.get("enabled", True)),
        "params": params,
        "grid": dict(cls.grid if grid is None else grid),
        "cadence": fam.get("cadence") or cv["cadence"],
        "tune_every": int(fam.get("tune_every") or cv["tune_every"]),
        "max_train_rows": fam.get("max_train_rows", cv.get("max_train_rows")),
        "max_train_days": fam.get("max_train_days", cv["max_train_days"]),
        "views": None if fam.get("views") is None else [str(v) for v in fam["views"]],
    }


def enabled_families(cfg: Mapping) -> list[str]:
    return [f for f in cfg["families"] if family_settings(cfg, f)["enabled"]]


def runs_on(cfg: Mapping, family: str, view: str) -> bool:
    """Whether `family` trains on `view`: a family's `views:` list narrows it (costly families, e.g.
    the neural ones, may run on a few views only); none means every configured view."""
    views = family_settings(cfg, family)["views"]
    return views is None or view in views


def longest_first(specs: list[tuple[str, str, Any]], cfg: Mapping, widths: Mapping[str, int]) -> list[tuple[str, str, Any]]:
    """(family, view, horizon) specs in the order a pool of workers should start them: the costly ones
    first, so the cheap ones fill the last idle worker (longest-processing-time scheduling).

    Costly = a family that trains on a row subsample (`max_train_rows`: trees and nets, whose fits
    dominate), then wider views (`widths`: feature counts; unknown views count as widest), then the
    primary label before other horizons. Stable otherwise: the same config gives the same order."""
    def key(spec: tuple[str, str, Any]) -> tuple:
        family, view, horizon = spec
        subsampled = family_settings(cfg, family)["max_train_rows"] is not None
        return (not subsampled, -widths.get(view, 10**6), horizon is not None)
    return sorted(specs, key=key)
