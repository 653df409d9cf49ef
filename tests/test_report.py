"""`aurora report`: the best single model is headlined as the walk-forward pick; the hindsight best
appears only as a labelled diagnostic."""

from __future__ import annotations

from ml.evaluation import BEST_SINGLE_WALK_FORWARD
from ml.report import REPORT_KEYS, render_report


def test_best_single_model_headline_is_the_walk_forward_pick_and_hindsight_only_a_diagnostic():
    assert {"best_single_model_rank_ic", "best_single_model_share_of_oracle"} <= set(REPORT_KEYS)
    assert not [k for k in REPORT_KEYS if "hindsight" in k]
    text = render_report({"best_single_model_rank_ic": 0.0532, "best_single_model": BEST_SINGLE_WALK_FORWARD,
                          "best_single_model_share_of_oracle": 0.66, "best_single_model_rank_ic_hindsight": 0.0569,
                          "best_single_model_hindsight": "bayes_ridge-all"})
    lines = text.splitlines()
    headline = next(line for line in lines if line.strip().startswith("best_single_model_rank_ic "))
    assert "0.0532" in headline and "walk-forward" in headline and "hindsight" not in headline
    assert "best_single_model_share_of_oracle" in text and "0.6600" in text
    hindsight = [line for line in lines if "0.0569" in line]
    assert len(hindsight) == 1 and "hindsight" in hindsight[0] and "not a headline" in hindsight[0]
    assert "bayes_ridge-all" in hindsight[0]
    assert "hindsight" not in render_report({"best_single_model_rank_ic": 0.0532})  # no diagnostic, no line


def test_share_of_oracle_is_derived_on_reading_and_absent_without_both_figures():
    from ml.report import share_of_oracle

    assert share_of_oracle({"best_single_model_rank_ic": 0.05, "oracle_rank_ic": 0.08}) == 0.05 / 0.08
    assert share_of_oracle({"best_single_model_rank_ic": 0.05, "oracle_rank_ic": None}) is None
    assert share_of_oracle({"best_single_model_rank_ic": None, "oracle_rank_ic": 0.08}) is None
    assert share_of_oracle({"best_single_model_rank_ic": 0.05, "oracle_rank_ic": 0.0}) is None
