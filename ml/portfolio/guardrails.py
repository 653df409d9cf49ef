"""Guardrails of the `policy_backtest` stage: diagnostics of the book the policy held, never a decision.

Each guardrail is one small class that measures the book (weights, trades, targets and reasons of a
`PolicyResult`, with the signals' expected returns on the same dates x names grid) and warns when a
threshold of `config/policy.yaml` (`guardrails:` block; the gross cap is `constraints.gross_leverage`) is
crossed:

- `GrossCap`: held gross exposure above the policy's gross cap (mean, max, share of days above);
- `BookSignalCorrelation`: the cross-sectional rank correlation of the held weights with that day's
  expected return (mean over the backtest and over the last `recent_days`) below a floor;
- `PositionAge`: the share of gross held in positions older than `max_age_half_lives` signal
  half-lives (age: trading days since a name's weight was opened or last changed sign) that the day's
  signal no longer supports (the position's sign against the day's demeaned expected return, or no
  signal). Age alone is not staleness: a signal with a persistent part keeps supporting a name long
  after its rank autocorrelation has halved, and on seven markets old positions agreed with the day's
  signal about as often as young ones (BENCHMARKS.md, session 16). A frozen book's old positions agree
  only by chance. The half-life is measured on the signals themselves: the lag at which the mean
  cross-sectional rank autocorrelation of the expected returns falls below 0.5. It uses the whole
  backtest's signals (not walk-forward), which is fine for a diagnostic and would not be for a decision;
- `RefusedTrades`: the share of wanted trades refused. A trade is wanted when the plan's target
  differs from the pre-trade weight by more than the policy's `min_trade`; it is refused when nothing
  was executed for that name that day.

`check_book` runs them all and returns (warnings, diagnostics); `stage_guardrails` adds what the
stage reports besides (window, days, turnover as a share of capital and of the book, reason counts,
"no positions taken").
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.config import ConfigError, config_path, from_mapping, read_yaml
from ml.jsonable import json_safe

RISK_GROSS_DEFAULT = 2.0  # ml.policy.RiskBudget.gross_leverage
MIN_TRADE_DEFAULT = 1e-4  # ml.policy.TurnoverBudget.min_trade


@dataclass(frozen=True)
class GuardrailConfig:
    """Thresholds of the guardrails; `config/policy.yaml` (`guardrails:`) documents each one."""

    gross_tolerance: float = 0.05
    min_book_signal_correlation: float = 0.2
    recent_days: int = 63
    max_age_half_lives: float = 10.0
    max_old_gross_share: float = 0.25
    max_half_life_lag: int = 252
    max_refused_share: float = 0.5

    @classmethod
    def from_policy_config(cls, cfg: Mapping[str, Any]) -> GuardrailConfig:
        """The `guardrails` block of an already loaded policy config (`ml.policy.load_config`)."""
        block = cfg.get("guardrails") or {}
        if not isinstance(block, Mapping):
            raise ConfigError(f"policy config: guardrails must be a mapping, got {block!r}")
        return from_mapping(cls, block, "policy config: guardrails")

    @classmethod
    def load(cls, override: str | os.PathLike | Mapping | GuardrailConfig | None = None) -> GuardrailConfig:
        """The `guardrails` block of `config/policy.yaml` (or `AURORA_POLICY_CONFIG`); a mapping
        `override` is merged over it, a path replaces the file."""
        if isinstance(override, cls):
            return override
        if isinstance(override, str | os.PathLike):
            return from_mapping(cls, read_yaml(override).get("guardrails") or {}, f"{override}: guardrails")
        path = config_path("policy")
        data = dict((read_yaml(path).get("guardrails") or {}) if path.exists() else {})
        data.update(dict(override or {}))
        return from_mapping(cls, data, f"{path}: guardrails")


@dataclass(frozen=True)
class GuardrailWarning:
    name: str
    value: float
    threshold: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Book:
    """What the guardrails look at, from the first decision date on (dates x names arrays)."""

    weights: np.ndarray  # post-trade weights decided at each close
    trades: np.ndarray
    target: np.ndarray  # the plan's targets
    expected_return: np.ndarray  # the signals' expected returns (NaN: no signal)
    reasons: np.ndarray | None = None  # int8 codes of ml.policy.REASONS
    dates: pd.DatetimeIndex | None = None

    @classmethod
    def from_result(cls, result: Any, expected_return: np.ndarray, dates: pd.DatetimeIndex | None = None) -> Book:
        """From an `ml.policy.PolicyResult` and the expected returns on the market's grid."""
        sl = slice(result.start, None)
        return cls(weights=result.weights[sl], trades=result.trades[sl], target=result.target[sl],
                   expected_return=np.asarray(expected_return, dtype=float)[sl], reasons=result.reasons[sl],
                   dates=None if dates is None else pd.DatetimeIndex(dates)[sl])

    @property
    def gross(self) -> np.ndarray:
        return np.abs(np.nan_to_num(self.weights)).sum(axis=1)

    @property
    def has_positions(self) -> bool:
        return bool((self.gross > 0).any())


