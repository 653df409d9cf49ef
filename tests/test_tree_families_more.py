"""The random forest and CatBoost families, and the category columns (sector, industry) CatBoost takes
natively: fit / predict, determinism, native save / load, categories used when present and a plain
numeric fit when absent, the same columns in training and serving, no look-ahead, no label leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lookahead import assert_past_unchanged, poison_after
from scipy.stats import spearmanr
from test_training import small_config, synthetic_frames

from ml import registry
from ml.metrics import daily_ic, ic_summary
from ml.models.artifacts import _load_estimator
from ml.models.catboost_model import CatBoostModel
from ml.models.categories import (
    CATEGORIES_KEY,
    MISSING,
    attach_categories,
    categories_from_securities,
    category_codes,
    label_code,
)
from ml.models.forest import RandomForestModel
from ml.paths import DataPaths
from ml.publish import live_scores
from ml.training import build_view_frames, prepare_view, train_spec
from ml.zoo import FAMILIES, CrossSectionalModel, make_model

N_SYMBOLS = 40
SECTORS = [f"sec{k}" for k in range(4)]


def _securities(n: int = N_SYMBOLS) -> pd.DataFrame:
    return pd.DataFrame({"symbol": [f"S{j:03d}" for j in range(n)],
                         "sector": [SECTORS[j % 4] for j in range(n)],
                         "industry": [f"ind{j % 8}" for j in range(n)], "etf": "XLK"})


def _panel(n_dates: int = 40, seed: int = 0, sector_effect: float = 1.0) -> tuple[pd.DataFrame, pd.Series]:
    """Normalized-looking features (f0 carries signal) plus sector labels whose effect on y is
    `sector_effect` x (sector number - 1.5); the labels are not a function of any numeric feature."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2021-01-01", periods=n_dates), [f"S{j:03d}" for j in range(N_SYMBOLS)]],
        names=["date", "symbol"])
    X = pd.DataFrame(rng.standard_normal((len(index), 4)), index=index, columns=[f"v__f{j}" for j in range(4)])
    X = attach_categories(X, categories_from_securities(_securities()))
    sector = X["__cat__sector"].str[-1].astype(int).to_numpy()
    y = 0.5 * X["v__f0"].to_numpy() + sector_effect * (sector - 1.5) + rng.standard_normal(len(index))
    return X, pd.Series(y, index=index)


def _frames_with_categories():
    frames = synthetic_frames(n_symbols=N_SYMBOLS, n_days=300)
    return {**frames, CATEGORIES_KEY: categories_from_securities(_securities())}


def _config(**over):
    fast = {"catboost": {"cadence": "Q", "tune_every": 8, "params": {"n_estimators": 30}, "max_train_rows": 3000},
            "random_forest": {"cadence": "Q", "tune_every": 8, "params": {"n_estimators": 10},
                              "max_train_rows": 3000}}
    return small_config(families=fast, **over)


# ------------------------------------------------------------------------------ the estimators
def test_both_families_are_registered_with_sklearn_params():
    assert FAMILIES["random_forest"] is RandomForestModel and FAMILIES["catboost"] is CatBoostModel
    assert CatBoostModel.needs_categories and not RandomForestModel.needs_categories
    rf = make_model("random_forest", min_samples_leaf=50, max_columns=2)
    assert rf.get_params()["max_columns"] == 2
    assert rf._make(10).max_features == 2  # 0.3 x 10 = 3 candidate columns per split, capped at 2
    assert rf._make(10).bootstrap and rf._make(10).n_jobs == 1
    cb = make_model("catboost", depth=3)
    assert cb._make(100).get_params()["rsm"] == pytest.approx(0.32, abs=1e-6)  # 32 of 100 columns
    assert cb._make(100).get_params()["thread_count"] == 1


