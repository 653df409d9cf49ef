"""The held-book policy from `config/policy.yaml`: one small object per block, built by name (the same
convention as the cost components), so adding a constraint is one class and one line of YAML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml.costs import cost_model_from_config
from ml.portfolio.constraints import (
    AdvCap,
    BetaNeutral,
    Constraint,
    DollarNeutral,
    GrossLeverage,
    MaxWeight,
    NetLeverage,
    SectorNeutral,
    TurnoverLimit,
    VolTarget,
)
from ml.portfolio.held_book import HeldBookPolicy, RealizedRisk
from ml.portfolio.optimizer import Borrow

CONSTRAINTS: dict[str, type] = {
    "dollar_neutral": DollarNeutral,
    "sector_neutral": SectorNeutral,
    "beta_neutral": BetaNeutral,
    "max_weight": MaxWeight,
    "adv_cap": AdvCap,
    "gross_leverage": GrossLeverage,
    "net_leverage": NetLeverage,
    "vol_target": VolTarget,
    "turnover_limit": TurnoverLimit,
}


def constraints_from_config(block: Mapping[str, Any] | None) -> list[Constraint]:
    """{name: parameters} -> constraint objects, in the YAML's order; a name mapped to false is left out."""
    out = []
    for name, params in (block or {}).items():
        if name not in CONSTRAINTS:
            raise ValueError(f"unknown constraint {name!r} in policy.constraints; one of {sorted(CONSTRAINTS)}")
        if params is not False:
            out.append(CONSTRAINTS[name](**(params or {})))
    return out


def held_book_from_config(cfg: Mapping[str, Any]) -> HeldBookPolicy:
    from ml.policy import Abstention

    opt = dict(cfg.get("optimizer") or {})
    realized = opt.pop("realized_risk", {})
    if "edge_lags" in opt:
        opt["edge_lags"] = tuple(int(h) for h in opt["edge_lags"])
    if "vol_scaling" in opt:
        opt["vol_scaling"] = tuple(float(p) for p in opt["vol_scaling"])
    borrow = cfg.get("borrow")
    abst = cfg.get("abstention")
    return HeldBookPolicy(
        costs=cost_model_from_config(cfg.get("costs")),
        constraints=constraints_from_config(cfg.get("constraints")),
        borrow=None if borrow is None or borrow is False else Borrow(**borrow),
        realized_risk=None if realized is None or realized is False else RealizedRisk(**realized),
        abstention=None if abst is None or abst is False else Abstention(**abst),
        capital=float(cfg.get("capital", 5e7)), horizon=int(cfg.get("horizon", 5)),
        **opt,
    )


def gross_cap(cfg: Mapping[str, Any], default: float = 2.0) -> float:
    """The gross leverage limit of a policy config (held-book `constraints` or the target policy's `risk`)."""
    cons = cfg.get("constraints") or {}
    if isinstance(cons.get("gross_leverage"), Mapping):
        return float(cons["gross_leverage"].get("limit", default))
    return float((cfg.get("risk") or {}).get("gross_leverage", default))
