"""One JSON-safe conversion for everything Aurora writes as JSON or YAML (registry, report keys)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """Plain Python: mappings and sequences recursively, numpy scalars as Python scalars, timestamps as
    ISO strings, and NaN / infinity as None (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):  # a plain date stays a date (YAML keeps it)
        return value.isoformat()
    return value
