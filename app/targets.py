"""Headline metrics of `aurora report` against the project's targets (pure logic, no Streamlit)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PASS, FAIL, MISSING = "pass", "fail", "n/a"


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    op: str  # ">", "<", ">=", "in"
    bound: float | tuple[float, float]
    kind: str = "num"  # num | pct | int | x

    @property
    def describe(self) -> str:
        if self.op == "in":
            lo, hi = self.bound  # type: ignore[misc]
            return f"in [{_bound(lo, self.kind)}, {_bound(hi, self.kind)}]"
        if self.op == ">=":
            return f"{_bound(self.bound, self.kind)}+"
        return f"{self.op} {_bound(self.bound, self.kind)}"

    def check(self, value: Any) -> str:
        if not is_number(value):
            return MISSING
        v = float(value)
        if self.key == "max_drawdown":  # a positive fraction in ml.backtest; accept a negative convention
            v = abs(v)
        if self.op == ">":
            ok = v > self.bound
        elif self.op == "<":
            ok = v < self.bound
        elif self.op == ">=":
            ok = v >= self.bound
        else:
            lo, hi = self.bound  # type: ignore[misc]
            ok = lo <= v <= hi
        return PASS if ok else FAIL


TARGETS: tuple[Target, ...] = (
    Target("oos_rank_ic", "OOS rank IC", ">", 0.05, "num"),
    Target("sharpe_net", "Sharpe (net of costs)", ">", 1.5, "num"),
    Target("max_drawdown", "Max drawdown", "<", 0.08, "pct"),
    Target("turnover_monthly", "Turnover per month", "<", 1.5, "x"),
    Target("cost_retention", "Cost retention", ">", 0.80, "pct"),
    Target("calibration_error", "Calibration error", "<", 0.05, "pct"),
    Target("coverage_80", "80% interval coverage", "in", (0.75, 0.85), "pct"),
    Target("n_model_families", "Model families", ">=", 5, "int"),
    Target("n_feature_views", "Feature views", ">=", 4, "int"),
)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))


def fmt(value: Any, kind: str = "num") -> str:
    if not is_number(value):
        return "—"
    v = float(value)
    if kind == "pct":
        return f"{v:.1%}"
    if kind == "int":
        return f"{v:.0f}"
    if kind == "x":
        return f"{v:.2f}x"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"


def _bound(value: float, kind: str) -> str:
    if kind == "pct":
        return f"{value * 100:g}%"
    return f"{value:g}x" if kind == "x" else f"{value:g}"


def recovery_share(report: dict[str, Any]) -> float | None:
    """oos_rank_ic / oracle_rank_ic: the share of the achievable rank IC recovered (synthetic market)."""
    ic, oracle = report.get("oos_rank_ic"), report.get("oracle_rank_ic")
    if is_number(ic) and is_number(oracle) and float(oracle) > 0:
        return float(ic) / float(oracle)
    return None


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: key, metric, value, shown, target, status (pass / fail / n/a)."""
    rows = []
    for t in TARGETS:
        value = report.get(t.key)
        rows.append({
            "key": t.key,
            "metric": t.label,
            "value": float(value) if is_number(value) else None,
            "shown": fmt(value, t.kind),
            "target": t.describe,
            "status": t.check(value),
        })
    return rows