@pytest.mark.parametrize("cls", [RandomForestModel, CatBoostModel])
def test_fit_predict_is_deterministic_and_native_save_load_predicts_the_same(cls, tmp_path):
    X, y = _panel()
    params = {"n_estimators": 20, "random_state": 3}
    if cls is RandomForestModel:
        params["min_samples_leaf"] = 20
    y_missing = y.copy()
    y_missing.iloc[::13] = np.nan  # missing targets are ignored
    model = cls(**params).fit(X, y_missing)
    pred = model.predict(X)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    assert np.corrcoef(pred, X["v__f0"])[0, 1] > 0.2
    np.testing.assert_array_equal(pred, cls(**params).fit(X, y_missing).predict(X))
    assert not np.array_equal(pred, cls(**{**params, "random_state": 4}).fit(X, y_missing).predict(X))
    name = model.save(tmp_path)
    assert name == cls.artifact_file
    loaded = cls.load(tmp_path / name)
    np.testing.assert_array_equal(loaded.predict(X), pred)
    if cls is CatBoostModel:  # the registry's path: parameters and features from the record
        assert cls.artifact_format == "catboost-cbm"
        again = _load_estimator(tmp_path / name, cls.artifact_format, "catboost", model.get_params(),
                                list(model.feature_names_in_))
        np.testing.assert_array_equal(again.predict(X), pred)
        assert again.category_columns_ == ["__cat__sector", "__cat__industry"]
        with pytest.raises(ValueError, match="differ"):
            cls.load_native(tmp_path / name, {}, ["v__f0"])


def test_catboost_uses_the_sector_when_present_and_fits_numeric_features_without_it():
    X, y = _panel(sector_effect=1.0)
    sector = X["__cat__sector"].str[-1].astype(int).to_numpy()
    with_cats = CatBoostModel(n_estimators=60, random_state=0).fit(X, y)
    assert with_cats.category_columns_ == ["__cat__sector", "__cat__industry"]
    importance = dict(zip(with_cats.model_.feature_names_, with_cats.model_.get_feature_importance(), strict=True))
    assert importance["__cat__sector"] + importance["__cat__industry"] > importance["v__f1"] * 5
    # the sector means are recovered: the score's per-sector average follows the planted effect
    by_sector = pd.Series(with_cats.predict(X)).groupby(sector).mean().to_numpy()
    assert np.all(np.diff(by_sector) > 0)
    numeric = X.drop(columns=["__cat__sector", "__cat__industry"])
    without = CatBoostModel(n_estimators=60, random_state=0).fit(numeric, y)
    assert without.category_columns_ == [] and list(without.feature_names_in_) == list(numeric.columns)
    flat = pd.Series(without.predict(numeric)).groupby(sector).mean().to_numpy()
    assert np.ptp(flat) < 0.25 * np.ptp(by_sector)  # no numeric feature carries the sector
    # a category column absent at predict time scores rows as unclassified; labels or codes agree
    assert np.isfinite(with_cats.predict(numeric)).all()
    coded = X.assign(**category_codes(X[["__cat__sector", "__cat__industry"]]))
    np.testing.assert_array_equal(with_cats.predict(coded), with_cats.predict(X))


def test_numeric_families_never_see_the_category_columns():
    X, y = _panel()
    coded = X.assign(**category_codes(X[["__cat__sector", "__cat__industry"]]))
    for family in ("ridge", "random_forest"):
        model = make_model(family).fit(coded, y)
        assert list(model.feature_names_in_) == ["v__f0", "v__f1", "v__f2", "v__f3"]


# ------------------------------------------------------------------------------ the category columns
def test_category_codes_are_stable_labels_and_missing_names_get_their_own_code():
    cats = categories_from_securities(_securities(3))
    frame = pd.DataFrame({"symbol": ["S002", "S000", "S999"], "date": pd.to_datetime(["2021-01-04"] * 3)})
    attached = attach_categories(frame, cats)
    assert attached["__cat__sector"].tolist() == ["sec2", "sec0", MISSING]
    codes = category_codes(attached[["__cat__sector"]])["__cat__sector"].to_numpy()
    assert codes.tolist() == [label_code("sec2"), label_code("sec0"), label_code(MISSING)]
    np.testing.assert_array_equal(category_codes(pd.DataFrame({"__cat__sector": codes}))["__cat__sector"], codes)
    assert categories_from_securities(_securities(3).assign(sector=None, industry=None)) is None
    assert attach_categories(frame, None) is frame


