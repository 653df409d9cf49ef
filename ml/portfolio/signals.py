"""What every policy shares: the signals it reads (`SignalPanel`), abstention where a signal cannot be
told from zero (`Abstention`), the reason code of each decision and its text in ml.positions, and the
result it returns (`PolicyResult`). `ml.policy` re-exports all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.backtest import MarketPanel

# reason codes (int8 per name and date) and their text in ml.positions
(NONE, TRADE, HOLD_COST, HOLD_TARGET, CAPPED, AB_STRADDLE, AB_UNCERTAIN, AB_NOSIGNAL, CLOSED, REFUSED_COST,
 CAPPED_NEUTRAL, HOLD_BAND, UNWIND, AB_UNMEASURED) = range(14)
REASONS = {
    NONE: "flat",
    TRADE: "trade",
    HOLD_COST: "hold: edge below cost",
    HOLD_TARGET: "hold: at target",
    CAPPED: "capped: turnover budget",
    AB_STRADDLE: "abstain: interval straddles zero",
    AB_UNCERTAIN: "abstain: uncertainty exceeds signal",
    AB_NOSIGNAL: "abstain: no signal",
    CLOSED: "closed: not tradable",
    REFUSED_COST: "refused: trade value below cost",  # cut on a budget day, but worth <= its cost anyway
    CAPPED_NEUTRAL: "capped: neutral scaling",  # cut although the budget was not spent (exposure constraints)
    HOLD_BAND: "hold: inside no-trade band",  # held; moving it would cost more than the alpha it adds
    UNWIND: "unwind: alpha gone",  # reduced a position whose alpha is zero or reversed
    AB_UNMEASURED: "abstain: no measurable edge",  # the signal's walk-forward edge is not distinguishable from 0
}


# ================================================================================ inputs
@dataclass
class SignalPanel:
    """Signals on the market's dates x symbols grid, in bps over the horizon (NaN: no signal).
    `components`: expected returns of other label horizons ({h: dates x names, bps over h days},
    `ml.horizon_signals`), which the held-book policy uses each at its own measured speed."""

    expected_return: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    uncertainty: np.ndarray
    components: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, signals: pd.DataFrame, market: MarketPanel,
                   horizon_signals: pd.DataFrame | None = None) -> SignalPanel:
        """From a (date, symbol)-indexed frame (or one with date/symbol columns) of expected_return
        and optionally lower, upper, uncertainty (missing -> NaN, uncertainty missing -> 0), and the
        other horizons' signals (long: date, symbol, horizon, expected_return). Signals scaled by the
        calibration's track record are read unscaled (`ml.calibration.unscale`): the policy measures its
        own edge per bp of expected return, and the two measures would compound."""
        from ml.calibration import unscale
        from ml.horizon_signals import component_grids

        frame = unscale(signals)
        if "date" in frame.columns:
            frame = frame.assign(date=pd.to_datetime(frame["date"]), symbol=frame["symbol"].astype(str))
            frame = frame.set_index(["date", "symbol"])
        grid = {c: market.grid(frame[c]) if c in frame else np.full(market.shape, np.nan)
                for c in ("expected_return", "lower", "upper", "uncertainty")}
        if "uncertainty" not in frame:
            grid["uncertainty"] = np.where(np.isfinite(grid["expected_return"]), 0.0, np.nan)
        return cls(**grid, components=component_grids(horizon_signals, market.grid))

    def first_date(self) -> int:
        """Calendar position of the first date with any signal (0 if none)."""
        rows = np.flatnonzero(np.isfinite(self.expected_return).any(axis=1))
        return int(rows[0]) if len(rows) else 0


# ================================================================================ components
@dataclass
class Abstention:
    """No position where the signal cannot be told from zero.

    `interval='expected'`: the band expected_return +- z * uncertainty straddles zero;
    `interval='prediction'`: the signal's own [lower, upper] straddles zero (at a 5-day horizon the
    80% prediction interval of a single stock nearly always does, so this mostly switches trading off);
    `max_uncertainty_ratio`: uncertainty > ratio * |expected_return| (None: off)."""

    interval: str | None = "expected"
    z: float = 1.0
    max_uncertainty_ratio: float | None = 1.0

    def reasons(self, signals: SignalPanel) -> np.ndarray:
        er, unc = signals.expected_return, np.nan_to_num(signals.uncertainty)
        out = np.where(np.isfinite(er), NONE, AB_NOSIGNAL).astype(np.int8)
        if self.interval == "expected":
            straddle = np.abs(np.nan_to_num(er)) <= self.z * unc
        elif self.interval == "prediction":
            straddle = ~((signals.lower > 0) | (signals.upper < 0))
        elif self.interval is None:
            straddle = np.zeros(er.shape, bool)
        else:
            raise ValueError(f"interval must be expected | prediction | null, got {self.interval!r}")
        out[(out == NONE) & straddle] = AB_STRADDLE
        if self.max_uncertainty_ratio is not None:
            uncertain = unc > self.max_uncertainty_ratio * np.abs(np.nan_to_num(er))
            out[(out == NONE) & uncertain] = AB_UNCERTAIN
        return out


# ================================================================================ result
@dataclass
class PolicyResult:
    weights: np.ndarray  # post-trade weights decided at each close (dates x names)
    trades: np.ndarray
    costs: np.ndarray  # fraction of capital
    reasons: np.ndarray  # int8 codes
    target: np.ndarray  # the plan's (ideal) targets
    start: int
    constants: pd.DataFrame | None = None  # measured constants (date, constant, value), when the policy has any

    def positions_frame(self, market: MarketPanel) -> pd.DataFrame:
        """`ml.positions` rows from the first decision date: every name held, traded, or with a
        signal-related reason (flat names without any reason are left out). target_weight is the
        weight decided at the close of the date (post-trade); trade the change made that day."""
        sl = slice(self.start, None)
        w, tr, c, r = self.weights[sl], self.trades[sl], self.costs[sl], self.reasons[sl]
        keep = (np.abs(w) > 0) | (np.abs(tr) > 0) | (r != NONE)
        t_idx, n_idx = np.nonzero(keep)
        labels = np.array([REASONS[k] for k in range(len(REASONS))], dtype=object)
        return pd.DataFrame({
            "date": market.dates[self.start:][t_idx],
            "symbol": market.symbols[n_idx].astype(str),
            "target_weight": w[t_idx, n_idx],
            "trade": tr[t_idx, n_idx],
            "cost_estimate": c[t_idx, n_idx],
            "reason": labels[r[t_idx, n_idx]],
        })
