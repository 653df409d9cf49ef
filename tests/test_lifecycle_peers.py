"""The lifecycle judged against peers (`peers.enabled`, ml/monitoring/peers.py): a lull every model
shares retires no one, a model that falls behind the zoo is still retired, and the peer level at a date
uses only that date's ICs (nothing known later)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml import lifecycle as lc
from ml.monitoring.config import LifecycleError
from ml.monitoring.peers import peer_relative

PEERS = {"peers": {"enabled": True}}
NO_REQ = {"requalification": {"enabled": False}}


def _daily(calendar: pd.DatetimeIndex, model: str, values) -> pd.DataFrame:
    return pd.DataFrame({"model_id": model, "date": calendar, "ic": np.asarray(values, dtype=float)})


def _retired(res: lc.LifecycleResult) -> pd.DataFrame:
    ev = res.events[res.events["event"] == "retired"]
    return ev.drop_duplicates("model_id").set_index("model_id")


def test_the_peer_level_is_the_other_models_mean_ic_on_the_same_date():
    cal = pd.bdate_range("2020-01-01", periods=2)
    daily = pd.concat([_daily(cal, "a", [0.10, 0.0]), _daily(cal, "b", [0.02, np.nan]),
                       _daily(cal, "c", [0.03, 0.05]), _daily(cal, "d", [0.07, 0.01])])
    out = peer_relative(daily, min_peers=3).set_index(["date", "model_id"])
    day1 = out.xs(cal[0])
    # a: others' mean (0.02 + 0.03 + 0.07) / 3 = 0.04 -> 0.10 - 0.04 (leave-one-out: never its own yardstick)
    assert np.isclose(day1.loc["a", "peer_ic"], 0.04) and np.isclose(day1.loc["a", "ic"], 0.06)
    assert np.isclose(day1.loc["d", "ic"], 0.07 - 0.05)
    # day 2 has only two other ICs per model (b is missing): fewer than min_peers, judged against zero
    day2 = out.xs(cal[1])
    assert day2.loc[["a", "c", "d"], "peer_ic"].isna().all()
    np.testing.assert_allclose(day2.loc[["a", "c", "d"], "ic"], [0.0, 0.05, 0.01])
    assert np.isnan(day2.loc["b", "ic"])
    # with a lower floor the same day is judged against the two others
    low = peer_relative(daily, min_peers=2).set_index(["date", "model_id"]).xs(cal[1])
    assert np.isclose(low.loc["a", "ic"], 0.0 - 0.03)


def test_with_exclude_view_the_peers_are_the_other_views_models():
    """A channel that dies takes its own view's models with it; with `exclude: view` they are not each
    other's yardstick. A model without a view is a view of its own."""
    cal = pd.bdate_range("2020-01-01", periods=1)
    daily = pd.concat([_daily(cal, "m1", [0.10]), _daily(cal, "m2", [0.06]), _daily(cal, "f1", [0.02]),
                       _daily(cal, "f2", [0.04]), _daily(cal, "x", [0.00])])
    views = {"m1": "micro", "m2": "micro", "f1": "fund", "f2": "fund"}
    out = peer_relative(daily, min_peers=2, views=views, exclude="view").set_index("model_id")
    assert np.isclose(out.loc["m1", "peer_ic"], (0.02 + 0.04 + 0.0) / 3)   # not m2
    assert np.isclose(out.loc["f2", "peer_ic"], (0.10 + 0.06 + 0.0) / 3)   # not f1
    assert np.isclose(out.loc["x", "peer_ic"], (0.10 + 0.06 + 0.02 + 0.04) / 4)
    with pytest.raises(ValueError, match="model | view"):
        peer_relative(daily, exclude="family")
    with pytest.raises(LifecycleError, match="peers.exclude"):
        lc.load_config({"peers": {"exclude": "family"}})


def test_the_peer_level_of_a_date_does_not_change_when_later_dates_are_added():
    """Point in time: the relative IC of date s reads only ICs dated s, known when the model's own is."""
    rng = np.random.default_rng(0)
    cal = pd.bdate_range("2020-01-01", periods=300)
    daily = pd.concat([_daily(cal, f"m{i}", 0.03 + 0.1 * rng.standard_normal(len(cal))) for i in range(6)])
    full = peer_relative(daily)
    cut = peer_relative(daily[daily["date"] <= cal[199]])
    merged = cut.merge(full, on=["model_id", "date"], suffixes=("_cut", "_full"))
    assert len(merged) == len(cut)
    np.testing.assert_allclose(merged["ic_cut"], merged["ic_full"])