# ================================================================================ measures
def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def row_ranks(x: np.ndarray) -> np.ndarray:
    """Cross-sectional ranks of each row (average ranks for ties; NaN stays NaN)."""
    return pd.DataFrame(np.asarray(x, dtype=float)).rank(axis=1, method="average").to_numpy()


def row_corr(a: np.ndarray, b: np.ndarray, min_names: int = 3) -> np.ndarray:
    """Pearson correlation of each row pair over the names finite in both (NaN: too few or constant)."""
    m = np.isfinite(a) & np.isfinite(b)
    n = m.sum(axis=1)
    a0, b0 = np.where(m, a, 0.0), np.where(m, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        am = a0.sum(axis=1) / n
        bm = b0.sum(axis=1) / n
        da, db = np.where(m, a0 - am[:, None], 0.0), np.where(m, b0 - bm[:, None], 0.0)
        cov, va, vb = (da * db).sum(axis=1), (da * da).sum(axis=1), (db * db).sum(axis=1)
        out = cov / np.sqrt(va * vb)
    return np.where((n >= min_names) & (va > 1e-18) & (vb > 1e-18), out, np.nan)


def book_signal_correlation(weights: np.ndarray, expected_return: np.ndarray) -> np.ndarray:
    """Per date, the rank correlation of the held weights with that day's expected return, over the
    names with a signal (NaN on days without a book)."""
    er = np.asarray(expected_return, dtype=float)
    w = np.where(np.isfinite(er), np.nan_to_num(weights), np.nan)
    out = row_corr(row_ranks(w), row_ranks(er))
    return np.where(np.abs(np.nan_to_num(weights)).sum(axis=1) > 0, out, np.nan)


def signal_autocorrelation(expected_return: np.ndarray, max_lag: int = 252, stop_below: float | None = 0.5,
                           ) -> np.ndarray:
    """Mean cross-sectional rank autocorrelation of the expected returns at lags 1..max_lag (stops
    after the first lag below `stop_below`; the array is as long as the lags measured)."""
    ranks = row_ranks(expected_return)
    out = []
    for lag in range(1, min(max_lag, len(ranks) - 1) + 1):
        out.append(_nanmean(row_corr(ranks[lag:], ranks[:-lag])))
        if stop_below is not None and np.isfinite(out[-1]) and out[-1] < stop_below:
            break
    return np.asarray(out, dtype=float)


def signal_half_life(expected_return: np.ndarray, max_lag: int = 252) -> tuple[float | None, bool]:
    """(half-life in trading days, censored): the first lag where the signals' rank autocorrelation
    falls below 0.5; `max_lag` and censored=True when it never does; None when it cannot be measured."""
    ac = signal_autocorrelation(expected_return, max_lag)
    if not len(ac) or not np.isfinite(ac).any():
        return None, False
    below = np.flatnonzero(np.isfinite(ac) & (ac < 0.5))
    return (float(below[0] + 1), False) if len(below) else (float(len(ac)), True)


def position_age(weights: np.ndarray) -> np.ndarray:
    """Trading days since each held name's position was opened or last changed sign (0 on the day it
    is opened; 0 where flat)."""
    sign = np.sign(np.nan_to_num(weights))
    ages = np.zeros(sign.shape)
    age, prev = np.zeros(sign.shape[1]), np.zeros(sign.shape[1])
    for t in range(len(sign)):
        same = (sign[t] != 0) & (sign[t] == prev)
        age = np.where(same, age + 1.0, 0.0)
        ages[t], prev = age, sign[t]
    return ages


def supported(weights: np.ndarray, expected_return: np.ndarray) -> np.ndarray:
    """Held positions whose sign agrees with the day's expected return relative to its cross-sectional
    mean (what a dollar-neutral book is long or short of); False where flat or without a signal."""
    er = np.asarray(expected_return, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a day without any signal
        rel = er - np.nanmean(er, axis=1, keepdims=True)
    w = np.nan_to_num(weights)
    return (w != 0) & np.isfinite(rel) & (np.sign(w) == np.sign(rel))


def wanted_and_refused(weights: np.ndarray, trades: np.ndarray, target: np.ndarray,
                       min_trade: float = MIN_TRADE_DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the wanted trades (|target - pre-trade weight| > min_trade) and of those refused
    (nothing executed). The pre-trade weight is the post-trade weight less the day's trade."""
    w, tr = np.nan_to_num(weights), np.nan_to_num(trades)
    wanted = np.abs(np.nan_to_num(target) - (w - tr)) > max(float(min_trade), 1e-12)
    return wanted, wanted & (tr == 0)


# ================================================================================ guardrails
@dataclass
class GrossCap:
    cap: float = RISK_GROSS_DEFAULT
    tolerance: float = 0.05
    name: str = "gross_cap"

    def measure(self, book: Book) -> dict[str, Any]:
        g = book.gross
        above = g > self.cap * (1 + self.tolerance)
        return {"gross_cap": self.cap, "gross_mean": float(g.mean()) if len(g) else float("nan"),
                "gross_max": float(g.max()) if len(g) else float("nan"),
                "gross_days_above_cap_share": float(above.mean()) if len(g) else float("nan")}

    def warning(self, m: Mapping[str, Any]) -> GuardrailWarning | None:
        if not m["gross_max"] > self.cap * (1 + self.tolerance):
            return None
        return GuardrailWarning(self.name, m["gross_max"], self.cap, (
            f"held gross exceeded the cap of {self.cap:.2f}x (the gross leverage limit) on "
            f"{m['gross_days_above_cap_share']:.0%} of days: mean {m['gross_mean']:.2f}x, max {m['gross_max']:.2f}x"))


@dataclass
class BookSignalCorrelation:
    floor: float = 0.2
    recent_days: int = 63
    name: str = "book_signal_correlation"

    def measure(self, book: Book) -> dict[str, Any]:
        corr = book_signal_correlation(book.weights, book.expected_return)
        return {"book_signal_rank_corr": _nanmean(corr),
                "book_signal_rank_corr_recent": _nanmean(corr[-self.recent_days:]) if len(corr) else float("nan")}

    def warning(self, m: Mapping[str, Any]) -> GuardrailWarning | None:
        values = [v for v in (m["book_signal_rank_corr"], m["book_signal_rank_corr_recent"]) if np.isfinite(v)]
        if not values or min(values) >= self.floor:
            return None
        return GuardrailWarning(self.name, min(values), self.floor, (
            f"the held book's rank correlation with the day's expected return is "
            f"{m['book_signal_rank_corr']:.3f} on average and {m['book_signal_rank_corr_recent']:.3f} over the "
            f"last {self.recent_days} days, below the floor {self.floor:.2f}: the book does not follow the signal"))


@dataclass
class PositionAge:
    max_half_lives: float = 10.0
    max_old_share: float = 0.25
    max_lag: int = 252
    name: str = "position_age"

    def measure(self, book: Book) -> dict[str, Any]:
        half_life, censored = signal_half_life(book.expected_return, self.max_lag)
        w = np.abs(np.nan_to_num(book.weights))
        age = position_age(book.weights)
        held = w > 0
        out = {"signal_half_life_days": half_life, "signal_half_life_censored": censored,
               "median_position_age_days": float(np.median(age[held])) if held.any() else float("nan"),
               "old_position_age_days": None, "old_gross_share": float("nan"),
               "old_unsupported_gross_share": float("nan")}
        if half_life is not None and held.any():
            limit = self.max_half_lives * half_life
            old = age > limit
            out["old_position_age_days"] = limit
            out["old_gross_share"] = float(w[old].sum() / w.sum())
            out["old_unsupported_gross_share"] = float(w[old & ~supported(book.weights, book.expected_return)].sum()
                                                       / w.sum())
        return out

    def warning(self, m: Mapping[str, Any]) -> GuardrailWarning | None:
        share = m["old_unsupported_gross_share"]
        if not np.isfinite(share) or share <= self.max_old_share:
            return None
        hl = m["signal_half_life_days"]
        return GuardrailWarning(self.name, share, self.max_old_share, (
            f"{share:.0%} of gross is in positions older than {self.max_half_lives:g} signal half-lives "
            f"({m['old_position_age_days']:.0f} trading days; half-life {'>=' if m['signal_half_life_censored'] else ''}"
            f"{hl:.0f} days, from the signals' own rank autocorrelation) that the day's signal no longer supports "
            f"({m['old_gross_share']:.0%} of gross is that old in all); median position age "
            f"{m['median_position_age_days']:.0f} days"))


@dataclass
class RefusedTrades:
    max_share: float = 0.5
    min_trade: float = MIN_TRADE_DEFAULT
    name: str = "refused_trades"

    def measure(self, book: Book) -> dict[str, Any]:
        wanted, refused = wanted_and_refused(book.weights, book.trades, book.target, self.min_trade)
        n_wanted, n_refused = int(wanted.sum()), int(refused.sum())
        out: dict[str, Any] = {"wanted_trades": n_wanted, "refused_trades": n_refused,
                               "refused_share": n_refused / n_wanted if n_wanted else float("nan")}
        if book.reasons is not None:
            from ml.policy import REASONS

            codes, counts = np.unique(book.reasons[refused], return_counts=True)
            out["refused_by_reason"] = {REASONS.get(int(c), str(int(c))): int(n) for c, n in
                                        sorted(zip(codes, counts, strict=True), key=lambda x: -x[1])}
        return out

    def warning(self, m: Mapping[str, Any]) -> GuardrailWarning | None:
        share = m["refused_share"]
        if not np.isfinite(share) or share <= self.max_share:
            return None
        why = m.get("refused_by_reason") or {}
        top = "; ".join(f"{k}: {v:,}" for k, v in list(why.items())[:3])
        return GuardrailWarning(self.name, share, self.max_share, (
            f"{share:.0%} of wanted trades were refused ({m['refused_trades']:,} of {m['wanted_trades']:,} "
            f"name-days where the target differs from the held weight)" + (f" — {top}" if top else "")))


def guardrails(cfg: GuardrailConfig, gross_cap: float = RISK_GROSS_DEFAULT,
               min_trade: float = MIN_TRADE_DEFAULT) -> list[Any]:
    return [GrossCap(gross_cap, cfg.gross_tolerance),
            BookSignalCorrelation(cfg.min_book_signal_correlation, cfg.recent_days),
            PositionAge(cfg.max_age_half_lives, cfg.max_old_gross_share, cfg.max_half_life_lag),
            RefusedTrades(cfg.max_refused_share, min_trade)]


def check_book(book: Book, cfg: GuardrailConfig | None = None, gross_cap: float = RISK_GROSS_DEFAULT,
               min_trade: float = MIN_TRADE_DEFAULT) -> tuple[list[GuardrailWarning], dict[str, Any]]:
    """Every guardrail's measures (one dict) and the warnings of those whose threshold is crossed."""
    warnings, diagnostics = [], {}
    for guard in guardrails(cfg or GuardrailConfig(), gross_cap, min_trade):
        measured = guard.measure(book)
        diagnostics.update(measured)
        found = guard.warning(measured)
        if found is not None:
            warnings.append(found)
    return warnings, diagnostics


# ================================================================================ the stage's report
@dataclass
class StageGuardrails:
    warnings: list[GuardrailWarning]
    diagnostics: dict[str, Any]
    messages: list[str] = field(default_factory=list)  # every warning, plus "no positions taken"


NO_POSITIONS = "no positions taken"


def no_positions_message(reason_counts: Mapping[str, int] | None) -> str:
    counts = sorted((reason_counts or {}).items(), key=lambda kv: -kv[1])
    why = "; ".join(f"{k}: {int(v):,}" for k, v in counts) if counts else "no rows in ml.positions"
    return f"{NO_POSITIONS} (ml.positions reasons: {why})"


def guardrail_messages(messages: list[str] | None) -> list[str]:
    """The warnings other than "no positions taken" (which `summary_line` already says)."""
    return [m for m in messages or [] if not str(m).startswith(NO_POSITIONS)]


def stage_guardrails(book: Book, daily: pd.DataFrame, metrics: Mapping[str, Any],
                     reason_counts: Mapping[str, int], policy_cfg: Mapping[str, Any]) -> StageGuardrails:
    """The `policy_backtest` stage's guardrails: warnings, and the diagnostics it reports
    (`policy_diagnostics`): the backtest window, days, held gross, turnover per month as a share of
    capital and of the book, the guardrails' measures and the ml.positions reason counts."""
    cfg = GuardrailConfig.from_policy_config(policy_cfg)
    from ml.portfolio.from_config import gross_cap as configured_gross_cap

    gross_cap = configured_gross_cap(policy_cfg, RISK_GROSS_DEFAULT)
    turnover = policy_cfg.get("turnover")
    min_trade = float((turnover or {}).get("min_trade", MIN_TRADE_DEFAULT)) if turnover is not None else 0.0
    warnings, measured = check_book(book, cfg, gross_cap, min_trade)
    dates = pd.to_datetime(daily["date"]) if len(daily) else pd.Series([], dtype="datetime64[ns]")
    taken = book.has_positions
    diagnostics = {
        "window_start": str(dates.iloc[0].date()) if len(dates) else None,
        "window_end": str(dates.iloc[-1].date()) if len(dates) else None,
        "n_days": int(len(daily)),
        "positions_taken": taken,
        "turnover_monthly_capital": metrics.get("turnover_monthly_nav"),
        "turnover_monthly_book": metrics.get("turnover_monthly") if taken else None,
        **measured,
        "reason_counts": {str(k): int(v) for k, v in sorted(reason_counts.items(), key=lambda kv: -kv[1])},
        "thresholds": {**asdict(cfg), "gross_cap": gross_cap, "min_trade": min_trade},
    }
    messages = [w.message for w in warnings]
    if not taken:
        messages.insert(0, no_positions_message(reason_counts))
    return StageGuardrails(warnings, json_safe(diagnostics), messages)


def summary_line(diagnostics: Mapping[str, Any] | None, reasons: bool = True) -> str:
    """One line: window, days, mean gross, turnover as a share of capital and of the book (or "no
    positions taken", with the reason counts unless `reasons=False`)."""
    d = diagnostics or {}
    if not d:
        return "no policy diagnostics (run the policy_backtest stage)"
    window = f"{d.get('window_start')} .. {d.get('window_end')} ({d.get('n_days') or 0:,} days)"
    if not d.get("positions_taken"):
        return f"{window}: {no_positions_message(d.get('reason_counts')) if reasons else NO_POSITIONS}"

    def x(v: Any) -> str:
        return "—" if v is None else f"{v:.2f}x"

    return (f"{window}: mean gross {x(d.get('gross_mean'))} (max {x(d.get('gross_max'))}, cap {x(d.get('gross_cap'))}); "
            f"turnover/month {x(d.get('turnover_monthly_capital'))} of capital, {x(d.get('turnover_monthly_book'))} "
            f"of the book")
