"""A small market with a planted, known signal, for the ensemble / calibration / policy / backtest tests.

Returns follow r[t+1, i] = edge * s[t, i] + beta_i * market[t+1] + sector[t+1] + noise, where the
state s (AR(1) per name, unit variance) is known at the close of t. Stand-in "models" score each date
with s[t] plus noise of different sizes (better and worse models), one pure-noise model and one
that is wrong (-s): scores at t use nothing after t, like the zoo's out-of-sample predictions.
Two names delist early and one lists late; spreads and ADV vary by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class ToyMarket:
    prices: pd.DataFrame
    securities: pd.DataFrame
    predictions: pd.DataFrame
    state: pd.DataFrame  # date, symbol, s (the true signal known at t)


MODEL_NOISE = {"good": 1.0, "fair": 2.5, "weak": 5.0}


def toy_market(n_symbols: int = 40, n_days: int = 360, seed: int = 0, edge: float = 0.002,
               vol: float = 0.015) -> ToyMarket:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days)
    symbols = [f"T{i:03d}" for i in range(n_symbols)]
    sector = np.arange(n_symbols) % 4
    beta = rng.uniform(0.6, 1.4, n_symbols)
    s = np.zeros((n_days, n_symbols))
    s[0] = rng.standard_normal(n_symbols)
    for t in range(1, n_days):
        s[t] = 0.9 * s[t - 1] + np.sqrt(1 - 0.81) * rng.standard_normal(n_symbols)
    mkt = rng.normal(0.0003, 0.01, n_days)
    sec_f = rng.normal(0, 0.005, (n_days, 4))
    r = beta * mkt[:, None] + sec_f[:, sector] + rng.standard_normal((n_days, n_symbols)) * vol
    r[1:] += edge * s[:-1]
    close = 50.0 * np.cumprod(1 + r, axis=0)
    live = np.ones((n_days, n_symbols), bool)
    live[int(0.6 * n_days):, 1] = False  # delists
    live[int(0.8 * n_days):, 2] = False  # delists
    live[: int(0.3 * n_days), 3] = False  # lists late
    spread = np.linspace(2.0, 30.0, n_symbols)
    adv_shares = np.geomspace(2e6, 2e4, n_symbols)
    tt, ii = np.nonzero(live)
    prices = pd.DataFrame({
        "date": dates[tt].date, "symbol": np.array(symbols)[ii], "open": close[tt, ii], "high": close[tt, ii],
        "low": close[tt, ii], "close": close[tt, ii],
        "volume": np.round(adv_shares[ii] * np.exp(rng.normal(0, 0.2, len(tt)))),
        "spread_bps": spread[ii] * np.exp(rng.normal(0, 0.1, len(tt))),
    })
    securities = pd.DataFrame({
        "symbol": symbols, "name": symbols, "sector": [f"Sector{k}" for k in sector],
        "industry": [f"Industry{k}" for k in sector], "etf": [f"E{k}" for k in sector],
        "listed_date": [dates[0].date()] * n_symbols, "delisted_date": [None] * n_symbols,
    })
    state = pd.DataFrame({"date": dates[tt], "symbol": np.array(symbols)[ii], "s": s[tt, ii]})
    first = 60  # models start scoring after a warm-up, like the zoo's out-of-sample history
    keep = tt >= first
    frames = []
    for k, (name, noise) in enumerate(MODEL_NOISE.items()):
        score = s[tt, ii] + noise * np.random.default_rng(seed + 10 + k).standard_normal(len(tt))
        frames.append(pd.DataFrame({"date": dates[tt][keep], "symbol": np.array(symbols)[ii][keep],
                                    "model_id": f"{name}-toy", "score": score[keep]}))
    frames.append(pd.DataFrame({"date": dates[tt][keep], "symbol": np.array(symbols)[ii][keep],
                                "model_id": "noise-toy", "score": rng.standard_normal(keep.sum())}))
    wrong = -s[tt, ii] + 2.0 * rng.standard_normal(len(tt))
    frames.append(pd.DataFrame({"date": dates[tt][keep], "symbol": np.array(symbols)[ii][keep],
                                "model_id": "wrong-toy", "score": wrong[keep]}))
    return ToyMarket(prices=prices, securities=securities, predictions=pd.concat(frames, ignore_index=True),
                     state=state)
