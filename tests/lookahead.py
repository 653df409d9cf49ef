"""The one no-look-ahead check every family's walk-forward test uses (tests/test_training.py and the
families' own test files): scramble every label dated after fold k's training window and every feature
dated after its test period; no prediction dated up to that test period's end may move, later ones must."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def poison_after(frames: Mapping[str, pd.DataFrame], fold: pd.Series, keep: tuple[str, ...] = (),
                 seed: int = 9) -> dict[str, pd.DataFrame]:
    """Copies of `frames` with labels after the fold's `train_end` and features after its `test_end`
    replaced by noise; frames named in `keep` (no dates, e.g. static categories) pass through."""
    label_cut, feature_cut = pd.Timestamp(fold["train_end"]), pd.Timestamp(fold["test_end"])
    rng = np.random.default_rng(seed)
    poisoned = {}
    for name, frame in frames.items():
        if name in keep:
            poisoned[name] = frame
            continue
        frame = frame.copy()
        later = pd.to_datetime(frame["date"]) > (label_cut if name == "labels" else feature_cut)
        for col in frame.columns.drop(["symbol", "date"]):
            frame.loc[later, col] = rng.standard_normal(int(later.sum()))
        poisoned[name] = frame
    return poisoned


def assert_past_unchanged(base, other, fold: pd.Series) -> None:
    """Predictions up to the fold's test end are bit-identical (and cover part of its test period);
    later ones differ."""
    upto = base.predictions["date"] <= pd.Timestamp(fold["test_end"])
    assert upto.sum() > 0 and (base.predictions.loc[upto, "date"] >= pd.Timestamp(fold["test_start"])).any()
    np.testing.assert_array_equal(base.predictions.loc[upto, "score"].to_numpy(),
                                  other.predictions.loc[upto, "score"].to_numpy())
    assert not np.allclose(base.predictions.loc[~upto, "score"], other.predictions.loc[~upto, "score"])
