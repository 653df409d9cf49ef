"""Compatibility names for the model lifecycle, which lives in the `ml.monitoring` package.

Import from `ml.monitoring.<module>` in new code; this module only re-exports the public names that
tests, benches and older notebooks use as `ml.lifecycle.<name>`.
"""

from __future__ import annotations

from ml.monitoring.changepoint import changepoint_table, cusum_blocks, cusum_lower, cusum_threshold
from ml.monitoring.config import DEFAULT_CONFIG_PATH, DEFAULTS, LifecycleError, load_config
from ml.monitoring.contribution import ContributionStats, contribution_stats, contributions
from ml.monitoring.drift import feature_drift, psi
from ml.monitoring.ic import daily_ic, known_dates, monthly_ic, nw_t_stat
from ml.monitoring.lifecycle import (
    EVENT_COLUMNS,
    STATUSES,
    LifecycleResult,
    model_view,
    multiplier_of,
    multiplier_panel,
    run_lifecycle,
    successor_birth,
    weights_asof,
)
from ml.monitoring.regimes import detect_regimes, market_returns
from ml.monitoring.rules import LIVE, promoted_set
from ml.monitoring.stage import (
    EVENT_PREFIX,
    TABLE_SCHEMAS,
    TABLES,
    compute_ics,
    read_weights_asof,
    run_monitor_stage,
    sync_registry,
    write_monitor_tables,
)

__all__ = [
    "DEFAULTS", "DEFAULT_CONFIG_PATH", "EVENT_COLUMNS", "EVENT_PREFIX", "LIVE", "STATUSES", "TABLES", "TABLE_SCHEMAS",
    "ContributionStats", "LifecycleError", "LifecycleResult", "changepoint_table", "compute_ics",
    "contribution_stats", "contributions", "cusum_blocks", "cusum_lower", "cusum_threshold", "daily_ic",
    "detect_regimes", "feature_drift", "known_dates", "load_config", "market_returns", "model_view", "monthly_ic",
    "multiplier_of", "multiplier_panel", "nw_t_stat", "promoted_set", "psi", "read_weights_asof", "run_lifecycle",
    "run_monitor_stage", "successor_birth", "sync_registry", "weights_asof", "write_monitor_tables",
]