def _zoo(rng, cal, n=12, mu=0.08, sd=0.09, lull=None, dies=None, death=None):
    """n models with IC mu + noise; `lull` (start, end): every model's edge gone over those days;
    `dies`: this model's own edge gone from `death` on."""
    frames = []
    for i in range(n):
        ic = mu + sd * rng.standard_normal(len(cal))
        if lull is not None:
            ic[lull[0]:lull[1]] -= mu
        if dies == f"m{i}":
            ic[death:] -= mu
        frames.append(_daily(cal, f"m{i}", ic))
    return pd.concat(frames, ignore_index=True)


def test_a_lull_every_model_shares_retires_no_one_judged_against_peers():
    """A year in which every model's edge vanishes together (a market-wide lull, as on both real
    panels) retires almost the whole zoo when each model is judged against zero; judged against its
    peers, at most the detector's nominal false alarms (about 1 in 100 such models over these 5 years;
    this path has 2)."""
    rng = np.random.default_rng(4)
    cal = pd.bdate_range("2014-01-01", periods=1400)
    daily = _zoo(rng, cal, lull=(700, 950))
    cfg = {"promotion": {"method": "icir"}, **NO_REQ}
    alone = _retired(lc.run_lifecycle(daily, cal, cfg))
    assert len(alone) >= 10 and (alone["rule"] == "changepoint").all()
    peers = _retired(lc.run_lifecycle(daily, cal, {**cfg, **PEERS}))
    assert len(peers) <= 2
    lull = (peers["date"] >= cal[700]) & (peers["date"] <= cal[min(950 + 63, len(cal) - 1)])
    assert not lull.any()


def test_a_model_that_falls_behind_its_peers_is_still_retired_within_three_months():
    """One model's own channel dies while the zoo's edge stays: judged against its peers it is caught
    as fast as before (the common noise it no longer carries makes it faster, not slower), and no
    healthy model goes."""
    rng = np.random.default_rng(9)
    cal = pd.bdate_range("2014-01-01", periods=1200)
    death = 800
    daily = _zoo(rng, cal, dies="m3", death=death)
    cfg = {"promotion": {"method": "icir"}, **NO_REQ, **PEERS}
    ret = _retired(lc.run_lifecycle(daily, cal, cfg))
    assert list(ret.index) == ["m3"] and ret.loc["m3", "rule"] == "changepoint"
    assert 0 < (pd.Timestamp(ret.loc["m3", "date"]) - cal[death]).days <= 92


def _overlapping(rng, mean: float, sd: float, n: int, h: int = 5) -> np.ndarray:
    e = rng.standard_normal(n + h - 1)
    return mean + sd * np.convolve(e, np.ones(h), "valid") / np.sqrt(h)


def test_negative_edge_against_peers_needs_both_a_losing_model_and_one_behind_its_peers():
    """Negative edge with peers on: a model that loses money while its peers earn is retired, with both
    t-statistics in its record; a model that merely trails its peers (IC 0.01 against 0.04) is not, nor
    is a zoo whose every model loses money together (there retirements fall from all 8 to the rule's own
    false-alarm rate: a one-sided 1% test repeated every month)."""
    rng = np.random.default_rng(2)
    cal = pd.bdate_range("2012-01-02", periods=252 * 5)
    frames = [_daily(cal, f"ok{i}", _overlapping(rng, 0.04, 0.1, len(cal))) for i in range(8)]
    harmful = _overlapping(rng, 0.04, 0.1, len(cal))
    harmful[252 * 2:] -= 0.08
    frames += [_daily(cal, "harmful", harmful), _daily(cal, "weak", _overlapping(rng, 0.01, 0.1, len(cal)))]
    cfg = {"changepoint": {"enabled": False}, "promotion": {"method": "icir"}, **NO_REQ, **PEERS}
    ret = _retired(lc.run_lifecycle(pd.concat(frames), cal, cfg))
    assert list(ret.index) == ["harmful"] and ret.loc["harmful", "rule"] == "negative_edge"
    metrics = json.loads(ret.loc["harmful", "metrics"])
    assert metrics["t_stat"] <= -2.326 and metrics["relative_t"] <= -2.326
    assert "below its peers'" in ret.loc["harmful", "reason"]
    # every model losing money together: each is retired against zero, hardly any against its peers
    together = pd.concat([_daily(cal, f"m{i}", _overlapping(rng, -0.03, 0.1, len(cal))) for i in range(8)])
    base = {"changepoint": {"enabled": False}, "promotion": {"method": "icir"}, "retirement": {"min_active": 0},
            "activation": {"min_ic": -1.0, "min_t": -99.0}, **NO_REQ}
    assert len(_retired(lc.run_lifecycle(together, cal, base))) == 8
    assert len(_retired(lc.run_lifecycle(together, cal, {**base, **PEERS}))) <= 2
