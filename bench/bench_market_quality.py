"""Quality figures of the synthetic market: oracle rank IC, price-only baseline, channel shares.

Usage: python bench/bench_market_quality.py [--seeds 7 1 2 3 4]
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from ml.baselines import price_only_score
from ml.market import CHANNEL_STRENGTH, MarketConfig, generate_market
from ml.metrics import daily_ic, forward_returns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 1, 2, 3, 4])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        m = generate_market(MarketConfig(seed=seed))
        prices = m.tables["prices"].assign(symbol=lambda f: f["symbol"].astype(str))
        oracle = m.oracle.assign(symbol=lambda f: f["symbol"].astype(str))
        panel = forward_returns(prices, (5,)).merge(oracle, on=["date", "symbol"])
        oracle_ic = daily_ic(panel, "er_5d", "fwd_5d").mean()
        baseline = price_only_score(prices).merge(panel, on=["date", "symbol"])
        price_ic = daily_ic(baseline, "score", "fwd_5d").mean()
        total = oracle.groupby("date")["er_5d"].var().mean()
        shares = {c: oracle.groupby("date")[f"ch_{c}"].var().mean() / total for c in CHANNEL_STRENGTH}
        alive = oracle[oracle["date"] < pd.Timestamp(m.meta["decay_date"])]
        alive_total = alive.groupby("date")["er_5d"].var().mean()
        alive_shares = {c: alive.groupby("date")[f"ch_{c}"].var().mean() / alive_total for c in CHANNEL_STRENGTH}
        dying = m.meta["dying_channel"]
        row = {
            "seed": seed,
            "oracle_rank_ic_5d": round(float(oracle_ic), 4),
            "price_only_rank_ic_5d": round(float(price_ic), 4),
            "price_only_share_of_oracle": round(float(price_ic / oracle_ic), 3),
            "max_channel_variance_share": round(float(max(shares.values())), 3),
            "channel_shares": {k: round(float(v), 3) for k, v in shares.items()},
            "max_channel_share_before_decay": round(float(max(alive_shares.values())), 3),
            "dying_channel_share_before_decay": round(float(alive_shares[dying]), 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
