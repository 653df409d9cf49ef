"""A model's daily IC against its peers' on the same dates: what the retirement rules can judge instead
of the IC itself.

On real panels every model's IC dips together in a bad year (the whole market's cross-sectional edge
lulls), and a rule that judges a model against zero cannot tell that common lull from the model's own
decay: on both real panels the models the lifecycle retired were as good as their peers the year after
(BENCHMARKS.md, "Were the retirements right?"). Subtracting the peers' mean IC on the same date removes
what every model shares; what is left falls only when the model falls behind the zoo, as a dying
channel's models do.

A model's peers are the other models of its label group with an IC on that date, whatever their status
(a status-independent yardstick: retiring a model does not move it). With `exclude: view` they are the
models of the other feature views: a channel that dies takes most of its own view's models with it, and
those must not be each other's yardstick. The value on a date is known when the model's own IC is (the
same labels), so nothing is learned earlier than before.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def peer_relative(daily: pd.DataFrame, min_peers: int = 3, views: Mapping[str, str | None] | None = None,
                  exclude: str = "model") -> pd.DataFrame:
    """`daily` (model_id, date, ic) with each ic minus the mean IC of its peers on that date, and a
    `peer_ic` column (NaN where none was subtracted). `exclude`: `model` (every other model: a model is
    never its own yardstick) or `view` (the models of other views, `views` giving each model's; a model
    without one is a view of its own). On a date with fewer than `min_peers` peers the IC is left as it
    is: judged against zero, as without peers."""
    if exclude not in ("model", "view"):
        raise ValueError(f"peers.exclude must be model | view, got {exclude!r}")
    frame = daily.copy()
    ic = frame["ic"].astype(float)
    ok = ic.notna()
    group = frame["model_id"].astype(str)
    if exclude == "view":  # one lookup per model, not per row
        group = group.map({m: (views or {}).get(m) or f"model:{m}" for m in group.unique()})
    valid = pd.DataFrame({"date": frame["date"], "group": group, "ic": ic.where(ok, 0.0), "n": ok.astype(int)})
    by_date = valid.groupby("date")[["ic", "n"]].transform("sum")
    by_group = valid.groupby(["date", "group"])[["ic", "n"]].transform("sum")
    others = by_date["n"] - by_group["n"]
    peer = (by_date["ic"] - by_group["ic"]) / others.where(others > 0)
    frame["peer_ic"] = peer.where(others >= max(int(min_peers), 1)).to_numpy(dtype=float)
    frame["ic"] = np.where(np.isfinite(frame["peer_ic"]), ic - frame["peer_ic"], ic)
    return frame
