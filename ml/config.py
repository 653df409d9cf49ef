"""The one config loader: a YAML file under `config/` read into a typed schema (a dataclass).

`load_config(name, Schema, override)` reads, in order of precedence:
1. `override`: a mapping (merged over the file), a path to a YAML file, or a ready `Schema` instance;
2. the file named by `AURORA_<NAME>_CONFIG` (e.g. `AURORA_QUALITY_CONFIG`), else `config/<name>.yaml`;
3. the dataclass defaults, for every key the file leaves out.

Unknown keys are an error naming the file and the allowed keys; values are coerced to the field's
declared type where that is unambiguous (int, float, bool, str, tuple, dict), so a YAML `1` for a
float field works and a typo never passes silently. Nested mappings stay mappings.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

T = TypeVar("T")


class ConfigError(ValueError):
    """An invalid configuration file or override."""


def config_path(name: str) -> Path:
    """The file `name` is read from: `AURORA_<NAME>_CONFIG` when set, else `config/<name>.yaml`. A file
    the variable names must exist: a typo there would otherwise run on the defaults without a word."""
    var = f"AURORA_{name.upper()}_CONFIG"
    env = os.environ.get(var)
    if env and not Path(env).exists():
        raise ConfigError(f"{var}={env}: no such file")
    return Path(env) if env else CONFIG_DIR / f"{name}.yaml"


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def read_source(name: str, source: str | os.PathLike | Mapping | None = None) -> dict[str, Any]:
    """The raw mapping of config `name` for the loaders that merge over dict defaults: `source` itself when a
    mapping, the YAML file at `source` when a path, else the convention's file (`config_path`), {} when that
    file does not exist."""
    if source is None:
        path = config_path(name)
        return read_yaml(path) if path.exists() else {}
    if isinstance(source, str | os.PathLike):
        return read_yaml(source)
    return dict(source)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        return None
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        options = [a for a in args if a is not type(None)]
        return _coerce(value, options[0], where) if len(options) == 1 else value
    try:
        if hint is float:
            return float(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{value} is not an integer")
            return int(value)
        if hint is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{value!r} is not true/false")
            return value
        if hint is str:
            return str(value)
        if origin is tuple:
            item = args[0] if args else Any
            return tuple(_coerce(v, item, where) for v in value) if item is not Any else tuple(value)
        if origin is dict or hint is dict:
            if not isinstance(value, Mapping):
                raise ValueError(f"expected a mapping, got {value!r}")
            return dict(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err
    return value


def from_mapping(schema: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """`schema(**data)` with unknown keys refused and values coerced to the declared field types."""
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(schema)
    values = {k: _coerce(v, hints.get(k, Any), f"{where}: {k}") for k, v in data.items()}
    return schema(**values)


def load_config(name: str, schema: type[T], override: str | os.PathLike | Mapping | T | None = None) -> T:
    """The typed config `name` (see the module docstring)."""
    if isinstance(override, schema):
        return override
    if isinstance(override, str | os.PathLike):
        return from_mapping(schema, read_yaml(override), str(override))
    path = config_path(name)
    data = read_yaml(path) if path.exists() else {}
    data.update(dict(override or {}))
    return from_mapping(schema, data, str(path))
