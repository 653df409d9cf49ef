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
