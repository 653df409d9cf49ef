"""Pieces of the serving path that need no pipeline run."""

from __future__ import annotations

import pandas as pd

from ml.publish import map_by_rank


def test_live_scores_take_the_calibrated_values_of_the_same_rank():
    reference = pd.DataFrame({"symbol": list("abcd"), "expected_return": [-20.0, -5.0, 5.0, 30.0],
                              "lower": [-90.0, -70.0, -60.0, -40.0], "upper": [50.0, 60.0, 70.0, 90.0]})
    live = pd.Series([0.3, -1.2, 2.0, 0.1], index=list("wxyz"))
    out = map_by_rank(live, reference, ["expected_return", "lower", "upper"]).set_index("symbol")
    assert out.loc["x", "expected_return"] == -20.0 and out.loc["y", "expected_return"] == 30.0
    assert out.loc["z", "expected_return"] == -5.0 and out.loc["w", "expected_return"] == 5.0
    assert (out["lower"] <= out["upper"]).all()


def test_map_by_rank_handles_a_different_number_of_names():
    reference = pd.DataFrame({"expected_return": [float(i) for i in range(10)]})
    live = pd.Series(range(4), index=list("abcd"), dtype=float)
    out = map_by_rank(live, reference, ["expected_return"])
    assert out["expected_return"].is_monotonic_increasing and out["expected_return"].between(0, 9).all()


def test_serving_combines_todays_scores_exactly_like_the_batch_ensemble(monkeypatch):
    import numpy as np

    from ml import ensemble as ens
    from ml import registry
    from ml.publish import live_scores

    rng = np.random.default_rng(0)
    day = pd.Timestamp("2024-05-31")
    vectors = pd.DataFrame({"date": day, "symbol": [f"s{i}" for i in range(30)],
                            "f1": rng.standard_normal(30), "f2": rng.standard_normal(30)})

    class Column:
        def __init__(self, name):
            self.name = name

        def predict(self, X):
            return X[self.name].to_numpy() * 7.0 + 1.0  # scale and level must not matter

    monkeypatch.setattr(registry, "load_model", lambda _paths, model_id: Column(model_id))
    weights = {"f1": 0.8, "f2": 0.2}
    live = live_scores(None, vectors, weights, log=lambda _m: None)

    panel = ens.standardize(vectors.set_index(["date", "symbol"])[["f1", "f2"]])
    batch, _ = ens.combine(panel, pd.DataFrame([[0.8, 0.2]], index=[day], columns=["f1", "f2"]))
    np.testing.assert_allclose(live.to_numpy(), batch.to_numpy(), rtol=1e-12)
    assert live.corr(vectors.set_index("symbol")["f1"]) > live.corr(vectors.set_index("symbol")["f2"])


def test_serving_weights_are_the_batch_ensembles_over_models_usable_today(tmp_path):
    import duckdb

    from ml.paths import DataPaths
    from ml.publish import serving_weights

    paths = DataPaths(tmp_path)
    day = pd.Timestamp("2024-05-31")
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("create schema ml")
        con.execute("create table ml.model_status_daily as select * from (values "
                    "(date '2024-05-01', 'a', 2.0), (date '2024-05-01', 'b', 1.0), (date '2024-05-01', 'c', 0.0)) "
                    "t(date, model_id, multiplier)")
    # before the ensemble stage has run: the lifecycle multipliers
    assert serving_weights(paths, day, "stacked", log=lambda _m: None) == {"a": 2.0, "b": 1.0}
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("create table ml.ensemble_weights as select * from (values "
                    "(date '2024-05-30', 'stacked', 'a', 0.5), (date '2024-05-30', 'stacked', 'c', 0.5), "
                    "(date '2024-05-31', 'stacked', 'a', 0.3), (date '2024-05-31', 'stacked', 'b', 0.1), "
                    "(date '2024-05-31', 'stacked', 'c', 0.6), (date '2024-06-03', 'stacked', 'b', 1.0), "
                    "(date '2024-05-31', 'equal', 'a', 0.5)) t(date, method, model_id, weight)")
    # the latest batch day <= today, the configured method, models retired today left out
    assert serving_weights(paths, day, "stacked", log=lambda _m: None) == {"a": 0.3, "b": 0.1}
