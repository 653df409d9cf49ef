"""The synthetic market's returns and oracle: channel weights, the day loop, per-channel 5-day expectations.

The fourth step of `ml.market.generate_market`; in the day loop, reversal and momentum feed back on the
realized returns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ml.data.channels import _cs_zscore, _pooled_sd
from ml.data.market_config import MarketConfig
from ml.data.market_inputs import ObservedInputs
from ml.data.market_universe import Factors, Universe
from ml.data.scenario_knobs import _alpha_tilt, _ValueChannel


def _simulate_returns(
    config: MarketConfig,
    calendar: pd.DatetimeIndex,
    universe: Universe,
    factors: Factors,
    inputs: ObservedInputs,
    log: Callable[[str], None],
) -> tuple[np.ndarray, pd.DataFrame, dict[str, float], int]:
    """(returns (days x symbols), oracle, channel weights, index of the day the dying channel stops)."""
    n, t_days = config.n_symbols, config.n_days
    symbols, size_rank, price0 = universe.symbols, universe.size_rank, universe.price0
    shares_out, listed, live = universe.shares_out, universe.listed, universe.live
    stressed, factor_ret, idio_sd = factors.stressed, factors.factor_ret, factors.idio_sd
    shocks, vol = factors.shocks, factors.vol
    states, report_idx, book_equity = inputs.states, inputs.report_idx, inputs.book_equity
    order_imbalance = inputs.order_imbalance
    planted = config.channel_strength

    # --- channel weights ----------------------------------------------------------------------
    strength = np.array([config.channel_strength[c] for c in planted])
    strength = strength / np.sqrt((strength**2).sum())
    target = dict(zip(planted, strength * config.alpha_5d, strict=True))

    def five_day(c: str) -> float:
        d = config.decay(c)
        return 5.0 if d == 1.0 else (1 - d**5) / (1 - d)

    weights_w: dict[str, float] = {}
    states = {c: st for c, st in states.items() if c in planted}
    for c, st in states.items():
        weights_w[c] = target[c] / (five_day(c) * _pooled_sd(st, live))
    rev_d = config.decay("residual_reversal")
    weights_w["residual_reversal"] = -target.get("residual_reversal", 0.0) / (
        five_day("residual_reversal") / np.sqrt(1 - rev_d**2)
    )
    weights_w["residual_momentum"] = target.get("residual_momentum", 0.0) / five_day("residual_momentum")
    weights_w["value"] = target.get("value", 0.0) / five_day("value")
    decay_idx = int(config.decay_fraction * t_days)
    alive = np.ones(t_days)
    alive[decay_idx:] = 0.0  # state at t >= decay_idx no longer moves returns of t+1

    exo_mu = np.zeros((t_days, n))
    for c, st in states.items():
        gate = alive[:, None] if c == config.dying_channel else 1.0
        exo_mu += weights_w[c] * st * gate
    tilt = _alpha_tilt(config, size_rank)  # None: the same alpha per unit of state for every name
    if tilt is not None:
        exo_mu *= tilt[None, :]
    log("channel weights set")

    # --- the day loop: momentum and reversal depend on realized returns --------------------------
    momentum_sign = np.where(stressed, -1.8, 1.0)
    oi_impact = 0.3 * idio_sd
    returns = np.empty((t_days, n))
    rev_state = np.zeros((t_days, n))
    mom_state = np.zeros((t_days, n))
    cum_resid = np.zeros((t_days, n))
    x_rev = np.zeros(n)
    running = np.zeros(n)
    value = (
        _ValueChannel(t_days, report_idx, listed, book_equity, shares_out, price0)
        if "value" in planted
        else None
    )
    value_w = weights_w["value"] * (1.0 if tilt is None else tilt)
    for t in range(t_days):
        mu = np.zeros(n)
        if t > 0:
            if tilt is None:
                mu = (
                    exo_mu[t - 1]
                    + weights_w["residual_reversal"] * x_rev
                    + weights_w["residual_momentum"] * mom_state[t - 1]
                )
            else:
                loop_mu = (
                    weights_w["residual_reversal"] * x_rev + weights_w["residual_momentum"] * mom_state[t - 1]
                )
                mu = exo_mu[t - 1] + tilt * loop_mu
            if value is not None:
                mu = mu + value_w * value.state[t - 1]
        resid = mu + vol[t] * shocks[t] + oi_impact * order_imbalance[t]
        returns[t] = factor_ret[t] + resid
        if value is not None:
            value.update(t, returns[t], live[t])
        x_rev = rev_d * x_rev + resid / idio_sd
        rev_state[t] = x_rev
        running = running + np.where(live[t], resid, 0.0)
        cum_resid[t] = running
        if t >= 252:
            mom = cum_resid[t - 21] - cum_resid[t - 252]
            ok_live = live[t] & (listed <= t - 252)
            if ok_live.sum() > 5:
                mom_state[t] = _cs_zscore(mom[None, :], ok_live[None, :])[0] * momentum_sign[t]
    returns = np.clip(returns, -0.6, 1.5)
    log("returns simulated")

    # --- oracle: per-channel 5-day contributions, gathered on live (symbol, date) cells -----------
    states["residual_reversal"] = rev_state
    states["residual_momentum"] = mom_state
    if value is not None:
        states["value"] = value.state
    ii, tt = np.nonzero(live.T)  # symbol-major: rows come out sorted by (symbol, date)
    oracle = pd.DataFrame(
        {
            "date": calendar.values.astype("datetime64[D]")[tt],
            "symbol": pd.Categorical.from_codes(ii, categories=symbols),
            "er_1d": exo_mu[tt, ii],
        }
    )
    loop_channels = [c for c in ("residual_reversal", "residual_momentum", "value") if c in planted]
    for c in loop_channels:
        w = weights_w[c] if tilt is None else weights_w[c] * tilt[ii]
        oracle["er_1d"] += w * states[c][tt, ii]
    er_5d = np.zeros(len(oracle))
    for c in planted:
        gate = alive[tt] if c == config.dying_channel else 1.0
        contribution = weights_w[c] * five_day(c) * states[c][tt, ii] * gate
        if tilt is not None:
            contribution = contribution * tilt[ii]
        oracle[f"ch_{c}"] = contribution
        er_5d += contribution
    oracle.insert(3, "er_5d", er_5d)
    if config.alpha_5d == 0:  # no alpha: exactly +0.0 everywhere (no -0.0 from negative weights)
        for col in oracle.columns[2:]:
            oracle[col] = 0.0
    return returns, oracle, weights_w, decay_idx
