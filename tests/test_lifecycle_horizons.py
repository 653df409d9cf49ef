"""The lifecycle judges every model on the label it was trained on (issue 13, item 3): a 21-day model by
21-day returns, known 22 trading days later, a 1-day model by 1-day returns, each horizon's models among
themselves (their own live-model floor and promotion), then one merged result."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ml.monitoring.config import load_config
from ml.monitoring.stage import LabelGroup, MonitorInputs, group_config, label_groups, run_lifecycle_groups

CFG = load_config({"changepoint": {"enabled": False}, "promotion": {"method": "icir"}})


def _daily(calendar, model, mean, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"model_id": model, "date": calendar, "ic": mean + 0.1 * rng.standard_normal(len(calendar)),
                         "n_names": 50})


def _inputs(cal, five, twenty_one):
    g5 = LabelGroup("fwd_ret_sn_5d", 5, ["m5"], five, None, None)
    g21 = LabelGroup("fwd_ret_sn_21d", 21, ["m21"], twenty_one, None, None)
    first = {"m5": cal[0], "m21": cal[0]}
    return MonitorInputs([g5, g21], cal, first, {"m5": "all", "m21": "all"}, {})


def test_models_are_grouped_by_the_label_the_registry_says_they_were_trained_on():
    targets = {"ridge-all": ("fwd_ret_sn_5d", 5), "ridge@21d-all": ("fwd_ret_sn_21d", 21),
               "ridge@1d-all": ("fwd_ret_sn_1d", 1), "odd@3d-all": ("fwd_ret_sn_3d", 3)}
    models = ["ridge-all", "ridge@21d-all", "ridge@1d-all", "odd@3d-all", "unregistered"]
    groups = label_groups(models, targets, CFG, available={"fwd_ret_sn_1d", "fwd_ret_sn_5d", "fwd_ret_sn_21d"})
    assert list(groups)[0] == ("fwd_ret_sn_5d", 5)  # the lifecycle's own label first
    # no registry row, or a label labels.parquet lacks: judged on the configured label
    assert groups[("fwd_ret_sn_5d", 5)] == ["ridge-all", "odd@3d-all", "unregistered"]
    assert groups[("fwd_ret_sn_21d", 21)] == ["ridge@21d-all"]
    assert groups[("fwd_ret_sn_1d", 1)] == ["ridge@1d-all"]


def test_a_horizon_group_waits_for_its_own_labels():
    g21 = LabelGroup("fwd_ret_sn_21d", 21, ["m21"], pd.DataFrame(), None, None)
    g1 = LabelGroup("fwd_ret_sn_1d", 1, ["m1"], pd.DataFrame(), None, None)
    assert CFG["known_lag"] == 6
    assert group_config(CFG, g21)["known_lag"] == 22 and group_config(CFG, g21)["label"] == "fwd_ret_sn_21d"
    assert group_config(CFG, g1)["known_lag"] == 2
    late = {**CFG, "known_lag": 8}  # an extra delay the user asked for is kept for every label
    assert group_config(late, g21)["known_lag"] == 24


def test_each_group_is_decided_on_its_own_evidence_and_the_result_is_merged():
    cal = pd.bdate_range("2018-01-01", "2020-12-31")
    res = run_lifecycle_groups(_inputs(cal, _daily(cal, "m5", 0.05, 1), _daily(cal, "m21", 0.05, 2)), CFG)
    assert res.final == {"m5": "active", "m21": "active"}
    act = res.events[res.events["event"] == "activated"].set_index("model_id")["date"]
    # activation needs min_days known IC days: 126 + the label's known lag
    assert pd.Timestamp(act["m5"]) >= cal[126 + 6 - 1]
    assert pd.Timestamp(act["m21"]) >= cal[126 + 22 - 1]
    assert pd.Timestamp(act["m21"]) > pd.Timestamp(act["m5"])
    assert res.events["event_seq"].tolist() == list(range(1, len(res.events) + 1))
    assert pd.to_datetime(res.events["date"]).is_monotonic_increasing
    assert set(res.status_daily["model_id"]) == {"m5", "m21"}
    assert set(res.lineage["model_id"]) == {"m5", "m21"}


def test_a_21_day_models_status_uses_no_21_day_label_unknown_at_the_date():
    cal = pd.bdate_range("2018-01-01", "2020-12-31")
    five, twenty_one = _daily(cal, "m5", 0.05, 1), _daily(cal, "m21", 0.05, 2)
    cut = pd.Timestamp("2019-06-03")
    changed = twenty_one.copy()
    changed.loc[changed["date"] >= cut, "ic"] -= 0.5  # the model dies at `cut`
    cfg = {**CFG, "retirement": {**CFG["retirement"], "min_active": 0}}
    a = run_lifecycle_groups(_inputs(cal, five, twenty_one), cfg).status_daily
    b = run_lifecycle_groups(_inputs(cal, five, changed), cfg).status_daily
    upto = cal[cal.get_loc(cut) + 21]  # the first 21-day label of `cut` is known a day later
    pd.testing.assert_frame_equal(a[a["date"] <= upto].reset_index(drop=True),
                                  b[b["date"] <= upto].reset_index(drop=True))
    dead = b[(b["model_id"] == "m21") & (b["status"] == "retired")]["date"]
    assert len(dead) and dead.min() > upto and a[a["status"] == "retired"].empty


def test_a_group_without_events_merges_cleanly():
    cal = pd.bdate_range("2018-01-01", "2020-12-31")
    short = _daily(cal[-60:], "m21", 0.05, 2)  # too little history to ever be judged: no events at all
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # pandas deprecates stacking an empty frame
        res = run_lifecycle_groups(_inputs(cal, _daily(cal, "m5", 0.05, 1), short), CFG)
    assert set(res.events["model_id"]) == {"m5"}
    assert res.events["event_seq"].tolist() == list(range(1, len(res.events) + 1))


def test_groups_whose_events_carry_different_metrics_merge_without_losing_their_types():
    cal = pd.bdate_range("2016-01-01", "2020-12-31")
    five = _daily(cal, "m5", 0.05, 1)
    five.loc[five["date"] >= cal[800], "ic"] -= 0.3  # dies: a change-point retirement carries its cusum
    cfg = load_config({"retirement": {"min_active": 0}, "promotion": {"method": "icir"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # an all-NA column would decide the merged type
        res = run_lifecycle_groups(_inputs(cal, five, _daily(cal, "m21", 0.05, 2)), cfg)
    retired = res.events[(res.events["model_id"] == "m5") & (res.events["event"] == "retired")]
    assert retired["rule"].tolist() == ["changepoint"] and retired["cusum"].notna().all()
    assert res.events["cusum"].dtype == "float64" and res.events["reference_ic"].dtype == "float64"