def test_a_dated_classification_is_used_as_of_each_date_only():
    """A reclassification dated after t never reaches a row at t (a dated securities table)."""
    dated = pd.DataFrame({"symbol": ["S000", "S000", "S001"], "date": pd.to_datetime(["2020-01-01", "2021-06-01",
                                                                                      "2021-03-01"]),
                          "sector": ["old", "new", "only"], "industry": ["i", "j", "k"]})
    rows = pd.DataFrame({"symbol": ["S000", "S000", "S000", "S001", "S001"],
                         "date": pd.to_datetime(["2021-05-31", "2021-06-01", "2022-01-03", "2021-02-26",
                                                 "2021-03-01"])})
    out = attach_categories(rows, categories_from_securities(dated))
    assert out["__cat__sector"].tolist() == ["old", "new", "new", MISSING, "only"]


# ------------------------------------------------------------------------------ training and serving
def test_categories_reach_catboost_in_training_and_serving_and_markets_without_them_still_train(tmp_path):
    frames = _frames_with_categories()
    cfg = _config(views=["price_momentum"])
    built = build_view_frames(frames, cfg)["price_momentum"]
    assert built["__cat__sector"].notna().all()
    prep = prepare_view(built, "price_momentum", cfg)
    assert not any(c.startswith("__cat__") for c in prep.features)  # never a numeric feature
    assert list(prep.categories.columns) == ["__cat__sector", "__cat__industry"]
    assert list(prep.design(prep.rows(0, 3), with_state=False).columns) == prep.features  # other families
    res = train_spec(prep, "catboost", cfg)
    assert len(res.predictions) and np.isfinite(res.predictions["score"]).all()
    served = res.final_model
    assert served.category_columns_ == ["__cat__sector", "__cat__industry"]
    assert served.layout()["category_columns"] == served.category_columns_
    # serving one raw day: the same columns as the trainer's design, from the raw rows' labels
    day = built["date"].max()
    raw = built[built["date"] == day].set_index(["date", "symbol"])
    rows = prep.rows(len(prep.calendar) - 1, len(prep.calendar) - 1)
    trainer_design = prep.design(rows, with_state=False, with_categories=True)
    np.testing.assert_array_equal(served.predict(raw), served.estimator_.predict(trainer_design))
    with pytest.raises(ValueError, match="category"):
        served.predict(raw.drop(columns=["__cat__sector"]))
    # the registry (native .cbm) and publishing (categories attached from the data directory's securities)
    paths = DataPaths(tmp_path)
    paths.raw.mkdir(parents=True)
    _securities().to_parquet(paths.raw_table("securities"))
    record = registry.register_spec(paths, res, {"price_momentum": "x", "labels": "y"}, data_hash="d" * 64)
    assert record.artifact_format == "catboost-cbm" and record.layout["category_columns"] == served.category_columns_
    loaded = registry.load_model(paths, res.model_id)
    np.testing.assert_array_equal(loaded.predict(raw), served.predict(raw))
    vectors = raw.drop(columns=["__cat__sector", "__cat__industry"]).reset_index()  # online vectors: features only
    live = live_scores(paths, vectors, {res.model_id: 1.0}, log=lambda _m: None)
    assert spearmanr(live.to_numpy(), served.predict(raw)).statistic > 0.99
    # no securities classification: the family fits on the numeric features alone
    plain = {k: v for k, v in frames.items() if k != CATEGORIES_KEY}
    prep_plain = prepare_view(build_view_frames(plain, cfg)["price_momentum"], "price_momentum", cfg)
    assert prep_plain.categories is None
    res_plain = train_spec(prep_plain, "catboost", cfg)
    assert res_plain.final_model.category_columns_ == [] and np.isfinite(res_plain.predictions["score"]).all()


