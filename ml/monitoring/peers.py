"""A model's daily IC against its peers' on the same dates: what the retirement rules can judge instead
of the IC itself.

On real panels every model's IC dips together in a bad year (the whole market's cross-sectional edge
lulls), and a rule that judges a model against zero cannot tell that common lull from the model's own
decay: on both real panels the models the lifecycle retired were as good as their peers the year after
(BENCHMARKS.md, "Were the retirements right?"). Subtracting the other models' mean IC on the same date
removes what every model shares; what is left falls only when the model falls behind the zoo, as a
dying channel's models do.

The peers of a model are every other model of its label group with an IC on that date, whatever its
status (a status-independent yardstick: retiring a model does not move it). The value on a date is known
when the model's own IC is (the same labels), so nothing is learned earlier than before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def peer_relative(daily: pd.DataFrame, min_peers: int = 3) -> pd.DataFrame:
    """`daily` (model_id, date, ic) with each ic minus the mean IC of the other models on that date
    (leave-one-out, so a model is never its own yardstick). On a date with fewer than `min_peers`
    other models the IC is left as it is: judged against zero, as without peers. Adds `peer_ic`
    (NaN where no peer level was subtracted)."""
    frame = daily.copy()
    ic = frame["ic"].astype(float)
    ok = ic.notna()
    by_date = frame.loc[ok].groupby("date")["ic"]
    total = frame["date"].map(by_date.sum()).astype(float)
    count = frame["date"].map(by_date.count()).fillna(0).astype(int)
    others = count - ok.astype(int)
    peer = (total - ic.where(ok, 0.0)) / others.where(others > 0)
    peer = peer.where(others >= max(int(min_peers), 1))
    frame["peer_ic"] = peer.to_numpy(dtype=float)
    frame["ic"] = np.where(np.isfinite(frame["peer_ic"]), ic - frame["peer_ic"], ic)
    return frame
