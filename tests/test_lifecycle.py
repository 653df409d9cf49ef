"""Model lifecycle (ml/monitoring/): retirement rules, change-point false alarms, PSI, promotion,
walk-forward statuses, the monitoring stage's tables and registry moves, regimes - and the required
check on the synthetic market: models built on the channel that dies are retired within 3 months."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import lifecycle as lc
from ml.market import MarketConfig, generate_market, write_market
from ml.paths import DataPaths

NO_CP = {"changepoint": {"enabled": False}, "promotion": {"method": "icir"}}
NO_REQ = {"requalification": {"enabled": False}}


def _daily(calendar: pd.DatetimeIndex, model: str, values) -> pd.DataFrame:
    return pd.DataFrame({"model_id": model, "date": calendar, "ic": np.asarray(values, dtype=float),
                         "n_names": 50})


def _retirements(res: lc.LifecycleResult) -> dict[str, pd.Series]:
    """Each model's first retirement (its first generation's)."""
    ev = res.events[res.events["event"] == "retired"]
    out: dict[str, pd.Series] = {}
    for _, r in ev.iterrows():
        out.setdefault(r["model_id"], r)
    return out


# ================================================================================ negative edge
def _overlapping(rng, mean: float, sd: float, n: int, h: int = 5) -> np.ndarray:
    """Daily ICs of an h-day label scored every day: a moving sum of h daily shocks (autocorrelated)."""
    e = rng.standard_normal(n + h - 1)
    return mean + sd * np.convolve(e, np.ones(h), "valid") / np.sqrt(h)


def test_negative_edge_retires_on_evidence_not_on_runs_of_negative_months():
    """A weak healthy model (IC 0.02, sd 0.12) has runs of three negative months, which the old rule
    took as death; it is not retired. A model that loses money (IC -0.03) is, by the negative-edge rule,
    with the Newey-West t in its reason."""
    rng = np.random.default_rng(1)
    cal = pd.bdate_range("2012-01-02", periods=252 * 8)
    weak = _overlapping(rng, 0.02, 0.12, len(cal))
    harmful = _overlapping(rng, 0.03, 0.12, len(cal))
    harmful[252 * 3:] -= 0.06
    daily = pd.concat([_daily(cal, "weak", weak), _daily(cal, "harmful", harmful)])
    res = lc.run_lifecycle(daily, cal, {**NO_CP, "retirement": {"min_active": 0}})
    assert res.monthly.loc[res.monthly["model_id"] == "weak", "negative_run"].max() >= 3
    ret = _retirements(res)
    assert "weak" not in ret
    assert ret["harmful"]["rule"] == "negative_edge" and "Newey-West t" in ret["harmful"]["reason"]
    assert json.loads(ret["harmful"]["metrics"])["t_stat"] <= -2.326
    assert pd.Timestamp(ret["harmful"]["date"]) > cal[252 * 3]


def test_negative_edge_false_retirements_of_healthy_models_stay_below_one_per_twenty_model_years():
    """The level z = 2.326 is a one-sided 1% on the model's own noise, so its false-retirement rate
    holds on any market: 60 weak but healthy models (IC 0.005 to 0.02, overlapping 5-day labels) over
    10 years each, with every retirement counted (re-qualified successors keep being judged)."""
    rng = np.random.default_rng(7)
    cal = pd.bdate_range("2010-01-01", periods=252 * 10)
    means = np.linspace(0.005, 0.02, 60)
    daily = pd.concat([_daily(cal, f"m{i}", _overlapping(rng, mu, 0.12, len(cal))) for i, mu in enumerate(means)])
    res = lc.run_lifecycle(daily, cal, {**NO_CP, "retirement": {"min_active": 0},
                                        "activation": {"max_days": 10**6}})
    retired = res.events[(res.events["event"] == "retired") & (res.events["rule"] == "negative_edge")]
    live_years = res.status_daily["status"].isin(["active", "promoted"]).sum() / 252
    assert live_years > 300
    assert len(retired) / live_years * 20 <= 1.0, f"{len(retired)} retirements in {live_years:.0f} model-years"


def test_rules_judge_active_models_and_deferred_retirements_go_through_later():
    cal = pd.bdate_range("2019-01-01", "2021-06-30")
    months = cal.to_period("M")
    # a weak start is a candidate's problem (activation), not a retirement
    early = np.where(months < pd.Period("2019-04"), -0.01, 0.05)
    res = lc.run_lifecycle(_daily(cal, "early", early), cal, NO_CP)
    assert "early" not in _retirements(res) and res.final["early"] == "active"
    # the only active model dies: deferred; a second model activates later: the retirement goes through
    solo = np.where(months >= pd.Period("2020-01"), -0.02, 0.05)
    late = pd.Series(np.nan, index=cal)
    late[cal >= "2020-09-01"] = 0.04
    daily = pd.concat([_daily(cal, "solo", solo), _daily(cal, "late", late.to_numpy()).dropna()])
    res = lc.run_lifecycle(daily, cal, {**NO_CP, **NO_REQ})
    ev = res.events.set_index("event")
    assert ev.loc["retirement_deferred", "model_id"] == "solo"
    retired = _retirements(res)["solo"]
    activated = res.events[(res.events["event"] == "activated") & (res.events["model_id"] == "late")]["date"].iloc[0]
    assert pd.Timestamp(retired["date"]) == pd.Timestamp(activated) and "deferred since" in retired["reason"]
    assert res.final == {"solo": "retired", "late": "active"}


def test_month_is_not_used_before_its_labels_are_realized():
    cal = pd.bdate_range("2019-01-01", "2019-12-31")
    monthly = lc.monthly_ic(_daily(cal, "a", np.full(len(cal), 0.01)), cal, known_lag=6)
    for _, row in monthly.iterrows():
        month_end = cal[cal.to_period("M") == pd.Period(row["month"], freq="M")].max()
        if pd.isna(row["known_at"]):
            assert cal.get_loc(month_end) + 6 >= len(cal)
        else:
            assert row["known_at"] == cal[cal.get_loc(month_end) + 6]
    assert monthly["known_at"].isna().sum() == 1  # December is not known inside the calendar


# ================================================================================ rule 2
def test_cusum_threshold_matches_siegmund():
    for k, arl0 in ((0.5, 10000.0), (1.0, 500.0), (0.25, 2000.0)):
        h = lc.cusum_threshold(k, arl0)
        b = h + 1.166
        assert (np.expm1(2 * k * b) - 2 * k * b) / (2 * k * k) == pytest.approx(arl0, rel=1e-6)
    assert lc.cusum_threshold(0.5, 100000) > lc.cusum_threshold(0.5, 1000)


@pytest.mark.parametrize("noise", ["normal", "student_t3"])
def test_changepoint_false_alarms_on_noise_are_rare_and_a_dead_signal_is_caught(noise):
    """Healthy models with stationary IC (normal, or fat-tailed t3) rarely trip the detector over
    ~5 years; a model whose edge vanishes (daily IC / sd = 0.9, like the order-imbalance score on the
    test market's 1-day label) is retired within 3 months in most paths."""
    rng = np.random.default_rng(11)
    n_models, n_days, death = 300, 1500, 1000
    cal = pd.bdate_range("2016-01-01", periods=n_days)
    cfg = lc.load_config({"changepoint": {"label": None}})["changepoint"]
    cfg["known_lag"] = 2

    def shocks():
        if noise == "normal":
            return rng.standard_normal((n_models, n_days))
        return rng.standard_t(3, (n_models, n_days)) / np.sqrt(3.0)

    mu, sd = 0.09, 0.1
    healthy = mu + sd * shocks()
    dying = mu + sd * shocks()
    dying[:, death:] -= mu
    frames = [_daily(cal, f"h{i}", healthy[i]) for i in range(n_models)]
    frames += [_daily(cal, f"d{i}", dying[i]) for i in range(n_models)]
    table = lc.changepoint_table(pd.concat(frames), cal, cfg)
    first = table[table["alarm"]].groupby("model_id")["known_at"].min()
    healthy_alarms = first[first.index.str.startswith("h")]
    monitored_years = (n_days - cfg["reference_days"]) / 252
    rate = len(healthy_alarms) / n_models
    # nominal: 1 - exp(-monitored days / arl0) = 6% in 5 years at arl0 = 20,000 (~1% a model-year)
    nominal = 1 - np.exp(-(n_days - cfg["reference_days"]) / cfg["arl0_blocks"])
    assert rate <= nominal + 0.02, f"{rate:.1%} of healthy models tripped in {monitored_years:.1f} years"
    dying_first = first[first.index.str.startswith("d")]
    lag = (dying_first - cal[death]).dt.days
    assert (lag > 0).mean() >= 0.95            # hardly ever before the death
    assert ((lag > 0) & (lag <= 92)).mean() >= 0.9


def test_view_decay_retires_the_weaker_models_of_a_view_whose_strong_models_died():
    """Two strong and two weak models on view `micro` lose their edge on the same day: the change point
    catches the strong ones within weeks, and rule 3 takes the weak ones with them (their own IC would
    take far longer to show it). One death on view `fund` (one of four) or on the mixed `all` view does
    not drag their siblings along."""
    rng = np.random.default_rng(5)
    cal = pd.bdate_range("2016-01-01", periods=1100)
    death = 700

    def series(mu, dies):
        ic = mu + 0.09 * rng.standard_normal(len(cal))
        if dies:
            ic[death:] -= mu
        return ic

    spec = {"micro-strong1": (0.08, True), "micro-strong2": (0.08, True), "micro-weak1": (0.02, True),
            "micro-weak2": (0.02, True), "fund-strong": (0.08, True), "fund-a": (0.05, False),
            "fund-b": (0.05, False), "fund-c": (0.05, False), "all-strong1": (0.08, True),
            "all-strong2": (0.08, True), "all-weak": (0.05, False)}
    daily = pd.concat([_daily(cal, m, series(mu, dies)) for m, (mu, dies) in spec.items()])
    views = {m: m.split("-")[0] for m in spec}
    cfg = {"retirement": {"z": 99.0}, "promotion": {"method": "icir"}, **NO_REQ}  # change point, view decay
    res = lc.run_lifecycle(daily, cal, cfg, detector_daily=daily, views=views)
    ret = _retirements(res)
    for m in ("micro-strong1", "micro-strong2", "fund-strong", "all-strong1", "all-strong2"):
        assert ret[m]["rule"] == "changepoint" and 0 < (pd.Timestamp(ret[m]["date"]) - cal[death]).days <= 92
    for m in ("micro-weak1", "micro-weak2"):
        assert ret[m]["rule"] == "view_decay" and "view micro: 2 of its 4 live models" in ret[m]["reason"]
        assert pd.Timestamp(ret[m]["date"]) == max(pd.Timestamp(ret[x]["date"]) for x in ("micro-strong1",
                                                                                        "micro-strong2"))
    assert not {"fund-a", "fund-b", "fund-c", "all-weak"} & set(ret)
    # without the rule, the weak micro models keep trading the dead signal
    off = lc.run_lifecycle(daily, cal, {**cfg, "view_decay": {"enabled": False}}, detector_daily=daily, views=views)
    assert not {"micro-weak1", "micro-weak2"} & set(_retirements(off))


def test_changepoint_uses_only_known_ics():
    cal = pd.bdate_range("2016-01-01", periods=700)
    rng = np.random.default_rng(3)
    x = 0.06 + 0.1 * rng.standard_normal(len(cal))
    x[500:] -= 0.2
    cfg = lc.load_config({"changepoint": {"label": None}})["changepoint"]
    cfg["known_lag"] = 2
    full = lc.changepoint_table(_daily(cal, "m", x), cal, cfg)
    cut = lc.changepoint_table(_daily(cal[:560], "m", x[:560]), cal, cfg)
    merged = cut.merge(full, on="block_end", suffixes=("_cut", "_full"))
    assert len(merged) == len(cut)
    np.testing.assert_allclose(merged["cusum_cut"], merged["cusum_full"])
    first = full.loc[full["alarm"], "known_at"].min()
    assert first > cal[500] and first == cal[cal.get_loc(full.loc[full["alarm"], "block_end"].min()) + 2]


# ================================================================================ drift
def test_psi_identical_vs_shifted():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(20000)
    y = rng.standard_normal(20000)
    assert lc.psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert lc.psi(x, y) < 0.01
    assert 0.1 < lc.psi(x, y + 0.5) < 0.5
    assert lc.psi(x, 2.0 * y + 1.0) > 0.25
    assert np.isnan(lc.psi(x, np.array([np.nan])))


def test_feature_drift_flags_a_shift_only_after_it():
    rng = np.random.default_rng(6)
    dates = pd.bdate_range("2018-01-01", "2020-12-31")
    frame = pd.DataFrame({"date": np.repeat(dates, 40), "symbol": np.tile([f"S{i}" for i in range(40)], len(dates))})
    frame["stable"] = rng.standard_normal(len(frame))
    frame["shifts"] = rng.standard_normal(len(frame)) + np.where(frame["date"] >= "2020-01-01", 1.0, 0.0)
    out = lc.feature_drift(frame, "v", {})
    assert set(out["feature"]) == {"stable", "shifts"}
    assert out["month"].min() == pd.Timestamp("2019-01-01")  # the first 12 months are the reference
    assert (out.loc[out["feature"] == "stable", "level"] == "stable").all()
    shifted = out[out["feature"] == "shifts"].set_index("month")
    assert (shifted.loc[:"2019-12-01", "level"] == "stable").all()
    assert (shifted.loc["2020-01-01":, "level"] == "significant").all()
    trailing = lc.feature_drift(frame, "v", {"drift": {"reference": "trailing"}}).set_index(["feature", "month"])
    assert trailing.loc[("shifts", pd.Timestamp("2020-01-01")), "psi"] > 0.25  # vs the 12 unshifted months
    assert trailing.loc[("shifts", pd.Timestamp("2020-12-01")), "psi"] < 0.1  # the trailing window caught up


# ================================================================================ promotion
def _ranked_models(cal: pd.DatetimeIndex, n: int = 10, seed: int = 2) -> pd.DataFrame:
    """n models with the same IC noise path and increasing mean IC: ICIR order = index order."""
    noise = 0.02 * np.random.default_rng(seed).standard_normal(len(cal))
    return pd.concat([_daily(cal, f"m{i}", 0.02 + 0.01 * i + noise) for i in range(n)])


def test_promotion_picks_top_fraction_by_trailing_icir():
    cal = pd.bdate_range("2018-01-01", "2020-12-31")
    res = lc.run_lifecycle(_ranked_models(cal), cal, NO_CP)
    last = res.status_daily[res.status_daily["date"] == cal[-1]].set_index("model_id")
    assert set(last.index[last["status"] == "promoted"]) == {"m8", "m9"}  # top 20% of 10
    assert (last.loc[["m8", "m9"], "multiplier"] == 2.0).all()
    assert set(last["status"]) == {"active", "promoted"}
    assert (last.loc[last["status"] == "active", "multiplier"] == 1.0).all()
    promoted = res.events[res.events["event"] == "promoted"]
    assert set(promoted["model_id"]) == {"m8", "m9"} and promoted["reason"].str.contains("trailing ICIR").all()
    # the unit rule, with hysteresis
    icir = {"a": 1.0, "b": 0.9, "c": 0.8, "d": 0.1, "e": -0.2}
    assert lc.promoted_set(icir, set(), 0.2) == {"a"}
    assert lc.promoted_set(icir, {"b"}, 0.2) == {"a"}
    assert lc.promoted_set(icir, {"b"}, 0.2, keep_fraction=0.4) == {"a", "b"}
    assert lc.promoted_set(icir, {"c"}, 0.2, keep_fraction=0.4) == {"a"}
    assert lc.promoted_set({"a": -1.0, "b": -2.0, "c": 0.0, "d": -0.5, "e": -0.1}, set(), 0.2) == set()


def test_promotion_uses_only_past_information():
    cal = pd.bdate_range("2018-01-01", "2020-12-31")
    daily = _ranked_models(cal)
    cut = pd.Timestamp("2019-06-03")
    # m0 becomes the best model after `cut`: nothing decided up to cut (+ the label lag) may change
    changed = daily.copy()
    late = (changed["model_id"] == "m0") & (changed["date"] >= cut)
    changed.loc[late, "ic"] += 0.5
    a = lc.run_lifecycle(daily, cal, NO_CP).status_daily
    b = lc.run_lifecycle(changed, cal, NO_CP).status_daily
    upto = cal[cal.get_loc(cut) + 6]
    pd.testing.assert_frame_equal(a[a["date"] <= upto].reset_index(drop=True),
                                  b[b["date"] <= upto].reset_index(drop=True))
    later = b[(b["date"] == cal[-1]) & (b["model_id"] == "m0")]
    assert later["status"].iloc[0] == "promoted"
    first_promo = b[(b["model_id"] == "m0") & (b["status"] == "promoted")]["date"].min()
    june_known = cal[cal.get_loc(cal[cal.to_period("M") == pd.Period("2019-06")].max()) + 6]
    assert first_promo >= june_known  # June's IC is known only once June's labels are realized


def test_weights_asof_and_multiplier_panel():
    cal = pd.bdate_range("2018-01-01", "2020-12-31")
    daily = _ranked_models(cal, n=5)
    res = lc.run_lifecycle(daily, cal, NO_CP)
    assert res.weights_asof(cal[0]) == {}  # everyone starts as a candidate
    w = res.weights_asof(cal[-1])
    assert w == {"m0": 1.0, "m1": 1.0, "m2": 1.0, "m3": 1.0, "m4": 2.0}
    panel = lc.multiplier_panel(res.status_daily, dates=cal, models=["m4", "m0", "zz"])
    assert list(panel.columns) == ["m4", "m0", "zz"] and (panel["zz"] == 0).all()
    assert panel.loc[cal[-1], "m4"] == 2.0 and panel.loc[cal[0], "m4"] == 0.0
    activated = res.events[res.events["event"] == "activated"]
    assert set(activated["model_id"]) == {f"m{i}" for i in range(5)}
    # activation needs min_days known IC days: not before 126 + known_lag trading days
    assert (pd.to_datetime(activated["date"]) >= cal[126 + 6 - 1]).all()


def test_candidate_without_edge_is_retired_never_activated():
    cal = pd.bdate_range("2018-01-01", "2020-12-31")
    rng = np.random.default_rng(9)
    daily = _daily(cal, "bad", -0.02 + 0.05 * rng.standard_normal(len(cal)))
    res = lc.run_lifecycle(daily, cal, {**NO_CP, "retirement": {"z": 99.0}})
    ret = _retirements(res)
    assert ret["bad"]["rule"] == "never_activated" and ret["bad"]["from_status"] == "candidate"


# ================================================================================ the stage
def _toy_warehouse(root: Path, seed: int = 0, n_symbols: int = 40, n_days: int = 700) -> DataPaths:
    """labels.parquet and ml.predictions for three models: good (score ~ label), dying (good until
    day 500, noise after), noise."""
    rng = np.random.default_rng(seed)
    paths = DataPaths(root)
    paths.features.mkdir(parents=True)
    dates = pd.bdate_range("2018-01-01", periods=n_days)
    syms = [f"S{i:02d}" for i in range(n_symbols)]
    frame = pd.DataFrame({"date": np.repeat(dates, n_symbols), "symbol": np.tile(syms, n_days)})
    y5 = rng.standard_normal(len(frame))
    y1 = y5 + 0.5 * rng.standard_normal(len(frame))
    frame["fwd_ret_sn_5d"], frame["fwd_ret_sn_1d"] = y5, y1
    last = frame["date"] > dates[-6]
    frame.loc[last, ["fwd_ret_sn_5d", "fwd_ret_sn_1d"]] = np.nan
    frame.assign(date=frame["date"].dt.date).to_parquet(paths.features / "labels.parquet")
    day = np.repeat(np.arange(n_days), n_symbols)
    preds = pd.concat([
        frame[["date", "symbol"]].assign(model_id="good", score=y5 + 4 * rng.standard_normal(len(frame))),
        frame[["date", "symbol"]].assign(model_id="dying", score=np.where(day < 500, y5, 0) + 3 * rng.standard_normal(len(frame))),
        frame[["date", "symbol"]].assign(model_id="noise", score=rng.standard_normal(len(frame))),
    ])
    con = duckdb.connect(str(paths.warehouse))
    con.execute("create schema ml")
    con.register("p", preds)
    con.execute("create table ml.predictions as select cast(date as date) as date, symbol, model_id, score from p")
    con.close()
    return paths


def _register_toy_models(paths: DataPaths, ids) -> None:
    from ml.models.registry_store import connect

    con = connect(paths)
    now = pd.Timestamp("2024-01-01")
    for m in ids:
        con.execute(
            "insert into ml.model_registry (model_id, family, view, features, feature_versions, params, "
            "artifact_path, artifact_format, artifact_sha256, status, created_at, updated_at) "
            "values (?, 'ridge', 'toy', '[]', '{}', '{}', ?, 'json', 'x', 'candidate', ?, ?)",
            [m, str(paths.root / "nowhere" / m / "model.json"), now, now])
        con.execute("insert into ml.model_events values (?, ?, null, 'candidate', 'registered')", [now, m])
    con.close()


def _table(paths: DataPaths, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute(sql).df()


def test_stage_writes_tables_events_with_reasons_and_moves_the_registry(tmp_path):
    paths = _toy_warehouse(tmp_path)
    _register_toy_models(paths, ["good", "dying", "noise"])
    logs: list[str] = []
    report = lc.run_monitor_stage(paths, None, log=logs.append)
    # both bad models are retired; their specs' successors are candidates again at the end
    assert report["n_models_active"] == 1 and report["n_retirements"] == 2 and report["n_models_candidate"] == 2
    for name in lc.TABLES:
        _table(paths, f"select * from ml.{name} limit 1")
    ev = _table(paths, "select * from ml.lifecycle_events order by event_seq")
    assert ev["reason"].str.len().gt(10).all() and ev["rule"].notna().all()
    retired = ev[ev["event"] == "retired"].set_index("model_id")
    assert set(retired.index) == {"dying", "noise"} and (retired["generation"] == 1).all()
    assert pd.Timestamp(retired.loc["dying", "date"]) > pd.bdate_range("2018-01-01", periods=700)[500]
    assert retired.loc["dying", "rule"] == "changepoint" and retired.loc["dying", "cusum"] > retired.loc["dying", "cusum_threshold"]
    assert set(ev.loc[ev["event"] == "suspended", "model_id"]) == {"dying", "noise"}
    lineage = _table(paths, "select * from ml.model_lineage order by model_id, generation")
    dying = lineage[lineage["model_id"] == "dying"].set_index("generation")
    assert dying.loc[1, "status"] == "retired" and dying.loc[1, "rule"] == "changepoint"
    assert dying.loc[2, "status"] == "candidate" and dying.loc[2, "parent_id"] == "dying#g1"
    assert pd.Timestamp(dying.loc[2, "born_at"]) > pd.Timestamp(dying.loc[1, "retired_at"])
    events = _table(paths, "select * from ml.model_events order by event_at")
    mine = events[events["reason"].str.startswith(lc.EVENT_PREFIX)]
    assert len(mine) == len(ev) and mine["reason"].str.contains("metrics").all()
    # the registry's model of each spec is its newest generation's
    reg = _table(paths, "select model_id, status from ml.model_registry").set_index("model_id")["status"].to_dict()
    assert reg == {"good": "active", "dying": "candidate", "noise": "candidate"}
    moves = events[events["reason"].str.startswith("lifecycle ")]
    assert ("good", "active") in set(zip(moves["model_id"], moves["to_status"], strict=True))
    # rerun: the lifecycle's rows are replaced, the registry's kept; the registry is already in sync
    lc.run_monitor_stage(paths, None, log=logs.append)
    again = _table(paths, "select * from ml.model_events")
    assert len(again) == len(events)
    status = _table(paths, "select * from ml.model_status_daily")
    assert set(status["status"]) <= set(lc.STATUSES)
    # one active model: the top 20% of 1 rounds to nobody promoted
    assert lc.read_weights_asof(paths, status["date"].max()) == {"good": 1.0}
    assert lc.read_weights_asof(paths, status["date"].min()) == {}


def test_stage_write_is_atomic(tmp_path, monkeypatch):
    paths = _toy_warehouse(tmp_path)
    lc.run_monitor_stage(paths, None, log=lambda m: None)
    before = {t: _table(paths, f"select count(*) as n from ml.{t}")["n"][0] for t in lc.TABLES}
    n_events = _table(paths, "select count(*) as n from ml.model_events")["n"][0]

    def broken(events):  # a NULL model_id violates ml.model_events' NOT NULL: the last statement fails
        return pd.DataFrame({"event_at": [pd.Timestamp("2020-01-01")], "model_id": [None], "from_status": ["a"],
                             "to_status": [None], "reason": ["boom"]})

    from ml.monitoring import stage

    monkeypatch.setattr(stage, "model_event_rows", broken)
    monkeypatch.setattr(stage, "drift_tables", lambda *a, **k: pd.DataFrame({"x": [1.0]}))
    with pytest.raises(duckdb.Error):
        lc.run_monitor_stage(paths, None, log=lambda m: None)
    after = {t: _table(paths, f"select count(*) as n from ml.{t}")["n"][0] for t in lc.TABLES}
    assert after == before
    assert list(_table(paths, "select * from ml.feature_drift limit 0").columns) != ["x"]
    assert _table(paths, "select count(*) as n from ml.model_events")["n"][0] == n_events


def test_stage_skips_without_predictions(tmp_path):
    logs: list[str] = []
    paths = DataPaths(tmp_path)
    out = lc.run_monitor_stage(paths, None, log=logs.append)
    assert out["n_models_active"] is None and "skipped" in logs[-1]
    duckdb.connect(str(paths.warehouse)).close()
    out = lc.run_monitor_stage(paths, None, log=logs.append)
    assert out["n_models_active"] is None and "skipped" in logs[-1]


# ================================================================================ regimes
def test_regimes_are_point_in_time_and_track_the_stressed_regime():
    market = generate_market(MarketConfig(n_symbols=60, n_days=1200, seed=4))
    rets = lc.market_returns(market.tables["prices"], market.tables["etf_prices"])
    assert rets["market_ret"].notna().mean() > 0.99
    full = lc.detect_regimes(rets)
    cut = lc.detect_regimes(rets.iloc[:800])
    pd.testing.assert_frame_equal(full.iloc[:800].reset_index(drop=True), cut.reset_index(drop=True))
    truth = market.regimes.assign(date=pd.to_datetime(market.regimes["date"]))
    x = full.merge(truth, on="date")
    x = x[x["regime"] != "warmup"]
    detected = x["regime"] == "stressed"
    base = x["stressed"].mean()
    assert 0.03 < base < 0.5
    assert x.loc[detected, "stressed"].mean() > 2 * base       # precision well above the base rate
    assert detected[x["stressed"]].mean() > 0.4                 # and most stressed days are seen
    assert (x.loc[x["dispersion_regime"] == "high", "stressed"].mean() > 2 * base)


# ================================================================================ the required check
# The default synthetic market (MarketConfig()), its dbt marts, and real walk-forward zoo models on the
# view that carries the dying channel (microstructure: order imbalance) and on two that do not
# (fundamental, price momentum), as the pipeline trains them (ml.training.train_spec), then the
# shipped lifecycle.
ZOO_FAMILIES = ("ridge", "elastic_net", "fama_macbeth")
DYING_VIEW, HEALTHY_VIEWS = "microstructure", ("fundamental", "price_momentum")
VIEWS = [DYING_VIEW, *HEALTHY_VIEWS]


@pytest.fixture(scope="module")
def dying_market(tmp_path_factory):
    from ml import training
    from ml.warehouse import build_features

    started = time.perf_counter()
    root = tmp_path_factory.mktemp("dying")
    write_market(MarketConfig(), root / "raw")
    paths = DataPaths(root)
    build_features(paths, log=lambda m: None, select=" ".join(f"+{v}" for v in ["labels", *VIEWS]))
    cfg = training.load_config({"views": VIEWS})
    frames = training.build_view_frames(training.load_view_frames(paths, VIEWS), cfg)
    preds, models = [], {}
    for view in VIEWS:
        prep = training.prepare_view(frames[view], view, cfg)
        for family in ZOO_FAMILIES:
            spec = training.train_spec(prep, family, cfg, fit_final=False)
            preds.append(spec.predictions)
            models[spec.model_id] = view
    preds = pd.concat(preds, ignore_index=True)
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("create schema if not exists ml")
        con.register("p", preds)
        con.execute("create or replace table ml.predictions as "
                    "select cast(date as date) as date, symbol, model_id, score from p")
    report = lc.run_monitor_stage(paths, None, log=lambda m: None)
    meta = json.loads((paths.oracle / "meta.json").read_text())
    return paths, report, meta, models, time.perf_counter() - started


def test_dying_channel_models_are_retired_within_three_months(dying_market):
    paths, report, meta, models, seconds = dying_market
    assert meta["dying_channel"] == "order_imbalance"
    decay = pd.Timestamp(meta["decay_date"])
    dying = [m for m, view in models.items() if view == DYING_VIEW]
    healthy = [m for m, view in models.items() if view in HEALTHY_VIEWS]
    ev = _table(paths, "select * from ml.lifecycle_events order by event_seq")
    first_gen = ev[(ev["event"] == "retired") & (ev["generation"] == 1)]
    retired = {r["model_id"]: r for _, r in first_gen.iterrows()}  # each model's own retirement (generation 1)
    # the dying-channel models really were in use before the channel died ...
    status = _table(paths, "select * from ml.model_status_daily")
    status["date"] = pd.to_datetime(status["date"])
    before = status[status["date"] == status.loc[status["date"] < decay, "date"].max()].set_index("model_id")
    assert (before.loc[dying, "multiplier"] > 0).all()
    # ... and each is retired after the death, within 3 months of it
    lags = {}
    for m in dying:
        assert m in retired, f"{m} never retired"
        lags[m] = (pd.Timestamp(retired[m]["date"]) - decay).days
        assert 0 < lags[m] <= 92, f"{m} retired {lags[m]} days after the decay ({retired[m]['reason']})"
    window_end = decay + pd.Timedelta(days=92)
    assert all(lc.read_weights_asof(paths, window_end).get(m, 0.0) == 0.0 for m in dying)
    # the models on a view without the dying channel are not retired by the change-point test around it
    for m in healthy:
        r = retired.get(m)
        assert r is None or r["rule"] != "changepoint" or not decay <= pd.Timestamp(r["date"]) <= window_end, r
    assert report["n_retirements"] >= len(dying)
    print(f"\nretirement lags (days): {lags}; healthy retired: "
          f"{ {m: (str(r['date'])[:10], r['rule']) for m, r in retired.items() if m in healthy} }; fixture {seconds:.1f}s")


# ================================================================================ re-qualification
def test_a_retired_spec_is_suspended_and_its_successor_requalifies_on_fresh_evidence_only():
    """A model whose edge disappears for a year is retired; its spec's successor is born at the first
    monthly refit after the retirement (+ purge), stays a candidate while the edge is gone, and
    re-qualifies only once its own post-birth evidence is significant. The predecessor stays retired."""
    rng = np.random.default_rng(4)
    cal = pd.bdate_range("2014-01-01", periods=252 * 7)
    ic = _overlapping(rng, 0.06, 0.1, len(cal))
    gone = (cal >= cal[252 * 2]) & (cal < cal[252 * 4])
    ic[gone] -= 0.09
    other = _overlapping(rng, 0.04, 0.1, len(cal))
    daily = pd.concat([_daily(cal, "m", ic), _daily(cal, "other", other)])
    res = lc.run_lifecycle(daily, cal, NO_CP)
    ev = res.events[res.events["model_id"] == "m"]
    retired = pd.Timestamp(ev.loc[ev["event"] == "retired", "date"].iloc[0])
    born = pd.Timestamp(ev.loc[ev["event"] == "successor_born", "date"].iloc[0])
    assert (ev.loc[ev["event"] == "suspended", "rule"] == "requalification").all()
    assert born == lc.successor_birth(cal, retired, "M", 7) and born.day <= 7 and born > retired
    # the generation that re-qualified was judged on its own evidence only: at least min_days (126) IC
    # days dated on or after its birth, each known `known_lag` (6) trading days later, with t >= 2
    back = ev[ev["event"] == "requalified"].iloc[0]
    gen_born = pd.Timestamp(ev[(ev["event"] == "successor_born") & (ev["generation"] == back["generation"])]["date"].iloc[0])
    requalified = pd.Timestamp(back["date"])
    assert requalified > cal[252 * 4]  # not while the edge was gone
    assert cal.get_loc(requalified) >= cal.get_loc(gen_born) + 126 + 6 - 1
    assert json.loads(back["metrics"])["t_stat"] >= 2.0
    lineage = res.lineage[res.lineage["model_id"] == "m"].set_index("generation")
    assert lineage.loc[1, "status"] == "retired" and lineage.iloc[-1]["status"] in ("active", "promoted")
    assert (lineage.iloc[:-1]["status"] == "retired").all()
    status = res.status_daily[res.status_daily["model_id"] == "m"].set_index("date")
    assert (status.loc[retired:requalified - pd.Timedelta(days=1), "multiplier"] == 0).all()
    assert status.loc[cal[-1], "generation"] == back["generation"]
    # with re-qualification off, retirement is the end
    off = lc.run_lifecycle(daily, cal, {**NO_CP, **NO_REQ})
    assert off.final["m"] == "retired" and "successor_born" not in set(off.events["event"])


# ================================================================================ ensemble-aware promotion
def test_promotion_rewards_what_a_model_adds_to_the_ensemble_not_a_redundant_copy():
    """Three models: `a` and its near copy `a2` (the best stand-alone ICs) and `b`, weaker alone but
    carrying an independent edge. By stand-alone ICIR the copies are on top; by contribution to the
    live ensemble `b` is, since removing either copy leaves the other in the pool."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2016-01-01", periods=700)
    n = 60
    idx = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(n)]], names=["date", "symbol"])
    f1, f2 = rng.standard_normal(len(idx)), rng.standard_normal(len(idx))
    y = pd.Series(0.35 * f1 + 0.25 * f2 + rng.standard_normal(len(idx)), index=idx)
    a = f1 + 0.3 * rng.standard_normal(len(idx))
    panel = pd.DataFrame({"a": a, "a2": a + 0.05 * rng.standard_normal(len(idx)),
                          "b": f2 + 0.3 * rng.standard_normal(len(idx))}, index=idx)
    from ml.ensemble import daily_rank_ic

    ics = daily_rank_ic(panel, y)
    long = ics.rename_axis(index="date", columns="model_id").stack().rename("ic").reset_index()
    stats = lc.contribution_stats(panel, y)
    cfg = {"changepoint": {"enabled": False}, "promotion": {"top_fraction": 0.34}}
    by_contribution = lc.run_lifecycle(long, dates, cfg, contribution=stats)
    by_icir = lc.run_lifecycle(long, dates, {**cfg, "promotion": {"top_fraction": 0.34, "method": "icir"}})
    assert by_contribution.final == {"a": "active", "a2": "active", "b": "promoted"}
    assert by_icir.final["b"] == "active" and {by_icir.final["a"], by_icir.final["a2"]} == {"active", "promoted"}
    reason = by_contribution.events[by_contribution.events["event"] == "promoted"]["reason"].iloc[-1]
    assert "contribution" in reason
    # the contribution of a model alone in the pool is its own IC; a copy of a pool member adds ~nothing
    rows = np.arange(len(stats.dates))
    solo = lc.contributions(stats, ["b"], rows)["b"]
    np.testing.assert_allclose(solo.mean(), ics["b"].mean(), atol=0.01)
    trio = lc.contributions(stats, ["a", "a2", "b"], rows).mean()
    assert trio["b"] > 5 * max(trio["a"], trio["a2"])
    with pytest.raises(ValueError, match="contribution"):  # the method needs the score panel's stats
        lc.run_lifecycle(long, dates, cfg)
    # point in time: labels realized after `cut` change nothing decided up to cut + the label lag
    cut = dates[400]
    later = y.where(y.index.get_level_values("date") <= cut, -y)
    ics_later = daily_rank_ic(panel, later).rename_axis(index="date", columns="model_id").stack().rename("ic")
    changed = lc.run_lifecycle(ics_later.reset_index(), dates, cfg, contribution=lc.contribution_stats(panel, later))
    upto = dates[400 + 6]
    a, b = by_contribution.status_daily, changed.status_daily
    pd.testing.assert_frame_equal(a[a["date"] <= upto].reset_index(drop=True), b[b["date"] <= upto].reset_index(drop=True))
    assert not a.equals(b)
