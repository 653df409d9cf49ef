"""Calibrate the model lifecycle (ml/lifecycle.py) on the synthetic market: how fast models built on the
dying channel are retired, and how often healthy models are retired anyway.

Per seed, a market is generated and six scores are read straight off the raw data (point in time: a
score of date t uses data up to the close of t) and scored out of sample from the second year:
  dying:   oi (today's order imbalance), oi5 (its 5-day mean)
  healthy: rev (1-day sector-relative reversal), rev5 (5-day), mom (12-1 momentum),
           ctrl (the oracle's expected return without the dying channel, plus noise: a good model
           whose edge never dies - evaluation only)
against sector-neutral forward returns (minus the sector mean), then `run_lifecycle` decides walk-forward.
Reported: retirement lag of the dying models vs the oracle's decay date, and healthy retirements
before the decay, within the 92 days after it, and ever, each with the rule that fired.

Usage: python bench/bench_lifecycle.py [--seeds 8] [--symbols 130] [--days 2016] [--oi-strength S]
       [--alpha A] [--config '{"retirement": {"z": 3.09}}'] [--noise]
(defaults: the default market's order-imbalance strength and alpha_5d)
(`--noise` adds the detector's false-alarm share on pure-noise IC series.)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from ml import lifecycle as lc
from ml.market import CHANNEL_STRENGTH, MarketConfig, generate_market

DYING = ("oi", "oi5")
HEALTHY = ("rev", "rev5", "mom", "ctrl")


def scores_and_labels(n: int, days: int, seed: int, oi_strength: float, alpha: float):
    strength = {**CHANNEL_STRENGTH, "order_imbalance": oi_strength}
    market = generate_market(MarketConfig(n_symbols=n, n_days=days, seed=seed, channel_strength=strength,
                                          alpha_5d=alpha))
    p = market.tables["prices"].merge(market.tables["securities"][["symbol", "sector"]], on="symbol")
    p = p.assign(date=pd.to_datetime(p["date"]), symbol=p["symbol"].astype(str)).sort_values(["symbol", "date"])
    p["lc"] = np.log(p["close"])
    g = p.groupby("symbol")["lc"]
    for h in (1, 5):
        fwd = np.expm1(g.shift(-h) - p["lc"])
        p[f"fwd_ret_sn_{h}d"] = fwd - fwd.groupby([p["date"], p["sector"]]).transform("mean")
    for name, lag in (("rev", 1), ("rev5", 5)):
        r = g.diff(lag)
        p[name] = -(r - r.groupby([p["date"], p["sector"]]).transform("mean"))
    p["mom"] = g.shift(21) - g.shift(252)
    p["oi"] = p["order_imbalance"]
    p["oi5"] = p.groupby("symbol")["order_imbalance"].transform(lambda s: s.rolling(5).mean())
    o = market.oracle.assign(date=lambda f: pd.to_datetime(f["date"]), symbol=lambda f: f["symbol"].astype(str))
    ctrl = o["er_5d"] - o["ch_order_imbalance"]
    o["ctrl"] = ctrl + 2 * ctrl.std() * np.random.default_rng(seed).standard_normal(len(o))
    p = p.merge(o[["date", "symbol", "ctrl"]], on=["date", "symbol"], how="left")
    start = np.sort(p["date"].unique())[260]
    oos = p[p["date"] >= start]
    preds = pd.concat([oos[["date", "symbol"]].assign(model_id=m, score=oos[m]) for m in (*DYING, *HEALTHY)])
    labels = p[["date", "symbol", "fwd_ret_sn_1d", "fwd_ret_sn_5d"]]
    return preds.dropna(), labels, pd.Timestamp(market.meta["decay_date"])


def noise_false_alarms(arl0_overrides: dict, n_models: int = 400, n_days: int = 1500) -> dict[str, float]:
    rng = np.random.default_rng(11)
    cal = pd.bdate_range("2016-01-01", periods=n_days)
    out = {}
    for noise in ("normal", "t3"):
        x = rng.standard_normal((n_models, n_days)) if noise == "normal" else \
            rng.standard_t(3, (n_models, n_days)) / np.sqrt(3)
        ic = 0.06 + 0.1 * x
        frame = pd.concat([pd.DataFrame({"model_id": f"h{i}", "date": cal, "ic": ic[i]}) for i in range(n_models)])
        cfg = lc.load_config({**arl0_overrides, "changepoint": {**arl0_overrides.get("changepoint", {}),
                                                                "label": None}})["changepoint"]
        cfg["known_lag"] = 2
        table = lc.changepoint_table(frame, cal, cfg)
        out[noise] = table.loc[table["alarm"], "model_id"].nunique() / n_models
    out["years"] = (n_days - 252) / 252
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--symbols", type=int, default=130)
    parser.add_argument("--days", type=int, default=MarketConfig.n_days)
    parser.add_argument("--oi-strength", type=float, default=CHANNEL_STRENGTH["order_imbalance"])
    parser.add_argument("--alpha", type=float, default=MarketConfig.alpha_5d)
    parser.add_argument("--config", default="{}")
    parser.add_argument("--noise", action="store_true")
    args = parser.parse_args()
    over = json.loads(args.config)
    # raw scores, no ensemble: promotion by stand-alone ICIR (contribution needs the score panel)
    over["promotion"] = {"method": "icir", **over.get("promotion", {})}
    cfg = lc.load_config(over)
    lags: list[int] = []
    early = never = 0
    healthy = {"before": 0, "window": 0, "ever": 0, "changepoint": 0}
    started = time.perf_counter()
    for seed in range(1, args.seeds + 1):
        preds, labels, decay = scores_and_labels(args.symbols, args.days, seed, args.oi_strength, args.alpha)
        cal = pd.DatetimeIndex(np.sort(labels["date"].unique()))
        daily = lc.daily_ic(preds, labels, cfg["label"], cfg["min_names"])
        det = lc.daily_ic(preds, labels, cfg["changepoint"]["label"], cfg["min_names"]) \
            if cfg["changepoint"]["label"] != cfg["label"] else None
        res = lc.run_lifecycle(daily, cal, cfg, detector_daily=det)
        first_gen = res.events[(res.events["event"] == "retired") & (res.events["generation"] == 1)]
        ret = {r["model_id"]: r for _, r in first_gen.iterrows()}
        row = {"seed": seed, "decay": str(decay.date())}
        for m in (*DYING, *HEALTHY):
            if m not in ret:
                row[m] = "-"
                never += m in DYING
                continue
            lag = (pd.Timestamp(ret[m]["date"]) - decay).days
            row[m] = f"{lag:+d}d {ret[m]['rule']}"
            if m in DYING:
                (lags.append(lag) if lag > 0 else None)
                early += lag <= 0
            else:
                healthy["ever"] += 1
                healthy["before"] += lag < 0
                healthy["window"] += 0 <= lag <= 92
                healthy["changepoint"] += ret[m]["rule"] == "changepoint"
        print(json.dumps(row), flush=True)
    n_dying, n_healthy = len(DYING) * args.seeds, len(HEALTHY) * args.seeds
    summary = {
        "market": {"symbols": args.symbols, "days": args.days, "oi_strength": args.oi_strength, "alpha_5d": args.alpha},
        "config": over,
        "dying_lag_days": sorted(lags),
        "dying_within_92d": f"{sum(0 < x <= 92 for x in lags)}/{n_dying}",
        "dying_retired_before_decay": early, "dying_never_retired": never,
        "healthy_retired": {k: f"{v}/{n_healthy}" for k, v in healthy.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.noise:
        summary["noise_false_alarm_share"] = noise_false_alarms(over)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
