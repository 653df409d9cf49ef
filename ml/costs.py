"""Transaction cost models: small components summed by the caller, e.g.

    costs = HalfSpread() + Commission(bps=1.0) + SquareRootImpact(k=1.0)

Each component answers the cost, in bps of the traded value, of trading `trade_value` dollars of
each name given that day's market (`CostInputs`: quoted spread, average daily dollar volume, daily
volatility). Costs are per name and vectorized over names (and dates, for 2-D inputs).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

BPS = 1e4


@dataclass
class CostInputs:
    """The market as the cost model sees it (arrays of the same shape: names, or dates x names)."""

    spread_bps: np.ndarray
    adv_value: np.ndarray  # average daily traded value, in currency
    sigma: np.ndarray  # daily return volatility


def fill_row_median(values: np.ndarray, default: float) -> np.ndarray:
    """Missing values replaced by the median of their own row (one date's cross-section; never other
    dates, which could be in the future), or `default` where a row has none."""
    a = np.asarray(values, dtype=float)
    ok = np.isfinite(a)
    if ok.all():
        return a
    with warnings.catch_warnings():  # rows without any value fall back to the default
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(np.where(ok, a, np.nan), axis=-1, keepdims=True)
    med = np.where(np.isfinite(med), med, default)
    return np.where(ok, a, med)


class CostComponent(Protocol):
    def bps(self, trade_value: np.ndarray, market: CostInputs) -> np.ndarray:
        """Cost in bps of the traded value (>= 0) for each name."""
        ...


class _CostBase:
    """Shared by components and their sums: `a + b` composes, `cost` turns weight trades into costs."""

    def bps(self, trade_value: np.ndarray, market: CostInputs) -> np.ndarray:
        raise NotImplementedError

    def __add__(self, other: _CostBase) -> CostModel:
        left = self.components if isinstance(self, CostModel) else [self]
        right = other.components if isinstance(other, CostModel) else [other]
        return CostModel([*left, *right])

    def cost(self, trade_weight: np.ndarray, market: CostInputs, capital: float) -> np.ndarray:
        """Cost of trading `trade_weight` (fraction of capital, signed) per name, as a fraction of
        capital (>= 0; zero where nothing is traded)."""
        tw = np.abs(np.nan_to_num(np.asarray(trade_weight, dtype=float)))
        return np.where(tw > 0, tw * self.bps(tw * capital, market) / BPS, 0.0)

    def round_trip_bps(self, weight: np.ndarray, market: CostInputs, capital: float) -> np.ndarray:
        """Cost, in bps of the position, of opening and later closing a position of `weight`."""
        tw = np.abs(np.nan_to_num(np.asarray(weight, dtype=float)))
        return 2.0 * self.bps(tw * capital, market)


@dataclass
class HalfSpread(_CostBase):
    """Crossing half the quoted spread; `fallback_bps` (a full spread) where no spread is known."""

    fallback_bps: float = 10.0

    def bps(self, trade_value: np.ndarray, market: CostInputs) -> np.ndarray:
        spread = np.asarray(market.spread_bps, dtype=float)
        spread = np.where(np.isfinite(spread) & (spread > 0), spread, self.fallback_bps)
        return np.broadcast_to(0.5 * spread, np.shape(trade_value)).copy()


@dataclass
class Commission(_CostBase):
    """A flat commission in bps of the traded value."""

    rate_bps: float = 1.0

    def bps(self, trade_value: np.ndarray, market: CostInputs) -> np.ndarray:
        return np.full(np.shape(trade_value), float(self.rate_bps))


@dataclass
class SquareRootImpact(_CostBase):
    """Square-root market impact: k * sigma_daily * sqrt(trade_value / ADV_value), in bps.

    Names with no known ADV get `missing_adv_participation` (the trade as a share of ADV assumed)."""

    k: float = 1.0
    missing_adv_participation: float = 1.0

    def bps(self, trade_value: np.ndarray, market: CostInputs) -> np.ndarray:
        adv = np.asarray(market.adv_value, dtype=float)
        sigma = np.asarray(market.sigma, dtype=float)
        value = np.abs(np.asarray(trade_value, dtype=float))
        with np.errstate(invalid="ignore", divide="ignore"):
            participation = np.where(np.isfinite(adv) & (adv > 0), value / adv, self.missing_adv_participation)
        sigma = fill_row_median(sigma, 0.02)
        return self.k * sigma * np.sqrt(participation) * BPS


@dataclass
class CostModel(_CostBase):
    """A sum of cost components."""

    components: list[CostComponent] = field(default_factory=list)

    def bps(self, trade_value: np.ndarray, market: CostInputs) -> np.ndarray:
        total = np.zeros(np.shape(trade_value))
        for comp in self.components:
            total = total + comp.bps(trade_value, market)
        return total


COMPONENTS: dict[str, type] = {
    "half_spread": HalfSpread,
    "commission": Commission,
    "sqrt_impact": SquareRootImpact,
}


def cost_model_from_config(config: Mapping[str, Any] | None) -> CostModel:
    """A CostModel from {component name: parameters}, e.g. {half_spread: {}, commission: {rate_bps: 1}}.
    A component mapped to `false` is left out; `{}` or null takes its defaults."""
    config = config or {"half_spread": {}, "commission": {}, "sqrt_impact": {}}
    parts = []
    for name, params in config.items():
        if name not in COMPONENTS:
            raise ValueError(f"unknown cost component {name!r}; one of {sorted(COMPONENTS)}")
        if params is not False:
            parts.append(COMPONENTS[name](**(params or {})))
    return CostModel(parts)
