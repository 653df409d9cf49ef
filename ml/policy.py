"""From signals to positions: the pieces every policy shares and the policy of a config.

    cfg = load_config()                      # config/policy.yaml over POLICY_DEFAULTS
    policy = policy_from_config(cfg)         # the held-book optimizer (ml.portfolio.held_book), or the
                                             # target-tracking CostAwarePolicy without an `optimizer` block
    result = policy.run(SignalPanel.from_frame(signals, market), market)

Layout: `ml.portfolio.signals` (reason codes, SignalPanel, Abstention, PolicyResult) and
`ml.portfolio.target_policy` (the target-tracking machinery: CostThreshold, RiskBudget, TurnoverBudget,
simulate, CostAwarePolicy, DecilePolicy) are re-exported here, so `ml.policy.X` names every piece.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ml.backtest import MarketPanel
from ml.config import read_source
from ml.costs import BPS, cost_model_from_config
from ml.ensemble import _merge
from ml.portfolio.signals import (
    AB_NOSIGNAL,
    AB_STRADDLE,
    AB_UNCERTAIN,
    AB_UNMEASURED,
    CAPPED,
    CAPPED_NEUTRAL,
    CLOSED,
    HOLD_BAND,
    HOLD_COST,
    HOLD_TARGET,
    NONE,
    REASONS,
    REFUSED_COST,
    TRADE,
    UNWIND,
    Abstention,
    PolicyResult,
    SignalPanel,
)
from ml.portfolio.target_policy import (
    CostAwarePolicy,
    CostThreshold,
    DecilePolicy,
    Plan,
    RiskBudget,
    TurnoverBudget,
    _budget_lp,
    _exposure_matrices,
    _neutral_trades,
    cut_reasons,
    neutralize,
    simulate,
    trade_value,
)

__all__ = [
    # reason codes and the shared types (ml.portfolio.signals)
    "NONE", "TRADE", "HOLD_COST", "HOLD_TARGET", "CAPPED", "AB_STRADDLE", "AB_UNCERTAIN", "AB_NOSIGNAL", "CLOSED",
    "REFUSED_COST", "CAPPED_NEUTRAL", "HOLD_BAND", "UNWIND", "AB_UNMEASURED", "REASONS",
    "SignalPanel", "Abstention", "PolicyResult",
    # the target-tracking policy (ml.portfolio.target_policy)
    "CostThreshold", "neutralize", "RiskBudget", "TurnoverBudget", "_budget_lp", "Plan", "simulate", "cut_reasons",
    "trade_value", "_exposure_matrices", "_neutral_trades", "CostAwarePolicy", "DecilePolicy",
    # here
    "DEFAULT_CONFIG_PATH", "Policy", "POLICY_DEFAULTS", "TARGET_POLICY", "load_config", "policy_from_config",
    "naive_from_config", "oracle_signals",
]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "policy.yaml"


class Policy(Protocol):
    def plan(self, signals: SignalPanel, market: MarketPanel) -> Plan: ...

    def run(self, signals: SignalPanel, market: MarketPanel, start: int | None = None) -> PolicyResult: ...


# ================================================================================ configuration
POLICY_DEFAULTS: dict[str, Any] = {
    "capital": 5e7,
    "horizon": 5,
    "costs": {"half_spread": {}, "commission": {"rate_bps": 1.0}, "sqrt_impact": {"k": 1.0}},
    "abstention": {"interval": "expected", "z": 1.0, "max_uncertainty_ratio": 1.0},
    "threshold": {"multiple": 1.0, "holding_days": None, "trade_fraction": None, "signal_decay": 1.0},
    "risk": {},
    "turnover": {},
    "naive": {"n_bins": 10, "gross_leverage": 2.0},
    "compare_methods": "chosen",
}


# The target-tracking policy as configured before the held-book optimizer (issue 11): merged over
# `config/policy.yaml` (it sets `optimizer` to null), it rebuilds that policy for comparisons and tests.
TARGET_POLICY: dict[str, Any] = {
    "optimizer": None,
    "threshold": {"multiple": 1.0, "holding_days": 20, "signal_decay": 0.97, "trade_fraction": None},
    "risk": {"risk_exponent": 1.0, "max_weight": 0.03, "max_adv_fraction": 0.05, "gross_leverage": 2.0,
             "target_vol": 0.08, "neutral": ["dollar", "sector", "beta"]},
    "turnover": {"speed": 0.2, "max_daily_turnover": 0.1, "max_monthly_turnover": 1.2, "min_trade": 1.0e-4},
}


def load_config(config: str | Path | Mapping | None = None) -> dict[str, Any]:
    """`config/policy.yaml` (or a path / dict) over the defaults. With no argument, the project's one
    convention (`ml.config.config_path`): `AURORA_POLICY_CONFIG` when set, the file the guardrails read too."""
    return _merge(POLICY_DEFAULTS, read_source("policy", config))


def policy_from_config(cfg: Mapping[str, Any]) -> Policy:
    """The policy of a config: the held-book optimizer (`ml.portfolio.held_book`) when it has an
    `optimizer` block, else the target-tracking cost-aware policy, a component set to null/false
    switched off. Other blocks (`naive`, `guardrails`: read by `ml.portfolio.guardrails`) are passed over."""
    if cfg.get("optimizer") is not None:
        from ml.portfolio.from_config import held_book_from_config

        return held_book_from_config(cfg)
    costs = cost_model_from_config(cfg.get("costs"))

    def part(name: str, cls):
        params = cfg.get(name)
        return None if params is False or params is None else cls(**params)

    risk = dict(cfg.get("risk") or {})
    if "neutral" in risk:
        risk["neutral"] = tuple(risk["neutral"] or ())
    turnover = part("turnover", TurnoverBudget)
    threshold = cfg.get("threshold")
    if threshold is not None and threshold is not False:
        threshold = dict(threshold)
        if threshold.get("trade_fraction") is None:
            threshold["trade_fraction"] = turnover.speed if turnover is not None else 1.0
        threshold = CostThreshold(**threshold)
    else:
        threshold = None
    return CostAwarePolicy(
        costs=costs, risk=RiskBudget(**risk), abstention=part("abstention", Abstention),
        threshold=threshold, turnover=turnover,
        capital=float(cfg.get("capital", 5e7)), horizon=int(cfg.get("horizon", 5)),
    )


def naive_from_config(cfg: Mapping[str, Any]) -> DecilePolicy:
    return DecilePolicy(costs=cost_model_from_config(cfg.get("costs")), capital=float(cfg.get("capital", 5e7)),
                        **(cfg.get("naive") or {}))


def oracle_signals(oracle: pd.DataFrame, column: str = "er_5d") -> pd.DataFrame:
    """Calibration-free signals from the synthetic market's oracle (evaluation only): expected return
    in bps, no interval, zero uncertainty."""
    frame = oracle.assign(date=pd.to_datetime(oracle["date"]), symbol=oracle["symbol"].astype(str))
    out = frame.set_index(["date", "symbol"])[[column]].rename(columns={column: "expected_return"}) * BPS
    out["uncertainty"] = 0.0
    return out
