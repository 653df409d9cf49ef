"""The scenario bench's lifecycle columns (bench/lifecycle_metrics.py), on tiny hand-made tables."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import lifecycle_metrics as lm  # noqa: E402

CAL = pd.bdate_range("2000-01-03", periods=2600)  # more than 10 years of trading days
DEATH_AT = 2000  # the death date's position in CAL


def _status(spans: dict[str, list[tuple[int, int, str]]]) -> pd.DataFrame:
    """Per model, (first, last exclusive, status) spans over CAL; 'candidate' elsewhere."""
    frames = []
    for model, parts in spans.items():
        status = pd.Series("candidate", index=range(len(CAL)), dtype=object)
        for first, last, value in parts:
            status.iloc[first:last] = value
        frames.append(pd.DataFrame({"date": CAL, "model_id": model, "status": status.to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def _event(model: str, at: int, rule: str, event: str = "retired", **extra) -> dict:
    return {"date": CAL[at], "model_id": model, "event": event, "rule": rule, **extra}


@pytest.fixture
def zoo():
    """h: healthy, active 2520 days (10 years) then retired once; a: the `all` view, active 252 days
    then retired; d1, d2: the dying view, live at the death, retired 30 and 80 trading days after it;
    d0: the dying view, retired before the death; n: never activated (not a false retirement)."""
    registry = pd.DataFrame({"model_id": ["h", "a", "d1", "d2", "d0", "n"],
                             "view": ["fundamental", "all", "microstructure", "microstructure", "microstructure",
                                      "price_momentum"]})
    status = _status({
        "h": [(0, 2520, "active"), (2520, len(CAL), "retired")],
        "a": [(0, 252, "promoted"), (252, len(CAL), "retired")],
        "d1": [(1000, DEATH_AT + 30, "active"), (DEATH_AT + 30, len(CAL), "retired")],
        "d2": [(1000, DEATH_AT + 80, "promoted"), (DEATH_AT + 80, len(CAL), "retired")],
        "d0": [(1000, 1500, "active"), (1500, len(CAL), "retired")],
        "n": [(500, len(CAL), "retired")],
    })
    events = pd.DataFrame([
        _event("h", 0, "activation", "activated"),
        _event("h", 2520, "changepoint"),
        _event("a", 252, "negative_months"),
        _event("d1", DEATH_AT + 30, "view_decay"),
        _event("d2", DEATH_AT + 80, "changepoint"),
        _event("d0", 1500, "negative_months"),
        _event("n", 500, "never_activated"),
    ])
    return events, status, registry


def test_a_healthy_model_retired_once_in_ten_live_years_is_two_per_twenty_years(zoo):
    events, status, registry = zoo
    out = lm.lifecycle_metrics(events, status, registry, dying_views="microstructure", death_date=CAL[DEATH_AT])
    # only h is healthy: `all` (a), the dying view (d*) and the never-activated n's retirement are left out
    assert out["false_retirements_n"] == 1 and out["false_retirements_live_years"] == 10.0
    assert out["false_retirements_per_20y"] == pytest.approx(2.0)
    # the `all` view on its own: one retirement in one live year
    assert out["false_retirements_all_n"] == 1
    assert out["false_retirements_all_per_20y"] == pytest.approx(20.0)


def test_the_dying_view_retired_30_and_80_days_after_its_death(zoo):
    events, status, registry = zoo
    out = lm.lifecycle_metrics(events, status, registry, dying_views=("microstructure",), death_date=CAL[DEATH_AT])
    assert out["dying_view_retired_within_3m"] == "1/2"  # d1 within 63 days, d2 after; d0 was not live
    assert out["detection_lag_days_median"] == 55
    assert out["dying_view_retired_early"] == 1 and out["dying_view_not_retired"] == 0


def test_without_a_dying_channel_every_view_but_all_is_healthy(zoo):
    events, status, registry = zoo
    out = lm.lifecycle_metrics(events, status, registry)
    # h, d1, d2 and d0 are healthy now, each retired once (n's never_activated is no false retirement)
    live_days = 2520 + (DEATH_AT + 30 - 1000) + (DEATH_AT + 80 - 1000) + 500
    assert out["false_retirements_n"] == 4
    assert out["false_retirements_per_20y"] == pytest.approx(4 / (live_days / 252) * 20)
    assert out["dying_view_retired_within_3m"] is None and math.isnan(out["detection_lag_days_median"])


def test_a_market_without_alpha_has_no_healthy_model(zoo):
    events, status, registry = zoo
    out = lm.lifecycle_metrics(events, status, registry, has_alpha=False)
    assert math.isnan(out["false_retirements_per_20y"]) and math.isnan(out["false_retirements_all_per_20y"])
    assert out["false_retirements_n"] == 4  # still counted, for the record


def test_live_share_at_the_end_and_retirements_by_rule(zoo):
    events, status, registry = zoo
    status.loc[(status["model_id"] == "h") & (status["date"] == CAL[-1]), "status"] = "promoted"
    out = lm.lifecycle_metrics(events, status, registry)
    assert out["models_live_end"] == "1/6" and out["share_active_end"] == pytest.approx(1 / 6)
    assert out["retired_by_rule"] == "changepoint 2, negative_months 2, never_activated 1, view_decay 1"
    assert out["successors"] is None  # no generation column: nothing to say


def test_a_retrained_successor_is_counted_and_its_first_retirement_after_the_death_detects_it(zoo):
    events, status, registry = zoo
    events["generation"] = 1
    again = pd.DataFrame([_event("d1", DEATH_AT + 200, "negative_edge", generation=2)])
    events = pd.concat([events, again], ignore_index=True)
    out = lm.lifecycle_metrics(events, status, registry, dying_views="microstructure", death_date=CAL[DEATH_AT])
    assert out["successors"] == 1
    assert out["dying_view_retired_within_3m"] == "1/2" and out["detection_lag_days_median"] == 55
    assert "negative_edge 1" in out["retired_by_rule"]


def test_the_manifest_names_the_dying_view(tmp_path):
    assert lm.channel_views("order_imbalance") == ("microstructure",)
    assert lm.channel_views("iv_spread") == ("alt_data",)
    (tmp_path / "oracle").mkdir()
    meta = {"channels": ["pead", "order_imbalance"], "channel_weights": {"pead": 0.001, "order_imbalance": 0.003},
            "dying_channel": "order_imbalance", "decay_date": "2021-10-15"}
    (tmp_path / "oracle" / "meta.json").write_text(json.dumps(meta))
    truth = lm.market_truth(lm.read_manifest(tmp_path), "default")
    assert truth["dying_views"] == ("microstructure",) and truth["death_date"] == pd.Timestamp("2021-10-15")
    assert truth["has_alpha"]
    flat = {**meta, "channel_weights": {"pead": 0.0, "order_imbalance": 0.0}, "dying_channel": None}
    assert not lm.market_truth(flat)["has_alpha"]
    assert not lm.market_truth(meta, "no_alpha")["has_alpha"]
    assert lm.market_truth(None)["has_alpha"] and lm.market_truth(None)["death_date"] is None


def test_ensemble_against_the_walk_forward_best():
    assert lm.at_least(0.05, 0.048) == "yes" and lm.at_least(0.04, 0.048) == "no"
    assert lm.at_least(float("nan"), 0.048) is None


def test_retirements_are_judged_by_the_retired_models_rank_among_its_peers_the_year_after():
    """A model retired before it fell behind every peer ranks last the year after (percentile 0); a model
    retired in a lull it shared ranks where it ranked before; a candidate that never went live is not
    a detection, and a retirement without `min_days` of history after it is not judged."""
    cal = pd.bdate_range("2015-01-01", periods=800)
    ics = {"decayed": [0.05] * 400 + [-0.02] * 400, "lull": [0.04] * 800,
           **{f"peer{i}": [0.03 + 0.005 * i] * 800 for i in range(4)}}
    daily = pd.concat([pd.DataFrame({"model_id": m, "date": cal, "ic": v}) for m, v in ics.items()])
    events = pd.DataFrame({"date": [cal[400], cal[400], cal[100], cal[700]],
                           "model_id": ["decayed", "lull", "peer0", "peer1"], "event": "retired",
                           "rule": ["changepoint", "changepoint", "never_activated", "negative_edge"]})
    out = lm.retirements_after(events, daily)
    assert out["retired_after_n"] == 2        # peer0 never went live; peer1 has 100 days after, < 126
    # decayed: below all 5 others (0); lull (0.04): above decayed, peer0 and peer1, not above its tie peer2 (3/5)
    assert out["retired_after_percentile"] == pytest.approx((0.0 + 3 / 5) / 2)
    assert out["retired_after_ic"] == pytest.approx((-0.02 + 0.04) / 2)
    assert lm.retirements_after(events.iloc[:0], daily)["retired_after_n"] == 0
