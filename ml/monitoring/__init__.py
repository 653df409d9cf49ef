"""Monitoring: the model lifecycle, feature drift, market regimes and the dbt monitoring marts.

- `ic`: daily rank IC (the project's one definition), when each value is known, Newey-West t;
- `changepoint`: the CUSUM detector on a model's IC;
- `contribution`: what a model adds to the live ensemble's IC;
- `rules`: one class per rule (activation, negative edge, change point, view decay, promotion);
- `lifecycle`: the walk-forward loop that applies them, with lineage and re-qualification;
- `drift`, `regimes`: feature PSI and point-in-time market regimes;
- `stage`: the pipeline's `monitor` stage (warehouse I/O);
- `marts`: the dbt monitoring marts over the `ml` tables.

Submodules are imported where used; the marts' names are re-exported lazily so `ml.monitoring`
stays cheap to import.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_MARTS = ("MONITORING_SCHEMA", "MONITORING_TAG", "MonitoringBuildError", "MonitoringResult", "build_monitoring_marts",
          "monitoring_marts", "run_monitoring_marts_stage")


def __getattr__(name: str) -> Any:
    if name in _MARTS:
        return getattr(import_module("ml.monitoring.marts"), name)
    raise AttributeError(f"module 'ml.monitoring' has no attribute {name!r}")
