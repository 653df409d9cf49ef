"""Publish today's signals and positions from the *online* feature store: the serving path.

The batch stages (`ml.evaluation.run_ensemble_stage`, `ml.policy_stage.run_policy_stage`) write the whole
out-of-sample history from the offline frames. This stage re-scores the latest day the way production
would: latest feature vectors from Feast's online store, every model usable today (point-in-time
lifecycle status) loaded from the registry after its sha256 check, scores standardized per model and
combined with the batch ensemble's latest weights (`ml.ensemble_weights`: the configured method, e.g.
the stacked meta-model, promotions applied), mapped onto expected returns, intervals and prob_up by rank
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

from ml.data.freshness import check_freshness, stale_allowed
from ml.paths import DataPaths
from ml.tables import transaction

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


def batch_ensemble_weights(paths: DataPaths, day: pd.Timestamp, method: str) -> dict[str, float]:
    """{model_id: weight} of the batch ensemble `method` on its latest date <= `day`
    (`ml.ensemble_weights`, written by the ensemble_calibrate stage); empty when there is none."""
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        try:
            rows = con.execute(
                "select model_id, weight from ml.ensemble_weights where method = ? and date = "
                "(select max(date) from ml.ensemble_weights where method = ? and date <= ?) and weight > 0",
                [method, method, day.date()],
            ).fetchall()
        except duckdb.CatalogException:
            rows = []
    return {str(m): float(w) for m, w in rows}


def serving_weights(paths: DataPaths, day: pd.Timestamp, method: str, log: Log = print) -> dict[str, float]:
    """The weights today's scores are combined with: the batch ensemble's latest weights (the stacked
    meta-model's, with promotions applied) over the models the lifecycle allows today; the lifecycle
    multipliers alone when the batch ensemble has not run. Models that use a quarantined feature
    column (`quality.quarantine`) are left out."""
    from ml.data import quarantine

    usable = usable_models(paths, day)
    for model_id in quarantine.exclude_models(paths, usable, log=log):  # they need a quarantined column
        usable.pop(model_id)
    batch = {m: w for m, w in batch_ensemble_weights(paths, day, method).items() if m in usable}
    if batch:
        log(f"[publish] {method} ensemble weights of the latest batch day over {len(batch)} models")
        return batch
    log("[publish] no batch ensemble weights: combining with the lifecycle multipliers")
    return usable


def live_scores(paths: DataPaths, vectors: pd.DataFrame, weights: dict[str, float], log: Log = print,
                standardize: dict | None = None) -> pd.Series:
    """Today's ensemble score (index: symbol): each model's prediction standardized per date the way
    the batch ensemble does it, then combined with `weights` (`ml.ensemble.combine`)."""
    from ml import ensemble as ens
    from ml import registry
    from ml.models.categories import attach_categories, load_categories

    std = standardize or {}
    clip, method = float(std.get("clip", 3.0)), std.get("method", "zscore")
    # sector / industry for the families that take them (`needs_categories`), as in training
    X = attach_categories(vectors.set_index(["date", "symbol"]), load_categories(paths))
    scores = {}
    for model_id in sorted(weights):
        model = registry.load_model(paths, model_id)  # refuses an artifact whose sha256 changed
        if getattr(getattr(model, "estimator_", None), "needs_history", False):  # sequence families: + trailing dates
            from ml.models.sequence import history_scores

            scores[model_id] = history_scores(paths, model, X)
            continue
        scores[model_id] = np.asarray(model.predict(X), dtype="float64")
    panel = pd.DataFrame(scores, index=X.index)
    panel = panel.loc[:, panel.std() > 0]
    if panel.empty:
        raise ValueError("no usable model could score today's cross-section")
    panel = ens.standardize(panel, clip=clip, method=method)
    day = panel.index.get_level_values("date").unique()
    w = pd.DataFrame([[weights[m] for m in panel.columns]], index=day, columns=panel.columns)
    score, _ = ens.combine(panel, w, clip=clip)
    log(f"[publish] scored {len(X)} names with {panel.shape[1]} models (total weight {w.to_numpy().sum():g})")
    return pd.Series(score.to_numpy(), index=X.index.get_level_values("symbol"), name="score")


def map_by_rank(score: pd.Series, reference: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Give the i-th ranked live score the i-th ranked calibrated values of the reference day."""
    ref = reference.sort_values("expected_return").reset_index(drop=True)
    q = (score.rank(method="first") - 0.5) / len(score)
    pos = np.clip(np.round(q.to_numpy() * len(ref) - 0.5).astype(int), 0, len(ref) - 1)
    out = ref.loc[pos, columns].reset_index(drop=True)
    out.insert(0, "symbol", score.index.to_numpy())
    return out


def run_publish_stage(paths: DataPaths, log: Log = print) -> dict[str, Any]:
    from ml import evaluation, feature_store, policy_stage
    from ml import policy as pol

    started = time.perf_counter()
    prices = pd.read_parquet(paths.raw_table("prices"))
    prices["date"] = pd.to_datetime(prices["date"])
    today = prices["date"].max()
    freshness = check_freshness(paths, today.date())
    if freshness.stale and not stale_allowed():
        log(f"[publish] {freshness.message()}: nothing new published (pass --allow-stale to publish anyway); "
            "backtests and history are unaffected")
        return {"published_date": None, "published_signals": 0, "published_trades": 0,
                "published_vs_batch_correlation": None, "published_models": 0,
                "data_freshness": freshness.to_dict()}
    if freshness.stale:
        log(f"[publish] {freshness.message()}: publishing anyway (--allow-stale)")
    symbols = sorted(prices.loc[prices["date"] == today, "symbol"].astype(str))
    vectors = feature_store.online_vectors(paths, symbols)
    vectors = vectors[pd.to_datetime(vectors["date"]) == today].assign(date=today)
    if vectors.empty:
        raise ValueError(f"the online store has no vectors for {today.date()}: materialize first")
    from ml import ensemble as ens

    ecfg = ens.load_config()
    models = serving_weights(paths, today, ecfg["method"], log=log)
    score = live_scores(paths, vectors, models, log=log, standardize=ecfg.get("standardize"))

    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        history = con.execute("select * from ml.signals").df()
        old_positions = con.execute("select * from ml.positions").df()
    history["date"] = pd.to_datetime(history["date"])
    reference = history[history["date"] == history["date"].max()]
    # prob_up is monotone in the same score as expected_return, so it maps by rank too
    columns = [c for c in ("expected_return", "lower", "upper", "uncertainty", "prob_up", "track_record_scale")
               if c in history.columns]
    live = map_by_rank(score, reference, columns)
    live.insert(0, "date", today)
    live["ensemble_version"] = "live:" + str(reference["ensemble_version"].iloc[0])
    signals = pd.concat([history[history["date"] < today], live[history.columns]], ignore_index=True)

    market = evaluation.load_market(paths)  # the market_panel mart, as the batch policy stage reads it
    policy = pol.policy_from_config(pol.load_config())
    run = policy_stage.run_policy("live", policy, signals, market)
    positions = run.result.positions_frame(market)
    positions["date"] = pd.to_datetime(positions["date"])
    today_positions = positions[positions["date"] == today]

    old_positions["date"] = pd.to_datetime(old_positions["date"])
    with duckdb.connect(str(paths.warehouse)) as con:
        con.register("live_signals", live[history.columns])
        con.register("live_positions", today_positions[old_positions.columns])
        with transaction(con):
            con.execute("delete from ml.signals where date = ?", [today.date()])
            con.execute("insert into ml.signals select * from live_signals")
            con.execute("delete from ml.positions where date = ?", [today.date()])
            con.execute("insert into ml.positions select * from live_positions")
    trades = int((today_positions["trade"].abs() > 0).sum())
    agreement = float(np.corrcoef(
        live.set_index("symbol")["expected_return"],
        reference.set_index("symbol")["expected_return"].reindex(live["symbol"]).fillna(0.0),
    )[0, 1]) if reference["date"].max() == today else None
    log(f"[publish] {today.date()}: {len(live)} signals, {trades} trades; live vs batch expected-return "
        f"correlation {agreement if agreement is None else round(agreement, 3)}; "
        f"{time.perf_counter() - started:.1f}s")
    return {"published_date": str(today.date()), "published_signals": len(live), "published_trades": trades,
            "published_vs_batch_correlation": agreement, "published_models": len(models),
            "data_freshness": freshness.to_dict()}
