"""Score stds recorded by the training stage for the configured interval method (issue 16):
`intervals.method` in the ensemble config decides what `train_spec` measures at each refit.

With `mc_dropout` every family with `predict_std` (residual_mlp) records one std per out-of-sample
prediction and the others none; with `bootstrap` the listed families (ridge) fit a bootstrap ensemble
per refit. The stds are >= 0, deterministic, and point in time: scrambling every feature and label
after a date leaves every std up to that date unchanged. Registration writes them to
`ml.prediction_std` (also through the Prefect task), and the ensemble stage's interval step then gives
intervals different from the conformal ones. The default (`conformal`) records nothing, costs nothing
and writes an empty table.
"""

from __future__ import annotations

import pickle
import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.models.uncertainty_scores import STD_COLUMN, StdSettings, std_table
from ml.paths import DataPaths
from ml.training import load_config, train_zoo

VIEW = "price_momentum"
CHECKSUMS = {VIEW: "aaa", "labels": "lll"}
N_SYMBOLS, N_DAYS = 20, 260
CUT = 170  # calendar position: everything after it is scrambled in the tamper test


def toy_frames(seed: int = 0, tamper_after: int | None = None) -> dict[str, pd.DataFrame]:
    """One view (a drives the label, b and c are noise) plus labels; `tamper_after`: every feature and
    label dated after that calendar position replaced by unrelated, larger numbers."""
    rng = np.random.default_rng(seed)
    T, N = N_DAYS, N_SYMBOLS
    a, b, c = (rng.standard_normal((T, N)) for _ in range(3))
    dates = pd.bdate_range("2021-01-01", periods=T)
    labels = {}
    for h in (1, 5, 21):
        fwd = 0.01 * a + 0.02 * np.sqrt(h) * rng.standard_normal((T, N))
        fwd[T - h:] = np.nan
        labels[f"fwd_ret_sn_{h}d"] = fwd
    if tamper_after is not None:
        junk = np.random.default_rng(99)
        for x in (a, b, c, *labels.values()):
            x[tamper_after + 1:] = 5.0 * junk.standard_normal((T - tamper_after - 1, N))
    keys = {"symbol": np.tile([f"S{j:02d}" for j in range(N)], T), "date": np.repeat(dates, N)}
    frame = pd.DataFrame({**keys, "a": a.ravel(), "b": b.ravel(), "c": c.ravel()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lab = pd.DataFrame({**keys, **{k: (v - np.nanmean(v, axis=1, keepdims=True)).ravel()
                                       for k, v in labels.items()}})
    return {VIEW: frame, "labels": lab}


def toy_config(intervals: dict | None = None) -> dict:
    over = {
        "views": [VIEW],
        "cv": {"min_train_days": 120, "cadence": "Q", "tune_every": 8, "embargo": 2},
        "importance": {"interval": None, "max_dates": 10},
        "families": {"residual_mlp": {"views": [VIEW], "max_train_rows": 2000, "grid": {"dropout": [0.3]},
                                      "params": {"width": 8, "n_blocks": 1, "max_epochs": 3, "batch_size": 256}}},
    }
    return load_config({**over, **({"intervals": intervals} if intervals is not None else {})})


MC = {"method": "mc_dropout", "mc_dropout": {"n_samples": 8}}
BOOT = {"method": "bootstrap", "bootstrap": {"families": ["ridge"], "n_boot": 5}}
FAMILIES = ["ridge", "residual_mlp"]


def run(intervals, tamper_after=None, families=FAMILIES):
    return train_zoo(toy_frames(tamper_after=tamper_after), toy_config(intervals), log=None, families=families)


@pytest.fixture(scope="module")
def mc():
    return run(MC), run(MC, tamper_after=CUT)


@pytest.fixture(scope="module")
def boot():
    return run(BOOT, families=["ridge"]), run(BOOT, tamper_after=CUT, families=["ridge"])


def _spec(zoo, family):
    return next(s for s in zoo.specs if s.family == family)


# ======================================================================================== settings
def test_settings_come_from_the_ensemble_config_and_name_the_capable_families(tmp_path, monkeypatch):
    cfg = tmp_path / "ensemble.yaml"
    cfg.write_text("intervals: {method: bootstrap, bootstrap: {families: [ridge, lasso], n_boot: 4}}\n")
    monkeypatch.setenv("AURORA_ENSEMBLE_CONFIG", str(cfg))
    settings = StdSettings.from_config(load_config({"views": [VIEW]}))
    assert (settings.method, settings.families, settings.n_boot) == ("bootstrap", ("ridge", "lasso"), 4)
    assert settings.applies("lasso") and not settings.applies("residual_mlp") and not settings.applies("gru")
    mc = StdSettings(method="mc_dropout")
    assert mc.applies("residual_mlp") and mc.applies("ft_transformer") and not mc.applies("ridge")
    assert not any(StdSettings().applies(f) for f in ("ridge", "residual_mlp"))
    assert StdSettings().token() == "conformal" != mc.token()
    with pytest.raises(ValueError, match="unknown families"):
        StdSettings.from_config({"intervals": {"method": "bootstrap", "bootstrap": {"families": ["nope"]}}})


# ======================================================================================== training
def test_mc_dropout_gives_one_std_per_prediction_of_the_nets_only(mc):
    zoo, _ = mc
    net, ridge = _spec(zoo, "residual_mlp"), _spec(zoo, "ridge")
    std = net.predictions[STD_COLUMN].to_numpy()
    assert len(std) == len(net.predictions) > 0 and np.isfinite(std).all() and (std >= 0).all()
    assert std.std() > 0  # the rows differ in how unsure the net is
    assert STD_COLUMN not in ridge.predictions.columns and (ridge.folds["std_s"] == 0).all()
    assert (net.folds["std_s"] > 0).all()
    table = std_table(zoo.predictions)
    assert len(table) == len(net.predictions) and set(table["model_id"]) == {net.model_id}
    assert not table.duplicated(["date", "symbol", "model_id"]).any()


def test_bootstrap_gives_a_std_for_the_listed_family(boot):
    zoo, _ = boot
    ridge = _spec(zoo, "ridge")
    std = ridge.predictions[STD_COLUMN].to_numpy()
    assert np.isfinite(std).all() and (std > 0).all() and (ridge.folds["std_s"] > 0).all()
    again = run(BOOT, families=["ridge"])  # deterministic given the seed
    np.testing.assert_array_equal(_spec(again, "ridge").predictions[STD_COLUMN].to_numpy(), std)


@pytest.mark.parametrize("which", ["mc", "boot"])
def test_scrambling_the_future_leaves_earlier_stds_unchanged(which, request):
    zoo, tampered = request.getfixturevalue(which)
    family = "residual_mlp" if which == "mc" else "ridge"
    a, b = _spec(zoo, family).predictions, _spec(tampered, family).predictions
    cut = pd.bdate_range("2021-01-01", periods=N_DAYS)[CUT]
    early = a["date"] <= cut
    assert early.sum() > 0 and (~early).sum() > 0
    np.testing.assert_allclose(b.loc[early, STD_COLUMN], a.loc[early, STD_COLUMN], rtol=1e-6, atol=1e-9)
    assert not np.allclose(b.loc[~early, STD_COLUMN], a.loc[~early, STD_COLUMN])  # the test can fail


def test_the_default_records_nothing():
    zoo = run(None, families=["ridge"])  # no `intervals` key: the repo's config/ensemble.yaml (conformal)
    assert StdSettings.from_config(toy_config()).method == "conformal"
    spec = _spec(zoo, "ridge")
    assert STD_COLUMN not in spec.predictions.columns and (spec.folds["std_s"] == 0).all()
    assert std_table(zoo.predictions).empty


# ======================================================================================== registration
def _register(tmp_path, monkeypatch, zoo):
    from ml import warehouse
    from ml.pipeline import register_zoo_result

    paths = DataPaths(tmp_path)
    paths.features.mkdir(parents=True, exist_ok=True)
    for name, frame in toy_frames().items():
        frame.to_parquet(paths.features / f"{name}.parquet")
    monkeypatch.setattr(warehouse, "mart_checksums", lambda _paths, lineage=False: CHECKSUMS)
    register_zoo_result(paths, zoo, None, toy_config(), log=lambda _m: None)
    return paths


def _table(paths):
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute("select * from ml.prediction_std order by model_id, date, symbol").df()


def test_registration_writes_the_table_and_the_ensemble_intervals_use_it(tmp_path, monkeypatch, mc):
    from flows import pipeline as flows_pipeline
    from ml import ensemble as ens
    from ml.backtest import market_panel
    from ml.evaluation import _score_std, ensemble_and_calibrate

    zoo, _ = mc
    net = _spec(zoo, "residual_mlp")
    paths = _register(tmp_path, monkeypatch, zoo)
    table = _table(paths)
    assert list(table.columns) == ["date", "symbol", "model_id", STD_COLUMN]
    assert len(table) == len(net.predictions) and set(table["model_id"]) == {net.model_id}
    assert (table[STD_COLUMN] >= 0).all()
    # the Prefect path: pickled task results, then register_task
    cfg_file = tmp_path / "zoo.yaml"
    cfg_file.write_text(f"views: [{VIEW}]\ncv: {{min_train_days: 120}}\n")
    monkeypatch.setenv("AURORA_ZOO_CONFIG", str(cfg_file))
    paths.warehouse.unlink()
    flows_pipeline.register_task.fn(str(paths.root), [pickle.loads(pickle.dumps(s)) for s in zoo.specs],
                                    str(paths.features / "labels.parquet"))
    pd.testing.assert_frame_equal(_table(paths), table)

    # the ensemble stage's step: mc_dropout intervals differ from the conformal ones
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2021-01-01", periods=N_DAYS)
    symbols = [f"S{j:02d}" for j in range(N_SYMBOLS)]
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal((N_DAYS, N_SYMBOLS)), axis=0))
    prices = pd.DataFrame({"date": np.repeat(dates, N_SYMBOLS), "symbol": np.tile(symbols, N_DAYS),
                           "close": close.ravel(), "volume": 1e6})
    market = market_panel(prices)
    lab = toy_frames()["labels"].set_index(["date", "symbol"])["fwd_ret_sn_5d"]
    panel = zoo.predictions.pivot_table(index=["date", "symbol"], columns="model_id", values="score")
    base = {"method": "equal", "calibration": {"min_train_days": 40}, "ic_weighted": {"min_periods": 20},
            "stacked": {"min_train_days": 20}, "walk_forward_choice": {"candidates": ["equal", "ic_weighted"]}}
    intervals = {}
    for method in ("conformal", "mc_dropout"):
        ecfg = ens.load_config({**base, "intervals": {"method": method}}, )
        score_std = _score_std(paths, ecfg)
        assert (score_std is None) == (method == "conformal")
        step = ensemble_and_calibrate(panel, lab, market, ecfg, log=lambda _m: None, score_std=score_std)
        intervals[method] = step.signals["equal"].set_index(["date", "symbol"])[["lower", "upper"]]
    conformal, dropout = intervals["conformal"], intervals["mc_dropout"]
    both = conformal.notna().all(axis=1) & dropout.notna().all(axis=1)
    assert both.sum() > 100
    width_c = (conformal["upper"] - conformal["lower"])[both]
    width_d = (dropout["upper"] - dropout["lower"])[both]
    assert (width_d > 0).all() and not np.allclose(width_c, width_d)


def test_the_default_writes_an_empty_table(tmp_path, monkeypatch):
    paths = _register(tmp_path, monkeypatch, run(None, families=["ridge"]))
    assert _table(paths).empty
    from ml.uncertainty import read_prediction_std

    assert read_prediction_std(paths) is None
