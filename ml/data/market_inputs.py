"""The synthetic market's observable inputs besides prices, and the channel states built from them.

The third step of `ml.market.generate_market`: reports and estimates, options, short interest, insider
trades, ETF flows and order imbalance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data.channels import (
    _ar1,
    _cs_zscore,
    _decay_filter,
    _ffill_index,
    _next_bday_index,
    _relu,
    flow_shock_state,
    impulses_at,
    insider_net_state,
    profitability_state,
    short_interest_tail_state,
)
from ml.data.market_config import SECTORS, MarketConfig
from ml.data.market_universe import Factors, Universe
from ml.data.scenario_knobs import _analyst_coverage, _short_interest_jumps, _student_t_scale


@dataclass
class ObservedInputs:
    """What the market publishes besides prices, as matrices, and each channel's state (days x symbols)."""

    states: dict[str, np.ndarray]
    # fundamentals and estimates: one row per (symbol, quarter); snapshots per (symbol, quarter, snapshot)
    q_ends: pd.DatetimeIndex
    n_q: int
    report_idx: np.ndarray
    report_dates: np.ndarray
    eps_actual: np.ndarray
    revenue: np.ndarray
    net_income: np.ndarray
    op_cash_flow: np.ndarray
    total_assets: np.ndarray
    total_liabilities: np.ndarray
    book_equity: np.ndarray
    snap_idx: np.ndarray
    consensus: np.ndarray
    eps_std: np.ndarray
    n_analysts: np.ndarray
    covered: np.ndarray
    # short interest: per settlement date
    settle_idx: np.ndarray
    publish_idx: np.ndarray
    si_ratio: np.ndarray
    # options, insider trades, ETF flows and order imbalance: per (day, symbol) or (day, ETF)
    iv_call: np.ndarray
    iv_put: np.ndarray
    buys: np.ndarray
    sells: np.ndarray
    filing_lag_buy: np.ndarray
    filing_lag_sell: np.ndarray
    etf_names: list[str]
    etf_aum: np.ndarray
    net_flow_usd: np.ndarray
    order_imbalance: np.ndarray


def _simulate_inputs(
    config: MarketConfig,
    rng: np.random.Generator,
    calendar: pd.DatetimeIndex,
    universe: Universe,
    factors: Factors,
) -> ObservedInputs:
    """Simulate the exogenous observable inputs and turn them into the channels' states."""
    n, t_days = config.n_symbols, config.n_days
    sector_of, size_rank, log_mcap0 = universe.sector_of, universe.size_rank, universe.log_mcap0
    price0, shares_out, book_to_price = universe.price0, universe.shares_out, universe.book_to_price
    listed, live = universe.listed, universe.live
    n_sec, vol = factors.n_sec, factors.vol

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
    return ObservedInputs(
        states=states, q_ends=q_ends, n_q=n_q, report_idx=report_idx, report_dates=report_dates,
        eps_actual=eps_actual, revenue=revenue, net_income=net_income, op_cash_flow=op_cash_flow,
        total_assets=total_assets, total_liabilities=total_liabilities, book_equity=book_equity,
        snap_idx=snap_idx, consensus=consensus, eps_std=eps_std, n_analysts=n_analysts, covered=covered,
        settle_idx=settle_idx, publish_idx=publish_idx, si_ratio=si_ratio, iv_call=iv_call, iv_put=iv_put,
        buys=buys, sells=sells, filing_lag_buy=filing_lag_buy, filing_lag_sell=filing_lag_sell,
        etf_names=etf_names, etf_aum=etf_aum, net_flow_usd=net_flow_usd, order_imbalance=order_imbalance,
    )