def test_cross_sectional_model_fit_takes_the_categories_from_raw_rows():
    X, y = _panel()
    raw = X.assign(v__f0=X["v__f0"] * 10 + 3)
    model = CrossSectionalModel(CatBoostModel(n_estimators=20)).fit(raw, y)
    assert model.features_ == ["v__f0", "v__f1", "v__f2", "v__f3"]
    assert model.category_columns_ == ["__cat__sector", "__cat__industry"]
    last = raw.index.get_level_values("date") == raw.index.get_level_values("date").max()
    np.testing.assert_array_equal(model.predict(raw[last]), model.predict(raw)[last])


@pytest.mark.parametrize("family", ["catboost", "random_forest"])
def test_no_look_ahead_future_changes_leave_past_predictions_alone(family):
    """As tests/test_training.py: scramble every label after a fold's training window and every
    feature after its test period; no prediction up to that test period's end may move."""
    frames = _frames_with_categories()
    cfg = _config(views=["price_momentum"])
    base = train_spec(prepare_view(build_view_frames(frames, cfg)["price_momentum"], "price_momentum", cfg),
                      family, cfg, fit_final=False)
    fold = base.folds.iloc[1]
    poisoned = poison_after(frames, fold, keep=(CATEGORIES_KEY,))
    other = train_spec(prepare_view(build_view_frames(poisoned, cfg)["price_momentum"], "price_momentum", cfg),
                       family, cfg, fit_final=False)
    assert_past_unchanged(base, other, fold)


def test_catboost_leakage_placebo_shuffled_labels_give_no_skill_even_with_categories():
    """Labels shuffled within each date: the target statistics CatBoost builds for sector and industry
    must not turn into out-of-sample skill (OOS rank IC within 3 standard errors of zero)."""
    frames = _frames_with_categories()
    rng = np.random.default_rng(1)
    labels = frames["labels"].copy()
    cols = [c for c in labels.columns if c.startswith("fwd_ret")]
    for _, idx in labels.groupby("date").groups.items():
        labels.loc[idx, cols] = labels.loc[idx, cols].to_numpy()[rng.permutation(len(idx))]
    cfg = _config(views=["all"])
    prep = prepare_view(build_view_frames({**frames, "labels": labels}, cfg)["all"], "all", cfg)
    res = train_spec(prep, "catboost", cfg, fit_final=False)
    frame = res.predictions.merge(labels.assign(date=pd.to_datetime(labels["date"]))[["date", "symbol",
                                                                                      "fwd_ret_sn_5d"]],
                                  on=["date", "symbol"])
    summary = ic_summary(daily_ic(frame, "score", "fwd_ret_sn_5d"))
    assert abs(summary["mean"]) < 3 * summary["std"] / np.sqrt(summary["n"]), summary


def test_catboosts_feature_importance_is_measured_with_its_categories(monkeypatch):
    """The importance of a refit predicts from the same design as the refit: CatBoost with sector and
    industry, never as if every name were unclassified."""
    seen = []
    original = CatBoostModel.predict

    def spy(self, X):
        seen.append(list(X.columns))
        return original(self, X)

    monkeypatch.setattr(CatBoostModel, "predict", spy)
    cfg = _config(views=["price_momentum"])
    cfg["importance"] = {"enabled": True, "interval": None}
    prep = prepare_view(build_view_frames(_frames_with_categories(), cfg)["price_momentum"], "price_momentum", cfg)
    res = train_spec(prep, "catboost", cfg, fit_final=False)
    assert res.importance is not None and len(res.importance)
    assert seen and all("__cat__sector" in cols and "__cat__industry" in cols for cols in seen)
