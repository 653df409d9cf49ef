"""Walk-forward training: out-of-sample only, no look-ahead, leakage placebo, zoo orchestration."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lookahead import assert_past_unchanged, poison_after

from ml.metrics import daily_ic, ic_summary
from ml.training import (
    ConfigError,
    build_view_frames,
    frames_from_wide,
    load_config,
    normalized_parts,
    prepare_view,
    train_spec,
    train_zoo,
)

HORIZONS = (1, 5, 21)


def synthetic_frames(n_symbols: int = 40, n_days: int = 360, seed: int = 0, strength: float = 0.25):
    """Raw view frames + labels from a toy market where persistent features drive returns.

    Two views (`price_momentum`: f0 signal, f1 noise, vol_21d; `alt_data`: g0 signal, g1 noise); the
    1-day expected return of t+1 is strength * 1% * (f0 + g0) at t; labels fwd_ret_sn_{h}d (and raw)
    are compounded forward returns minus the cross-sectional mean. Some names list late.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days)
    T, N = n_days, n_symbols

    def ar(phi):
        x = np.zeros((T, N))
        x[0] = rng.standard_normal(N)
        for t in range(1, T):
            x[t] = phi * x[t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal(N)
        return x

    f0, f1, g0, g1 = ar(0.9), ar(0.9), ar(0.95), ar(0.5)
    vol = np.abs(ar(0.98)) * 0.1 + 0.2
    mu = strength * 0.01 * (f0 + g0)
    ret = np.full((T, N), np.nan)
    ret[1:] = mu[:-1] + 0.02 * rng.standard_t(5, size=(T - 1, N))
    listed = np.ones((T, N), dtype=bool)
    for j in range(0, N, 7):
        listed[: int(rng.integers(10, T // 4)), j] = False
    logp = np.nancumsum(np.nan_to_num(ret), axis=0)
    labels = {}
    for h in HORIZONS:
        fwd = np.full((T, N), np.nan)
        fwd[: T - h] = np.expm1(logp[h:] - logp[: T - h])
        labels[f"fwd_ret_{h}d"] = fwd
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the last h dates have no label at all
            labels[f"fwd_ret_sn_{h}d"] = fwd - np.nanmean(fwd, axis=1, keepdims=True)

    def long(values: dict) -> pd.DataFrame:
        frame = pd.DataFrame({"symbol": np.tile([f"S{j:03d}" for j in range(N)], T),
                              "date": np.repeat(dates.date, N)})
        for name, arr in values.items():
            frame[name] = arr.reshape(-1)
        return frame[listed.reshape(-1)].reset_index(drop=True)

    pm = long({"f0": f0 * 3 + 1, "f1": f1, "vol_21d": vol})  # arbitrary scale
    pm.loc[pm.sample(frac=0.02, random_state=seed).index, "f0"] = np.nan
    alt = long({"g0": np.exp(g0), "g1": g1})  # monotone transform: rank-gauss undoes it
    return {"price_momentum": pm, "alt_data": alt, "labels": long(labels)}


def small_config(**over):
    cfg = {
        "views": ["price_momentum", "alt_data", "all"],
        "cv": {"min_train_days": 120, "tune_every": 4, "embargo": 2},
        "families": {
            "extra_trees": {"params": {"n_estimators": 15}, "max_train_rows": 3000},
            "lightgbm": {"params": {"n_estimators": 30}, "max_train_rows": 5000},
            "xgboost": {"params": {"n_estimators": 30}, "max_train_rows": 5000},
            "mlp": {"max_train_rows": 3000, "params": {"max_iter": 10}},
        },
    }
    for key, value in over.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return load_config(cfg)


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames()


@pytest.fixture(scope="module")
def prepared(frames):
    cfg = small_config()
    views = build_view_frames(frames, cfg)
    return cfg, {v: prepare_view(f, v, cfg) for v, f in views.items()}


def test_config_file_and_validation():
    cfg = load_config()  # config/zoo.yaml
    assert set(cfg["views"]) >= {"price_momentum", "all"}
    assert cfg["cv"]["horizon"] >= cfg["target"]["horizon"]
    assert len([f for f in cfg["families"] if cfg["families"][f].get("enabled", True)]) >= 10
    with pytest.raises(ConfigError):
        load_config({"families": {"nope": {}}})
    with pytest.raises(ConfigError):
        load_config({"cv": {"horizon": 2}, "target": {"horizon": 5}})
    with pytest.raises(ValueError):
        load_config({"families": {"ridge": {"params": {"bogus": 1}}}})
    with pytest.raises(ConfigError):
        load_config({"target": {"transform": "zscore"}})


def test_view_frames_prefix_features_and_build_all(prepared):
    _, preps = prepared
    assert preps["price_momentum"].features == ["price_momentum__f0", "price_momentum__f1",
                                                "price_momentum__vol_21d"]
    assert set(preps["all"].features) == set(preps["price_momentum"].features) | set(preps["alt_data"].features)
    assert preps["price_momentum"].state_columns == ["price_momentum__vol_21d"]


@pytest.mark.parametrize("family", ["ridge", "lightgbm"])
def test_predictions_are_out_of_sample_and_folds_purged(prepared, family):
    cfg, preps = prepared
    prep = preps["all"]
    res = train_spec(prep, family, cfg)
    cal = prep.calendar
    folds = res.folds
    first_test = np.datetime64(folds["test_start"].iloc[0])
    assert res.predictions["date"].min() == first_test
    assert (res.predictions["date"] >= first_test).all()
    assert len(res.predictions) == int((prep.X.index.get_level_values("date") >= first_test).sum())
    h, emb = cfg["cv"]["horizon"], cfg["cv"]["embargo"]
    for row in folds.itertuples():
        train_end = np.searchsorted(cal, np.datetime64(row.train_end))
        test_start = np.searchsorted(cal, np.datetime64(row.test_start))
        assert train_end + h < test_start - emb
    assert res.metrics["rank_ic"] > 0.05  # the toy signal is found
    assert res.final_model is not None
    assert res.train_end == pd.Timestamp(cal[prep.last_labeled_pos])
    # the final model serves raw rows of the last date (whose labels are unknown)
    wide = build_view_frames(synthetic_frames(), cfg)["all"]
    last = wide[pd.to_datetime(wide["date"]) == wide["date"].max()]
    raw = last.set_index(["date", "symbol"])[res.features]
    assert np.isfinite(res.final_model.predict(raw)).all()


@pytest.mark.parametrize("family", ["ridge", "fama_macbeth", "lightgbm"])
def test_no_look_ahead_future_changes_leave_past_predictions_alone(frames, family):
    """Pick a fold k. Scramble every label dated after its training window's last date and every
    feature dated after its test period: no prediction dated up to the end of fold k's test period
    may move (tuning, preprocessing and the purge included), and later ones must."""
    cfg = small_config(views=["price_momentum"])
    base = train_spec(prepare_view(build_view_frames(frames, cfg)["price_momentum"], "price_momentum", cfg),
                      family, cfg, fit_final=False)
    fold = base.folds.iloc[5]
    poisoned = poison_after(frames, fold)
    other = train_spec(prepare_view(build_view_frames(poisoned, cfg)["price_momentum"], "price_momentum", cfg),
                       family, cfg, fit_final=False)
    assert_past_unchanged(base, other, fold)


@pytest.mark.parametrize("family", ["ridge", "lightgbm"])
def test_leakage_placebo_shuffled_labels_give_no_skill(frames, family):
    """Labels shuffled within each date: the OOS rank IC must be within 3 standard errors of zero."""
    rng = np.random.default_rng(1)
    labels = frames["labels"].copy()
    cols = [c for c in labels.columns if c.startswith("fwd_ret")]
    for _, idx in labels.groupby("date").groups.items():
        perm = rng.permutation(len(idx))
        labels.loc[idx, cols] = labels.loc[idx, cols].to_numpy()[perm]
    shuffled = {**frames, "labels": labels}
    cfg = small_config(views=["all"])
    prep = prepare_view(build_view_frames(shuffled, cfg)["all"], "all", cfg)
    res = train_spec(prep, family, cfg, fit_final=False)
    frame = res.predictions.merge(
        labels.assign(date=pd.to_datetime(labels["date"]))[["date", "symbol", "fwd_ret_sn_5d"]],
        on=["date", "symbol"])
    ic = daily_ic(frame, "score", "fwd_ret_sn_5d")
    summary = ic_summary(ic)
    se = summary["std"] / np.sqrt(summary["n"])
    assert abs(summary["mean"]) < 3 * se, summary


def test_deterministic(prepared):
    cfg, preps = prepared
    for family in ("lightgbm", "elastic_net"):
        a = train_spec(preps["price_momentum"], family, cfg, fit_final=False)
        b = train_spec(preps["price_momentum"], family, cfg, fit_final=False)
        pd.testing.assert_frame_equal(a.predictions, b.predictions)


def test_target_transforms_and_rolling_window(frames):
    for transform in ("rank", "demean", "raw"):
        cfg = small_config(views=["price_momentum"], target={"transform": transform},
                           cv={"max_train_days": 150, "cadence": "Q"})
        prep = prepare_view(build_view_frames(frames, cfg)["price_momentum"], "price_momentum", cfg)
        res = train_spec(prep, "ridge", cfg)
        assert (res.folds["n_train_dates"] <= 150).all()
        assert res.metrics["rank_ic"] > 0.02
        assert (res.train_end - res.train_start).days < 150 * 7 / 5 + 5


def test_train_zoo_runs_all_specs_with_progress(frames):
    lines = []
    cfg = small_config(views=["price_momentum", "alt_data", "all"])
    families = ["ridge", "lasso", "bayes_ridge", "regime_ridge", "extra_trees", "mlp", "xgboost"]
    result = train_zoo(frames, cfg, log=lines.append, families=families)
    assert len(result.specs) == len(families) * 3
    assert any("1/21" in line for line in lines) and any("21/21" in line for line in lines)
    assert set(result.predictions.columns) == {"date", "symbol", "model_id", "score"}
    assert result.predictions["model_id"].nunique() == 21
    for col in ("rank_ic", "ic", "icir", "t_stat", "hit_rate", "decile_spread", "ic_decay_1", "ic_decay_5",
                "ic_decay_21", "seconds"):
        assert col in result.metrics
    assert result.metrics.loc[result.metrics["view"] == "all", "rank_ic"].min() > 0.05
    assert result.timings["total"] > 0
    # a Feast-style wide frame splits back into view frames
    wide = frames["price_momentum"].rename(columns=lambda c: c if c in ("symbol", "date") else f"price_momentum__{c}")
    wide = wide.merge(frames["labels"].rename(columns=lambda c: c if c in ("symbol", "date") else f"labels__{c}"),
                      on=["symbol", "date"])
    split = frames_from_wide(wide)
    assert set(split) == {"price_momentum", "labels"} and "fwd_ret_sn_5d" in split["labels"]
    again = train_zoo(split, small_config(views=["price_momentum"]), log=None, families=["ridge"])
    first = result.predictions[result.predictions["model_id"].str.startswith("ridge-price_momentum")]
    np.testing.assert_allclose(np.sort(again.predictions["score"]), np.sort(first["score"]))


def test_metric_extensions():
    from ml.metrics import decile_spread, evaluate_scores, hit_rate, ic_decay, sign_hit_rate

    rng = np.random.default_rng(0)
    dates = np.repeat(pd.bdate_range("2021-01-01", periods=50), 40)
    signal = rng.standard_normal(len(dates))
    frame = pd.DataFrame({"date": dates, "score": signal,
                          "r1": 0.2 * signal + rng.standard_normal(len(dates)),
                          "r5": 0.5 * signal + rng.standard_normal(len(dates))})
    spread = decile_spread(frame, "score", "r5")
    assert len(spread) == 50 and spread.mean() > 0.5
    perfect = decile_spread(frame.assign(t=frame["score"]), "score", "t")
    top = frame.groupby("date")["score"].apply(lambda s: s.nlargest(4).mean() - s.nsmallest(4).mean())
    np.testing.assert_allclose(perfect.to_numpy(), top.to_numpy())
    assert hit_rate(pd.Series([0.1, -0.1, 0.2, np.nan])) == pytest.approx(2 / 3)
    assert sign_hit_rate(frame, "score", "r5").mean() > 0.6
    decay = ic_decay(frame, "score", {1: "r1", 5: "r5", 21: "missing"})
    assert decay[5] > decay[1] > 0 and np.isnan(decay[21])
    card = evaluate_scores(frame, "score", {1: "r1", 5: "r5"}, primary=5)
    for key in ("ic", "rank_ic", "icir", "t_stat", "hit_rate", "sign_hit_rate", "decile_spread", "ic_decay_1",
                "ic_decay_5", "n_days"):
        assert key in card
    assert card["n_days"] == 50 and card["hit_rate"] > 0.9 and card["rank_ic"] == pytest.approx(decay[5])



def test_a_spec_never_looks_labels_up_by_key_in_the_shared_prepared_view(prepared, monkeypatch):
    """`aurora run` trains specs as Prefect tasks on a thread pool over one shared PreparedView. A lookup
    by key builds the MultiIndex's lazy hash engine, which pandas does not build thread-safely
    (pandas-dev/pandas#28439: spurious KeyError, seen in CI). Rows are taken by position instead."""
    cfg, preps = prepared
    shared = preps["price_momentum"]
    guarded = {id(shared.X.index), id(shared.labels.index)}
    for name in ("get_loc", "get_indexer", "get_indexer_for", "_get_indexer_strict"):
        original = getattr(pd.MultiIndex, name)

        def refuse(self, *args, _original=original, _name=name, **kwargs):
            assert id(self) not in guarded, f"key lookup ({_name}) on the shared PreparedView's index"
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pd.MultiIndex, name, refuse)
    for family in ("ridge", "fama_macbeth", "lightgbm"):
        result = train_spec(shared, family, cfg, fit_final=False)
        assert result.metrics["n_days"] > 0


def test_specs_sharing_one_prepared_view_across_threads_match_sequential_training(frames):
    """`aurora run` trains specs as Prefect tasks on a thread pool over one shared PreparedView; nothing
    in a spec may rely on lazily built shared state (pandas' MultiIndex engine is not thread-safe)."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = small_config()
    view = build_view_frames(frames, cfg)["price_momentum"]
    families = ["ridge", "fama_macbeth", "ridge", "fama_macbeth"]
    expected = {f: train_spec(prepare_view(view, "price_momentum", cfg), f, cfg, fit_final=False) for f in families}
    for _ in range(3):
        shared = prepare_view(view, "price_momentum", cfg)  # a fresh view: no index engine built yet
        with ThreadPoolExecutor(max_workers=len(families)) as pool:
            results = list(pool.map(lambda f, prep=shared: train_spec(prep, f, cfg, fit_final=False), families))
        for family, got in zip(families, results, strict=True):
            pd.testing.assert_frame_equal(got.predictions, expected[family].predictions)
            assert got.metrics == expected[family].metrics


def test_extra_label_horizons_train_the_same_specs_on_their_own_label_and_purge(frames):
    """`horizons` trains ridge again on the 1- and 21-day labels: own ids, own target, purge >= h."""
    cfg = small_config(views=["price_momentum"], horizons={1: {"label": "fwd_ret_sn_1d", "families": ["ridge"]},
                                                          21: {"label": "fwd_ret_sn_21d", "families": ["ridge"]}})
    lines = []
    result = train_zoo(frames, cfg, log=lines.append, families=["ridge", "lasso"])
    ids = sorted(s.model_id for s in result.specs)
    assert len(ids) == 4 and sum(i.startswith("ridge@1d-price_momentum-") for i in ids) == 1
    assert sum(i.startswith("ridge@21d-price_momentum-") for i in ids) == 1
    by_id = {s.model_id: s for s in result.specs}
    for spec in result.specs:
        h = int(spec.target["horizon"])
        assert spec.cv["horizon"] >= h
        gaps = (pd.to_datetime(spec.folds["test_start"]) - pd.to_datetime(spec.folds["train_end"])).dt.days
        assert (gaps > h).all()  # the last training label ends before the test period
    long = next(s for i, s in by_id.items() if i.startswith("ridge@21d"))
    assert long.target["label"] == "fwd_ret_sn_21d" and long.family == "ridge"
    assert any("ridge@21d" in line for line in lines)
    main = next(s for i, s in by_id.items() if i.startswith("ridge-"))
    both = main.predictions.merge(long.predictions, on=["date", "symbol"])
    assert len(both) > 1000 and not np.allclose(both["score_x"], both["score_y"])


def test_a_horizons_block_with_unknown_families_or_no_label_is_refused():
    with pytest.raises(ConfigError, match="unknown families"):
        small_config(horizons={1: {"label": "fwd_ret_sn_1d", "families": ["nope"]}})
    with pytest.raises(ConfigError, match="needs a label"):
        small_config(horizons={21: {"families": ["ridge"]}})


def test_a_family_with_a_views_list_trains_on_those_views_only(frames):
    cfg = small_config(views=["price_momentum", "all"])
    cfg["families"] = {"ridge": {"views": ["all"]}, "lasso": {}}
    result = train_zoo(frames, cfg, log=None, families=["ridge", "lasso"])
    assert sorted((s.family, s.view) for s in result.specs) == [
        ("lasso", "all"), ("lasso", "price_momentum"), ("ridge", "all")]
    with pytest.raises(ConfigError, match="views must be a list"):
        load_config({"families": {"ridge": {"views": "all"}}})


def test_the_all_view_takes_its_parts_normalization_exactly(frames):
    """`all` joins the views, and a feature's per-date normalization sees only the names holding it, so
    the parts' normalized columns are `all`'s, bit for bit, even where a part lacks rows."""
    cfg = small_config()
    frames = dict(frames)
    alt = frames["alt_data"]
    frames["alt_data"] = alt.drop(alt.sample(frac=0.1, random_state=1).index)  # rows only price_momentum has
    views = build_view_frames(frames, cfg)
    parts = [prepare_view(f, v, cfg) for v, f in views.items() if v != "all"]
    direct = prepare_view(views["all"], "all", cfg)
    reused = prepare_view(views["all"], "all", cfg, normalized=normalized_parts(parts))
    pd.testing.assert_frame_equal(direct.X, reused.X, check_exact=True)
    np.testing.assert_array_equal(direct.y, reused.y)
    pd.testing.assert_frame_equal(direct.state, reused.state, check_exact=True)
    # what the parts cannot stand for is normalized here: a duplicated key, a feature no part has
    wrong = normalized_parts(parts) * 0 + 1.0
    dup = pd.concat([views["all"], views["all"].iloc[:3]])
    pd.testing.assert_frame_equal(prepare_view(dup, "all", cfg, normalized=wrong).X, prepare_view(dup, "all", cfg).X)
    narrow = wrong.drop(columns=wrong.columns[0])
    pd.testing.assert_frame_equal(prepare_view(views["all"], "all", cfg, normalized=narrow).X, direct.X)
