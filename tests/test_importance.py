"""Feature importance over time (ml/importance.py): one definition for every family, measured at each
walk-forward refit on data known by then, stored in `ml.feature_importance`, shown by the app.

On a toy market where only feature `a` drives the label, `a` is the most important feature at every
refit of a linear and of a tree family; scrambling everything dated from a refit on leaves that refit's
importances (and every earlier one) unchanged; two runs give the same numbers; the registration writes
one row per (model, refit, feature), also through the Prefect tasks; the app page reads the table and
says "not available yet" without it.
"""

from __future__ import annotations

import pickle
import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.importance import (
    COLUMNS,
    METHOD,
    ImportanceSettings,
    importance_table,
    linear_coefficients,
    permutation_importance,
    refit_share,
    sample_window,
    within_date_permutations,
)
from ml.models.base import ZooEstimator
from ml.paths import DataPaths
from ml.training import ConfigError, build_view_frames, load_config, prepare_view, train_spec, train_zoo

FEATURES = ["price_momentum__a", "price_momentum__b", "price_momentum__c"]
CHECKSUMS = {"price_momentum": "aaa", "labels": "lll"}


def toy_frames(n_symbols: int = 30, n_days: int = 300, seed: int = 0) -> dict[str, pd.DataFrame]:
    """One view (a: the only signal, b and c: noise, persistent like real features) plus labels."""
    rng = np.random.default_rng(seed)
    T, N = n_days, n_symbols

    def ar(phi: float) -> np.ndarray:
        x = np.zeros((T, N))
        x[0] = rng.standard_normal(N)
        for t in range(1, T):
            x[t] = phi * x[t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal(N)
        return x

    a, b, c = ar(0.9), ar(0.9), ar(0.5)
    dates = pd.bdate_range("2021-01-01", periods=T)
    frame = pd.DataFrame({"symbol": np.tile([f"S{j:02d}" for j in range(N)], T), "date": np.repeat(dates, N),
                          "a": a.ravel(), "b": b.ravel(), "c": c.ravel()})
    labels = frame[["symbol", "date"]].copy()
    for h in (1, 5, 21):
        fwd = 0.01 * a + 0.02 * rng.standard_normal((T, N)) * np.sqrt(h)
        fwd[T - h:] = np.nan  # the last h dates have no label yet
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            labels[f"fwd_ret_sn_{h}d"] = (fwd - np.nanmean(fwd, axis=1, keepdims=True)).ravel()
    return {"price_momentum": frame, "labels": labels}


def toy_config(**importance):
    return load_config({
        "views": ["price_momentum"],
        "cv": {"min_train_days": 120, "cadence": "M", "tune_every": 4, "embargo": 2},
        "importance": {"interval": None, "max_dates": 30, "dates_per_year": 360, **importance},  # 30 a refit
        "families": {"lightgbm": {"cadence": "Q", "params": {"n_estimators": 40, "min_child_samples": 50},
                                  "grid": {"num_leaves": [4]}, "max_train_rows": 6000}},
    })


def prepared(frames, cfg):
    return prepare_view(build_view_frames(frames, cfg)["price_momentum"], "price_momentum", cfg)


@pytest.fixture(scope="module")
def toy():
    frames = toy_frames()
    cfg = toy_config()
    prep = prepared(frames, cfg)
    return frames, cfg, {f: train_spec(prep, f, cfg) for f in ("ridge", "lightgbm")}


# ============================================================================================ definition
@pytest.mark.parametrize("family", ["ridge", "lightgbm"])
def test_the_only_predictive_feature_is_the_most_important_at_every_refit(toy, family):
    _, _, specs = toy
    imp = specs[family].importance
    assert list(imp.columns) == COLUMNS and set(imp["method"]) == {METHOD}
    assert len(imp) == len(specs[family].folds) * len(FEATURES)  # interval None: every refit, every feature
    wide = imp.pivot(index="refit_date", columns="feature", values="importance")
    assert list(wide.columns) == sorted(FEATURES)
    assert (wide.idxmax(axis=1) == "price_momentum__a").all(), wide
    assert (wide["price_momentum__a"] > 0.05).all()  # in rank IC units
    assert (wide[["price_momentum__b", "price_momentum__c"]].abs() < 0.5 * wide[["price_momentum__a"]].to_numpy()).all().all()
    assert (imp["baseline_ic"] > 0).all()


def test_measured_only_on_the_training_window_tail_known_at_the_refit(toy):
    _, _, specs = toy
    for spec in specs.values():
        imp = spec.importance.drop_duplicates("fold").set_index("fold")
        folds = spec.folds.set_index("fold").loc[imp.index]
        assert (imp["window_end"] == folds["train_end"]).all()
        assert (imp["window_start"] >= folds["train_start"]).all()
        assert (imp["window_end"] < imp["refit_date"]).all()
        assert (imp["refit_date"] == folds["test_start"]).all()


def test_tampering_with_everything_from_a_refit_on_leaves_its_importances_unchanged(toy):
    frames, cfg, specs = toy
    before = specs["lightgbm"].importance
    cut = sorted(before["refit_date"].unique())[-2]  # a refit with one more after it
    tampered = {}
    rng = np.random.default_rng(99)
    for name, frame in frames.items():
        frame = frame.copy()
        later = frame["date"] >= cut
        for col in frame.columns.drop(["symbol", "date"]):
            frame.loc[later, col] = rng.permutation(frame.loc[later, col].to_numpy()) * 3.0
        tampered[name] = frame
    after = train_spec(prepared(tampered, cfg), "lightgbm", cfg).importance.drop(columns="model_id")
    before = before.drop(columns="model_id")  # the id hashes the data's last labeled date, which moved
    known = before["refit_date"] <= cut
    pd.testing.assert_frame_equal(after[known.to_numpy()].reset_index(drop=True), before[known].reset_index(drop=True))
    # the tampering reached the later refits: the test can fail
    assert not np.allclose(after.loc[~known.to_numpy(), "importance"], before.loc[~known, "importance"])


def test_deterministic_given_the_seed(toy):
    frames, cfg, specs = toy
    again = train_spec(prepared(frames, cfg), "ridge", cfg).importance
    pd.testing.assert_frame_equal(again, specs["ridge"].importance)
    other = train_spec(prepared(frames, load_config({**cfg, "seed": 7})), "ridge", cfg | {"seed": 7}).importance
    assert not np.allclose(other["importance"], again["importance"])  # the shuffles follow the seed


def test_any_estimator_with_predict_no_per_family_code():
    """A family the module never heard of, relying on |c| only (no linear link): c is found, a and b are 0."""

    class AbsC(ZooEstimator):
        def fit(self, X, y):
            return self

        def predict(self, X):
            return np.abs(X["price_momentum__c"].to_numpy())

    n_dates, n_names = 12, 40
    rng = np.random.default_rng(1)
    index = pd.MultiIndex.from_product([pd.bdate_range("2022-01-03", periods=n_dates), range(n_names)],
                                       names=["date", "symbol"])
    X = pd.DataFrame(rng.standard_normal((len(index), 3)), index=index, columns=FEATURES)
    target = np.abs(X["price_momentum__c"].to_numpy()) + 0.1 * rng.standard_normal(len(index))
    imp, base = permutation_importance(AbsC(), X, target, FEATURES, seed=0)
    assert base > 0.9 and imp["price_momentum__c"] > 0.8
    assert imp["price_momentum__a"] == 0.0 and imp["price_momentum__b"] == 0.0


def test_shuffles_stay_within_each_date():
    codes = np.repeat(np.arange(5), [3, 7, 1, 4, 6])
    perms = within_date_permutations(codes, 4, np.random.default_rng(0))
    assert (codes[perms] == codes[:, None]).all()
    assert all(sorted(perms[:, j]) == list(range(len(codes))) for j in range(4))


def test_the_sample_is_capped_by_rows_and_by_predicted_rows():
    bounds = np.arange(0, 301 * 100, 100)  # 300 dates of 100 names
    s = ImportanceSettings(max_dates=42, max_rows=2000, max_predict_rows=100_000, min_dates=10)
    assert sample_window(bounds, 0, 299, 3, s) == (280, 299)  # 2,000 rows
    assert sample_window(bounds, 0, 299, 199, s) == (290, 299)  # 100,000 / 200 = 500 rows -> min_dates
    assert sample_window(bounds, 295, 299, 3, s) == (295, 299)  # never more than the window
    with pytest.raises(ConfigError):
        load_config({"importance": {"interval": "fortnightly"}})
    with pytest.raises(ConfigError):
        load_config({"importance": {"every": 2}})


def test_every_refit_is_measured_on_yearly_budgets_split_by_cadence():
    s = ImportanceSettings()  # the defaults: every refit; 42 dates and 200,000 predicted rows a year
    assert s.interval is None
    assert refit_share(s, "Q").max_dates == 10 and refit_share(s, "Q").max_predict_rows == 50_000
    assert refit_share(s, "M").max_dates == 5  # 42 / 12 = 3, but never fewer than min_dates
    assert refit_share(s, "2Q").max_dates == 21 and refit_share(s, "2Q").max_predict_rows == 100_000  # half-years
    assert refit_share(s, "Y").max_dates == 42 and refit_share(s, "Y").max_predict_rows == 200_000
    assert refit_share(ImportanceSettings(interval="Y"), "M").max_dates == 42  # one measured refit a year
    assert refit_share(ImportanceSettings(dates_per_year=400), "Q").max_dates == 42  # never above max_dates
    bounds = np.arange(0, 301 * 100, 100)  # 300 dates of 100 names
    assert sample_window(bounds, 0, 299, 3, refit_share(s, "Q")) == (290, 299)  # 10 dates
    # a wide view: 50,000 / 200 = 250 rows a quarterly refit -> the floor of min_dates
    assert sample_window(bounds, 0, 299, 199, refit_share(s, "Q")) == (295, 299)


@pytest.mark.parametrize("family", ["ridge", "screened_ridge", "bayes_ridge", "fama_macbeth", "lasso", "regime_ridge"])
def test_a_linear_family_shifts_scores_and_gets_the_importances_of_a_predict_per_feature(family):
    frames = toy_frames(n_symbols=25, n_days=200, seed=4)
    cfg = toy_config()
    prep = prepared(frames, cfg)
    from ml.training import family_settings
    from ml.zoo import make_model

    model = make_model(family, **family_settings(cfg, family)["params"])
    rows = prep.rows(0, 150)
    X = prep.design(rows, type(model).needs_state)
    model.fit(X, pd.Series(prep.y[rows], index=X.index))
    coef = linear_coefficients(model, X)
    assert coef is not None
    # exactly linear in the features at fixed other columns: moving them moves the score by coef . dx
    rng = np.random.default_rng(1)
    moved = X.copy()
    moved[prep.features] = rng.standard_normal((len(X), len(prep.features)))
    change = (moved.to_numpy() - X.to_numpy()) * coef
    assert np.allclose(model.predict(moved) - model.predict(X), change.sum(axis=1), atol=1e-10)

    tail = prep.rows(120, 150)
    Xt = prep.design(tail, type(model).needs_state)
    fast = permutation_importance(model, Xt, prep.y[tail], prep.features, seed=[0, 1])

    class Opaque(ZooEstimator):  # the same predictions behind a predict call per shuffled copy
        def predict(self, X):
            return model.predict(X)

    slow = permutation_importance(Opaque(), Xt, prep.y[tail], prep.features, seed=[0, 1])
    pd.testing.assert_series_equal(fast[0], slow[0], rtol=1e-9, atol=1e-12)
    assert fast[1] == pytest.approx(slow[1], abs=1e-12)


def test_a_model_that_is_not_linear_in_its_features_predicts_every_shuffled_copy():
    from ml.zoo import make_model

    X = pd.DataFrame({"a": [0.0, 1.0]})
    for family in ("lightgbm", "mlp", "extra_trees"):  # no linear_coefficients: a predict per feature
        assert linear_coefficients(make_model(family), X) is None
    assert linear_coefficients(object(), X) is None

    from ml.models.base import _MomentsLinear

    class Bent(_MomentsLinear):  # overrides predict without declaring it linear: treated as not linear
        def predict(self, X):
            return np.tanh(super().predict(X))

    bent = Bent()
    bent.feature_names_in_, bent.coef_, bent.intercept_ = np.array(["a"], dtype=object), np.ones(1), 0.0
    assert linear_coefficients(bent, X) is None


def test_the_interval_rule_measures_the_first_refit_of_each_year():
    frames = toy_frames(n_days=560, seed=2)
    cfg = toy_config(interval="Y")
    spec = train_spec(prepared(frames, cfg), "ridge", cfg)
    refits = pd.to_datetime(spec.folds["test_start"])
    measured = pd.to_datetime(pd.Series(spec.importance["refit_date"].unique()))
    assert list(measured) == list(refits.groupby(refits.dt.year).min())
    assert (spec.folds["importance_s"] > 0).sum() == len(measured)
    off = train_spec(prepared(frames, toy_config(enabled=False)), "ridge", toy_config(enabled=False))
    assert off.importance.empty and (off.folds["importance_s"] == 0).all()


# ============================================================================================ registry
def test_registration_writes_one_row_per_model_refit_and_feature(tmp_path, monkeypatch):
    from ml import warehouse
    from ml.pipeline import register_zoo_result

    frames = toy_frames(n_symbols=20, n_days=260, seed=3)
    paths = DataPaths(tmp_path)
    paths.features.mkdir(parents=True)
    for name, frame in frames.items():
        frame.to_parquet(paths.features / f"{name}.parquet")
    cfg = toy_config()
    zoo = train_zoo(frames, cfg, log=None, families=["ridge", "lightgbm"])
    monkeypatch.setattr(warehouse, "mart_checksums", lambda _paths, lineage=False: CHECKSUMS)
    register_zoo_result(paths, zoo, None, cfg, log=lambda _m: None)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        table = con.execute("select * from ml.feature_importance").df()
        n_metrics = con.execute("select count(*) from ml.model_metrics").fetchone()[0]
    assert list(table.columns) == COLUMNS and n_metrics == 2
    assert not table.duplicated(["model_id", "refit_date", "feature"]).any()
    for spec in zoo.specs:
        rows = table[table["model_id"] == spec.model_id]
        assert len(rows) == len(spec.folds) * len(FEATURES)
        assert set(rows["family"]) == {spec.family} and set(rows["view"]) == {"price_momentum"}
    # the Prefect path: specs come back from the task results (pickled), then register_task registers them
    from flows import pipeline as flows_pipeline

    specs = [pickle.loads(pickle.dumps(s)) for s in zoo.specs]
    labels_file = paths.features / "labels.parquet"
    cfg_file = tmp_path / "zoo.yaml"
    cfg_file.write_text("views: [price_momentum]\ncv: {min_train_days: 120}\n")
    monkeypatch.setenv("AURORA_ZOO_CONFIG", str(cfg_file))
    paths.warehouse.unlink()
    flows_pipeline.register_task.fn(str(paths.root), specs, str(labels_file))
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        again = con.execute("select * from ml.feature_importance").df()
    pd.testing.assert_frame_equal(again, table)
    # an older pickled result (before the field existed) reads as no importances, not an error
    old = pickle.loads(pickle.dumps(zoo.specs[0]))
    del old.__dict__["importance"]
    assert importance_table([old]).empty and list(importance_table([old]).columns) == COLUMNS


# ============================================================================================ app
def _page(data_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from app import data as app_data
    from app.navigation import PAGES

    monkeypatch.setenv("AURORA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AURORA_APP_SNAPSHOT_DIR", str(data_dir / "snapshots"))
    app_data.clear_caches()
    file = next(f for f, title, _, _ in PAGES if title == "Feature importance")
    at = AppTest.from_file(str(__import__("pathlib").Path(app_data.__file__).parent / "main.py"), default_timeout=30)
    at.switch_page(file)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_app_page_shows_a_model_over_its_refits_and_the_view_average(tmp_path, monkeypatch, toy):
    _, _, specs = toy
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    table = importance_table(specs.values())
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("create schema ml")
        con.register("incoming", table)
        con.execute("create table ml.feature_importance as select * from incoming")
    at = _page(data_dir, monkeypatch)
    assert [t.value for t in at.title] == ["Feature importance"] and not at.info
    assert [s.value for s in at.subheader] == ["One model across its refits", "Per view: the average over its models"]
    latest, per_view = at.dataframe[0].value, at.dataframe[1].value
    assert latest["feature"].iloc[0] == "price_momentum__a" and len(latest) == 3
    assert per_view["feature"].iloc[0] == "price_momentum__a"
    charts = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert len(charts) == 2 and "\"line\"" in charts[0] and "\"rect\"" in charts[1]


def test_app_page_without_the_table_says_not_available(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:  # an older warehouse: no importance table
        con.execute("create schema ml")
        con.execute("create table ml.model_metrics (model_id varchar, rank_ic double)")
    at = _page(data_dir, monkeypatch)
    assert [i.value for i in at.info] and all("not available yet" in i.value for i in at.info)
