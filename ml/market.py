"""The embedded synthetic market: raw tables of the contract plus an oracle of true expected returns.

Why a generator: because it knows the true expected return of every (symbol, date), every run can say
how much of the achievable signal it recovered.

How the alpha is planted. Each channel c turns *observable* raw data into a state matrix X_c
(days x symbols) that is known at the close of day t. The expected return of day t+1 is

    mu[t+1] = sum_c w_c * X_c[t]

and, absent new information, channel c's state decays geometrically with factor d_c, so the
expected 5-day forward return known at t is sum_c w_c * X_c[t] * (1 + d_c + ... + d_c^4). That is
what the oracle records (`er_5d`); it uses nothing the market had not published by t, except the
latent calm/stressed regime, which the oracle knows and the models must infer.

Realized returns add market, sector and style (size, value) factors, fat-tailed idiosyncratic noise
with GARCH-like volatility clustering and a calm/stressed regime chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ml.contract import MARKET_ETF
from ml.data.channels import (
    _ar1,
    _cs_zscore,
    _decay_filter,
    _ffill_index,
    _next_bday_index,
    _pooled_sd,
    _relu,
    flow_shock_state,
    impulses_at,
    insider_net_state,
    profitability_state,
    short_interest_tail_state,
)
from ml.data.market_config import (
    CHANNEL_DECAY,
    CHANNEL_STRENGTH,
    DECOY_FIELDS,
    EXTRA_CHANNEL_DECAY,
    SECTORS,
    Market,
    MarketConfig,
)
from ml.data.market_tables import _assemble_tables, to_arrow, write_market_files
from ml.data.scenario_knobs import (
    _alpha_tilt,
    _analyst_coverage,
    _short_interest_jumps,
    _student_t_scale,
    _ValueChannel,
)

__all__ = [
    "CHANNEL_DECAY",
    "CHANNEL_STRENGTH",
    "DECOY_FIELDS",
    "EXTRA_CHANNEL_DECAY",
    "SECTORS",
    "Market",
    "MarketConfig",
    "generate_market",
    "to_arrow",
    "write_market",
]


# ----------------------------------------------------------------------------------------------
# the simulation


def generate_market(config: MarketConfig, log: Callable[[str], None] | None = None) -> Market:
    """Simulate the whole market in memory. Deterministic given `config`."""
    log = log or (lambda _m: None)
    rng = np.random.default_rng(config.seed)
    n, t_days = config.n_symbols, config.n_days
    calendar = pd.bdate_range(config.start, periods=t_days)
    day_idx = np.arange(t_days)

    # --- universe ------------------------------------------------------------------------------
    weights = np.array([s[2] for s in SECTORS])
    counts = np.maximum(2, np.floor(weights / weights.sum() * n).astype(int))
    while counts.sum() < n:
        counts[np.argmax(weights / weights.sum() * n - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(counts)] -= 1
    sector_of = np.repeat(np.arange(len(SECTORS)), counts)
    industry_of = np.array(
        [SECTORS[s][3][k % len(SECTORS[s][3])] for s, k in zip(sector_of, rng.integers(0, 3, n), strict=True)]
    )
    symbols = np.array([f"S{i:04d}" for i in range(n)])
    mcap_lo, mcap_hi = config.mcap_range  # default $300M .. $800B
    log_mcap0 = rng.uniform(np.log(mcap_lo), np.log(mcap_hi), n)
    size_rank = (log_mcap0 - log_mcap0.min()) / (np.ptp(log_mcap0) or 1.0)  # 0 smallest, 1 largest
    price0 = np.exp(rng.uniform(np.log(10), np.log(300), n))
    shares_out = np.exp(log_mcap0) / price0
    book_to_price = np.exp(rng.normal(np.log(0.45), 0.55, n))

    listed = np.zeros(n, dtype=int)
    delisted = np.full(n, t_days - 1)
    late = rng.choice(n, size=max(1, int(round(config.late_listing_fraction * n))), replace=False)
    listed[late] = rng.integers(60, int(0.6 * t_days), len(late))
    candidates = np.setdiff1d(np.arange(n), late)
    gone = rng.choice(candidates, size=max(1, int(np.ceil(config.delisting_fraction * n))), replace=False)
    delisted[gone] = rng.integers(int(0.5 * t_days), t_days - 20, len(gone))
    live = (day_idx[:, None] >= listed[None, :]) & (day_idx[:, None] <= delisted[None, :])

    # --- factors and regimes ---------------------------------------------------------------------
    stressed = np.zeros(t_days, dtype=bool)
    state = False
    switch = rng.random(t_days)
    for t in range(t_days):
        state = (switch[t] < 0.05) != state if state else switch[t] < 0.008
        stressed[t] = state
    mkt_vol = np.where(stressed, 0.022, 0.009)
    f_mkt = 0.0003 + mkt_vol * rng.standard_t(5, t_days) / np.sqrt(5 / 3)
    n_sec = len(SECTORS)
    f_sec = rng.standard_normal((t_days, n_sec)) * np.where(stressed, 0.012, 0.006)[:, None]
    f_size = rng.standard_normal(t_days) * 0.004
    f_value = rng.standard_normal(t_days) * 0.004 + np.where(stressed, -0.0008, 0.0001)

    beta_mkt = np.clip(rng.normal(1.0, 0.3, n), 0.3, 2.0)
    beta_sec = np.clip(rng.normal(1.0, 0.25, n), 0.3, 1.8)
    expo_size = -(log_mcap0 - log_mcap0.mean()) / log_mcap0.std()
    expo_value = (np.log(book_to_price) - np.log(book_to_price).mean()) / np.log(book_to_price).std()
    factor_ret = (
        beta_mkt[None, :] * f_mkt[:, None]
        + beta_sec[None, :] * f_sec[:, sector_of]
        + 0.5 * expo_size[None, :] * f_size[:, None]
        + 0.5 * expo_value[None, :] * f_value[:, None]
    )

    # idiosyncratic volatility: smaller names are more volatile; GARCH(1,1)-like clustering
    idio_sd = (0.34 - 0.16 * size_rank) / np.sqrt(252) * np.exp(rng.normal(0, 0.15, n))
    shocks = rng.standard_t(4, (t_days, n)) / np.sqrt(2.0)
    h = np.empty((t_days, n))
    h[0] = 1.0
    for t in range(1, t_days):
        h[t] = 0.03 + 0.07 * shocks[t - 1] ** 2 + 0.90 * h[t - 1]
    vol = idio_sd[None, :] * np.sqrt(h) * np.where(stressed, 1.4, 1.0)[:, None]
    log("universe, factors and volatility simulated")

    # --- exogenous observable inputs and their channel states ------------------------------------
    states: dict[str, np.ndarray] = {}

    # fundamentals and estimates, one row per (symbol, quarter)
    q_ends = pd.date_range(calendar[0] - pd.DateOffset(months=9), calendar[-1], freq="QE")
    n_q = len(q_ends)
    lag_days = rng.integers(20, 46, (n, n_q))
    report_dates = np.busday_offset(
        q_ends.values.astype("datetime64[D]")[None, :] + lag_days.astype("timedelta64[D]"), 0, roll="forward"
    )
    report_idx = _next_bday_index(calendar, report_dates.ravel()).reshape(n, n_q)
    report_idx[report_dates < calendar.values[0].astype("datetime64[D]")] = -1  # published before the sample

    earnings_yield = np.clip(rng.normal(0.055, 0.03, n), -0.03, 0.14)
    eps_base = earnings_yield * price0 / 4
    growth = rng.normal(0.012, 0.01, n)
    eps_trend = eps_base[:, None] * (1 + growth[:, None]) ** np.arange(n_q)[None, :]
    eps_trend = eps_trend + np.cumsum(rng.normal(0, 0.04, (n, n_q)), axis=1) * np.abs(eps_base)[:, None]
    # analysts disagree more in some quarters than others
    eps_std = (0.06 * np.abs(eps_base)[:, None] + 0.01) * np.exp(rng.normal(0, 0.25, eps_trend.shape))
    n_snap = 5
    snap_offsets = np.array([84, 63, 42, 21, 5])  # business days before the report
    jitter = rng.integers(0, 4, (n, n_q, 1))
    snap_idx = report_idx[:, :, None] - snap_offsets[None, None, :] - jitter
    revisions = rng.normal(0, 0.5, (n, n_q, n_snap)) * eps_std[:, :, None]
    consensus = eps_trend[:, :, None] + rng.normal(0, 0.3, (n, n_q, 1)) * eps_std[:, :, None]
    consensus = consensus + np.cumsum(revisions, axis=2) - revisions[:, :, :1]
    surprise = rng.standard_t(5, (n, n_q)) / np.sqrt(5 / 3) * eps_std
    eps_actual = consensus[:, :, -1] + surprise
    sue = np.clip((eps_actual - consensus[:, :, -1]) / eps_std, -4, 4)
    n_analysts = np.clip(np.round(3 + 25 * size_rank + rng.normal(0, 3, n)), 1, 40).astype(int)

    covered = _analyst_coverage(config, size_rank)  # only covered names have consensus, hence SUE
    sue_seen = sue if covered.all() else sue * covered[:, None]
    states["pead"] = _decay_filter(impulses_at(report_idx, sue_seen, t_days), config.decay("pead"))
    rev_z = np.diff(consensus, axis=2) / eps_std[:, :, None]
    if not covered.all():
        rev_z = rev_z * covered[:, None, None]
    states["revision"] = _decay_filter(
        impulses_at(snap_idx[:, :, 1:], rev_z, t_days), config.decay("revision")
    )

    # balance sheet and accruals
    mcap0 = np.exp(log_mcap0)
    book_equity = (book_to_price * mcap0)[:, None] * (1 + growth[:, None]) ** np.arange(n_q)[None, :]
    leverage = np.clip(rng.normal(0.55, 0.15, n), 0.1, 0.9)
    total_assets = book_equity / (1 - leverage[:, None])
    total_liabilities = total_assets - book_equity
    accrual_ratio = rng.normal(0, 0.02, n)[:, None] + rng.normal(0, 0.025, (n, n_q))
    net_income = eps_actual * shares_out[:, None]
    op_cash_flow = net_income - accrual_ratio * total_assets
    margin = np.clip(rng.normal(0.12, 0.05, n), 0.03, 0.35)
    revenue = (
        np.abs(eps_trend) * shares_out[:, None] / margin[:, None] * np.exp(rng.normal(0, 0.05, (n, n_q)))
    )
    acc_update = impulses_at(report_idx, np.ones_like(accrual_ratio), t_days) > 0
    acc_val = impulses_at(report_idx, -accrual_ratio, t_days)
    last = _ffill_index(acc_update)
    states["accruals"] = np.where(last >= 0, acc_val[np.maximum(last, 0), np.arange(n)[None, :]], 0.0)

    # options: call-put implied-volatility spread (persistent, observed with noise)
    cp_latent = _ar1(rng, (t_days, n), 0.95, 0.02)
    cp_spread = cp_latent + rng.normal(0, 0.006, (t_days, n))
    iv_level = vol * np.sqrt(252) * 1.1 + 0.03 + np.abs(rng.normal(0, 0.01, (t_days, n)))
    iv_call = np.maximum(iv_level + cp_spread / 2, 0.02)
    iv_put = np.maximum(iv_level - cp_spread / 2, 0.02)
    cp_z = (iv_call - iv_put) / 0.02
    states["iv_spread"] = _decay_filter(cp_z, 0.7) * 0.3

    # short interest: twice a month, published ~8 business days after settlement
    month_groups = pd.Series(calendar).groupby([calendar.year, calendar.month])
    settle = sorted(
        {int(np.searchsorted(calendar, g.iloc[0] + pd.Timedelta(days=14))) for _, g in month_groups}
        | {int(g.index[-1]) for _, g in month_groups}
    )
    settle_idx = np.array([s for s in settle if s < t_days])
    publish_idx = settle_idx + 8
    n_settle = len(settle_idx)
    si_mean = np.log(rng.uniform(0.01, 0.08, n))
    si_log = si_mean[None, :] + _ar1(rng, (n_settle, n), 0.85, 0.45)
    if config.short_interest_jump_rate > 0:
        si_log = si_log + _short_interest_jumps(config, (n_settle, n))
    si_ratio = np.clip(np.exp(si_log), 0.001, 0.4)
    pub_grid = np.zeros((t_days, n), dtype=bool)
    si_on_grid = np.zeros((t_days, n))
    ok = publish_idx < t_days
    pub_grid[publish_idx[ok]] = True
    si_on_grid[publish_idx[ok]] = np.log(si_ratio[ok])
    last = _ffill_index(pub_grid)
    si_known = np.where(last >= 0, si_on_grid[np.maximum(last, 0), np.arange(n)[None, :]], np.nan)
    si_z = _cs_zscore(np.nan_to_num(si_known, nan=np.nanmean(si_mean)), live & (last >= 0))
    cp_smooth = _decay_filter(cp_z, 0.7) * 0.3
    states["short_interest_iv"] = -_relu(si_z - 0.25) * _relu(0.5 - cp_smooth)

    # insider trades: scattered buys and sells plus occasional clusters of buys
    buys = (rng.random((t_days, n)) < config.insider_rate / 150).astype(np.int16)
    cluster_start = rng.random((t_days, n)) < config.insider_rate / 700
    for lag in (0, 2, 5):
        buys[lag:] += cluster_start[: t_days - lag]
    sells = (rng.random((t_days, n)) < config.insider_rate / 45).astype(np.int16)
    buys = buys * live.astype(np.int16)
    sells = sells * live.astype(np.int16)
    filing_lag_buy = rng.choice(np.array([1, 2, 3], dtype=np.int8), size=(t_days, n), p=[0.25, 0.6, 0.15])
    filing_lag_sell = rng.choice(np.array([1, 2, 3], dtype=np.int8), size=(t_days, n), p=[0.25, 0.6, 0.15])
    buy_filings = np.zeros((t_days, n))
    for lag in (1, 2, 3):
        sel = buys * (filing_lag_buy == lag)
        buy_filings[lag:] += sel[: t_days - lag]
    trailing = np.cumsum(buy_filings, axis=0)
    trailing = trailing - np.vstack([np.zeros((30, n)), trailing[:-30]])
    states["insider_cluster"] = _decay_filter(buy_filings * (trailing >= 2), config.decay("insider_cluster"))

    # ETF flows: per sector ETF, pressure then reversal on the members
    etf_names = [s[1] for s in SECTORS]
    flow_z = _ar1(rng, (t_days, n_sec + 1), 0.2, 1.0)
    if config.flow_tail_df > 0:
        flow_z = flow_z * _student_t_scale(config, flow_z.shape)
    fast = _decay_filter(flow_z, 0.5)
    slow = _decay_filter(flow_z, 0.97)
    flow_state = fast - 0.06 * slow
    states["etf_flow"] = flow_state[:, sector_of]
    etf_aum = np.exp(rng.uniform(np.log(5e9), np.log(6e10), n_sec + 1))
    etf_aum[-1] = 4e11
    net_flow_usd = flow_z * 0.002 * etf_aum[None, :]

    # order imbalance: observed daily in prices, continues for about a day
    oi_latent = _ar1(rng, (t_days, n), 0.0, 0.45)  # unpredictable itself: only the planted channel predicts
    order_imbalance = np.tanh(oi_latent)
    states["order_imbalance"] = _decay_filter(order_imbalance, config.decay("order_imbalance"))
    planted = config.channel_strength
    if "profitability" in planted:
        seen = np.where(report_idx >= listed[:, None], report_idx, -1)  # reports published while listed
        states["profitability"] = profitability_state(seen, net_income, book_equity, live)
    if "insider_net_90d" in planted:
        sell_filings = np.zeros((t_days, n))
        for lag in (1, 2, 3):
            sel = sells * (filing_lag_sell == lag)
            sell_filings[lag:] += sel[: t_days - lag]
        states["insider_net_90d"] = insider_net_state(buy_filings, sell_filings)
    if "short_interest_tail" in planted:
        states["short_interest_tail"] = short_interest_tail_state(si_z)
    if "flow_shock_reversal" in planted:
        states["flow_shock_reversal"] = flow_shock_state(
            flow_z[:, :n_sec], sector_of, config.decay("flow_shock_reversal")
        )
    log("exogenous channels built")

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
    del states, exo_mu, rev_state, mom_state, cum_resid, shocks, contribution

    # --- prices and microstructure -----------------------------------------------------------
    log_close = np.log(price0)[None, :] + np.cumsum(np.log1p(returns), axis=0)
    close = np.exp(log_close)
    prev_close = np.vstack([price0[None, :], close[:-1]])
    gap = 0.3 * np.log1p(returns) + rng.normal(0, 0.2, (t_days, n)) * vol
    open_ = prev_close * np.exp(gap)
    hi_ext = np.abs(rng.normal(0, 0.5, (t_days, n))) * vol
    lo_ext = np.abs(rng.normal(0, 0.5, (t_days, n))) * vol
    high = np.maximum(open_, close) * np.exp(hi_ext)
    low = np.minimum(open_, close) * np.exp(-lo_ext)
    del hi_ext, lo_ext, gap, prev_close
    vwap = np.clip(close * np.exp(rng.normal(0, 0.3, (t_days, n)) * vol), low, high)
    adv_shares = shares_out * np.exp(rng.normal(np.log(0.006), 0.3, n))
    surprise_vol = np.abs(returns - factor_ret) / np.maximum(vol, 1e-6)
    volume = np.round(
        adv_shares[None, :] * np.exp(rng.normal(0, 0.35, (t_days, n))) * (0.7 + 0.3 * surprise_vol)
    )
    sp_small, sp_large = config.spread_bps_range
    spread_bps = np.exp(np.log(sp_small) + (np.log(sp_large) - np.log(sp_small)) * size_rank)[None, :]
    spread_floor = min(1.0, sp_large / 2)
    spread_bps = np.clip(
        spread_bps * np.sqrt(h) ** 0.5 * np.exp(rng.normal(0, 0.15, (t_days, n))), spread_floor, 80.0
    )

    # --- ETFs: cap-weighted members, with a little tracking noise -------------------------------
    mcap = close * shares_out[None, :] * live
    prev_mcap = np.vstack([np.zeros((1, n)), mcap[:-1]])
    etf_ret = np.empty((t_days, n_sec + 1))
    for s in range(n_sec):
        m = sector_of == s
        w = prev_mcap[:, m]
        wsum = w.sum(axis=1)
        eq = np.where(live[:, m], returns[:, m], 0.0).sum(axis=1) / np.maximum(live[:, m].sum(axis=1), 1)
        etf_ret[:, s] = np.where(wsum > 0, (w * returns[:, m]).sum(axis=1) / np.where(wsum > 0, wsum, 1), eq)
    wall = prev_mcap.sum(axis=1)
    etf_ret[:, -1] = np.where(
        wall > 0, (prev_mcap * returns).sum(axis=1) / np.where(wall > 0, wall, 1), f_mkt
    )
    etf_ret = etf_ret + rng.normal(0, 0.0002, etf_ret.shape)
    etf_close = 100 * np.exp(np.cumsum(np.log1p(etf_ret), axis=0))
    etf_volume = np.round(
        etf_aum[None, :] / etf_close[0][None, :] * 0.01 * np.exp(rng.normal(0, 0.3, etf_close.shape))
    )
    log("prices, microstructure and ETFs built")

    # --- tables --------------------------------------------------------------------------------
    tables = _assemble_tables(
        calendar=calendar,
        symbols=symbols,
        live=live,
        listed=listed,
        delisted=delisted,
        sector_of=sector_of,
        industry_of=industry_of,
        etf_names=etf_names,
        prices={
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "vwap": vwap,
            "spread_bps": spread_bps,
            "order_imbalance": order_imbalance,
        },
        fundamentals={
            "q_ends": q_ends,
            "report_idx": report_idx,
            "report_dates": report_dates,
            "eps": eps_actual,
            "revenue": revenue,
            "net_income": net_income,
            "operating_cash_flow": op_cash_flow,
            "total_assets": total_assets,
            "total_liabilities": total_liabilities,
            "book_equity": book_equity,
            "shares_outstanding": np.broadcast_to(shares_out[:, None], (n, n_q)),
        },
        estimates={
            "snap_idx": snap_idx,
            "consensus": consensus,
            "eps_std": np.broadcast_to(eps_std[:, :, None], consensus.shape),
            "n_analysts": n_analysts,
            "covered": covered,
        },
        short_interest={
            "settle_idx": settle_idx,
            "publish_idx": publish_idx,
            "si_ratio": si_ratio,
            "shares_out": shares_out,
            "volume": volume,
        },
        options={"iv_call": iv_call, "iv_put": iv_put},
        insider={
            "buys": buys,
            "sells": sells,
            "lag_buy": filing_lag_buy,
            "lag_sell": filing_lag_sell,
            "close": close,
        },
        etf={"close": etf_close, "volume": etf_volume, "net_flow_usd": net_flow_usd},
        rng=rng,
        tables=config.tables,
        price_columns=config.price_columns,
    )

    regimes = pd.DataFrame(
        {"date": calendar.values.astype("datetime64[D]"), "stressed": stressed, "market_factor": f_mkt}
    )
    meta = {
        "config": asdict(config),
        "scenario": config.scenario,
        "channels": list(planted),
        "channel_decay": {c: config.decay(c) for c in planted},
        "channel_weights": {k: float(v) for k, v in weights_w.items() if k in planted},
        "dying_channel": config.dying_channel,
        "decay_date": str(calendar[decay_idx].date()) if config.dying_channel else None,
        "decoy_fields": list(DECOY_FIELDS),
        "market_etf": MARKET_ETF,
        "tables_written": sorted(tables),
        "er_definition": "er_5d: expected sum of returns over t+1..t+5 given information at the close of t",
    }
    if config.alpha_5d == 0:
        meta["zero_alpha"] = "er_1d, er_5d and every ch_ column are exactly 0: returns hold no planted alpha"
    if not covered.all():
        meta["analyst_coverage"] = float(covered.mean())
    return Market(tables=tables, oracle=oracle, regimes=regimes, meta=meta)


def write_market(config: MarketConfig, raw_dir: Path, log: Callable[[str], None] | None = None) -> str:
    """Generate the market and write raw/ and oracle/ (beside raw/) atomically."""
    market = generate_market(config, log=log)
    raw_dir = Path(raw_dir)
    write_market_files(market, raw_dir, seed=config.seed)
    prices = market.tables["prices"]
    first, last = (pd.Timestamp(prices["date"].min()).date(), pd.Timestamp(prices["date"].max()).date())
    return (
        f"scenario {config.scenario}: {config.n_symbols} symbols x {config.n_days} days ({first}..{last}), "
        f"{len(prices):,} price rows to {raw_dir} and the oracle to {raw_dir.parent / 'oracle'}"
    )
