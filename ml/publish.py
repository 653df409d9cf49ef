"""Publish today's signals and positions from the *online* feature store: the serving path.

The batch stage (`ml.evaluation.run_backtest_stage`) writes the whole out-of-sample history from
the offline frames. This stage re-scores the latest day the way production would: latest feature
vectors from Feast's online store, every model usable today (point-in-time lifecycle status) loaded
from the registry after its sha256 check, scores z-scored per model and combined with the lifecycle
weight multipliers (promoted models count more), mapped onto expected returns and intervals by rank
through the calibrated distribution of the latest batch day, and run through the same cost-aware
policy on top of the batch history (yesterday's book). The rows for that day in `ml.signals` and
`ml.positions` are replaced in one transaction; everything else is left as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ml.paths import DataPaths

Log = Callable[[str], None]


def usable_models(paths: DataPaths, day: pd.Timestamp) -> dict[str, float]:
    """{model_id: weight multiplier} of the models active or promoted on `day`."""
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        try:
            rows = con.execute(
                "select model_id, multiplier from ml.model_status_daily "
                "where date = (select max(date) from ml.model_status_daily where date <= ?) and multiplier > 0",
                [day.date()],
            ).fetchall()
        except duckdb.CatalogException:
            rows = con.execute(
                "select model_id, 1.0 from ml.model_registry where status in ('active', 'promoted')"
            ).fetchall()
    return {str(m): float(w) for m, w in rows}


def live_scores(paths: DataPaths, vectors: pd.DataFrame, models: dict[str, float], log: Log = print) -> pd.Series:
    """Weighted mean of per-model z-scores on today's cross-section (index: symbol)."""
    from ml import registry

    X = vectors.set_index(["date", "symbol"])
    total, weight = np.zeros(len(X)), 0.0
    for model_id, multiplier in sorted(models.items()):
        model = registry.load_model(paths, model_id)  # refuses an artifact whose sha256 changed
        score = np.asarray(model.predict(X), dtype="float64")
        sd = np.nanstd(score)
        if not np.isfinite(sd) or sd == 0:
            continue
        total += multiplier * np.nan_to_num((score - np.nanmean(score)) / sd)
        weight += multiplier
    if weight == 0:
        raise ValueError("no usable model could score today's cross-section")
    log(f"[publish] scored {len(X)} names with {len(models)} models (total weight {weight:g})")
    return pd.Series(total / weight, index=X.index.get_level_values("symbol"), name="score")


def map_by_rank(score: pd.Series, reference: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Give the i-th ranked live score the i-th ranked calibrated values of the reference day."""
    ref = reference.sort_values("expected_return").reset_index(drop=True)
    q = (score.rank(method="first") - 0.5) / len(score)
    pos = np.clip(np.round(q.to_numpy() * len(ref) - 0.5).astype(int), 0, len(ref) - 1)
    out = ref.loc[pos, columns].reset_index(drop=True)
    out.insert(0, "symbol", score.index.to_numpy())
    return out


def run_publish_stage(paths: DataPaths, log: Log = print) -> dict[str, Any]:
    from ml import evaluation, feature_store
    from ml import policy as pol
    from ml.backtest import market_panel

    started = time.perf_counter()
    prices = pd.read_parquet(paths.raw_table("prices"))
    prices["date"] = pd.to_datetime(prices["date"])
    today = prices["date"].max()
    symbols = sorted(prices.loc[prices["date"] == today, "symbol"].astype(str))
    vectors = feature_store.online_vectors(paths, symbols)
    vectors = vectors[pd.to_datetime(vectors["date"]) == today].assign(date=today)
    if vectors.empty:
        raise ValueError(f"the online store has no vectors for {today.date()}: materialize first")
    models = usable_models(paths, today)
    score = live_scores(paths, vectors, models, log=log)

    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        history = con.execute("select * from ml.signals").df()
        old_positions = con.execute("select * from ml.positions").df()
    history["date"] = pd.to_datetime(history["date"])
    reference = history[history["date"] == history["date"].max()]
    columns = ["expected_return", "lower", "upper", "uncertainty"]
    live = map_by_rank(score, reference, columns)
    live.insert(0, "date", today)
    live["ensemble_version"] = "live:" + str(reference["ensemble_version"].iloc[0])
    signals = pd.concat([history[history["date"] < today], live[history.columns]], ignore_index=True)

    securities = pd.read_parquet(paths.raw_table("securities"))
    market = market_panel(prices, securities)
    policy = pol.policy_from_config(pol.load_config())
    run = evaluation.run_policy("live", policy, signals, market)
    positions = run.result.positions_frame(market)
    positions["date"] = pd.to_datetime(positions["date"])
    today_positions = positions[positions["date"] == today]

    old_positions["date"] = pd.to_datetime(old_positions["date"])
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("begin transaction")
        try:
            con.register("live_signals", live[history.columns])
            con.register("live_positions", today_positions[old_positions.columns])
            con.execute("delete from ml.signals where date = ?", [today.date()])
            con.execute("insert into ml.signals select * from live_signals")
            con.execute("delete from ml.positions where date = ?", [today.date()])
            con.execute("insert into ml.positions select * from live_positions")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    trades = int((today_positions["trade"].abs() > 0).sum())
    agreement = float(np.corrcoef(
        live.set_index("symbol")["expected_return"],
        reference.set_index("symbol")["expected_return"].reindex(live["symbol"]).fillna(0.0),
    )[0, 1]) if reference["date"].max() == today else None
    log(f"[publish] {today.date()}: {len(live)} signals, {trades} trades; live vs batch expected-return "
        f"correlation {agreement if agreement is None else round(agreement, 3)}; "
        f"{time.perf_counter() - started:.1f}s")
    return {"published_date": str(today.date()), "published_signals": len(live), "published_trades": trades,
            "published_vs_batch_correlation": agreement, "published_models": len(models)}
