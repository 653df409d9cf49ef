"""What the scenario knobs change inside the generator, in small helpers (ml/data/market_*.py call them).

Their random numbers come from a second stream seeded by (seed, 7919, purpose), so the default
market's stream never moves; with every knob at its default none of them draws anything.
"""

from __future__ import annotations

import numpy as np

from ml.data.channels import _decay_filter, held_since_report, value_zscore
from ml.data.market_config import MarketConfig


def _extra_rng(config: MarketConfig, purpose: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, 7919, purpose])


def _analyst_coverage(config: MarketConfig, size_rank: np.ndarray) -> np.ndarray:
    """Which names analysts cover: all by default, else a size-tilted random subset of that fraction."""
    n = len(size_rank)
    if config.analyst_coverage >= 1:
        return np.ones(n, dtype=bool)
    k = max(1, int(round(config.analyst_coverage * n)))
    p = (0.25 + size_rank) / (0.25 + size_rank).sum()
    covered = np.zeros(n, dtype=bool)
    covered[_extra_rng(config, 1).choice(n, size=k, replace=False, p=p)] = True
    return covered


def _short_interest_jumps(config: MarketConfig, shape: tuple[int, int]) -> np.ndarray:
    """Rare, heavy-tailed (Student-t, 2 df) jumps in log short interest that fade like the level."""
    rng = _extra_rng(config, 2)
    jumps = rng.standard_t(2, shape) * 0.4 * (rng.random(shape) < config.short_interest_jump_rate)
    return _decay_filter(jumps, 0.85)


def _student_t_scale(config: MarketConfig, shape: tuple[int, int]) -> np.ndarray:
    """Per-cell scale that turns Gaussian draws into Student-t ones (variance mixing), unit variance."""
    df = config.flow_tail_df
    chi2 = _extra_rng(config, 3).chisquare(df, shape)
    scale = np.sqrt(df / chi2)
    return scale * np.sqrt((df - 2) / df) if df > 2 else scale / np.sqrt(3.0)


def _alpha_tilt(config: MarketConfig, size_rank: np.ndarray) -> np.ndarray | None:
    """Per-name alpha multiplier (mean 1) that favours small names, or None for a flat alpha."""
    if config.small_cap_alpha_tilt == 0:
        return None
    m = np.exp(config.small_cap_alpha_tilt * (0.5 - size_rank))
    return m / m.mean()


class _ValueChannel:
    """Book-to-market with today's close, z-scored across live names; updated inside the day loop.

    Book equity counts from its report date and only for reports published while the name is listed
    (the ones in the fundamentals table); the price is the day's close, so the state is known at t.
    """

    def __init__(self, t_days, report_idx, listed, book_equity, shares_out, price0) -> None:
        seen = np.where(report_idx >= listed[:, None], report_idx, -1)
        self.log_book = held_since_report(seen, np.log(np.maximum(book_equity, 1.0)), t_days)
        self.log_shares = np.log(shares_out)
        self.log_price = np.log(price0).copy()
        self.state = np.zeros((t_days, len(shares_out)))

    def update(self, t: int, returns: np.ndarray, live: np.ndarray) -> None:
        self.log_price += np.log1p(np.clip(returns, -0.6, 1.5))
        self.state[t] = value_zscore(self.log_book[t], self.log_shares, self.log_price, live)
