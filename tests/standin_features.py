"""Stand-in feature marts: random numbers in the shape the dbt project writes (see DESIGN.md).

`features/<view>.parquet` and `features/labels.parquet`, columns `symbol` (string), `date` (date32),
then the view's double features; unique (symbol, date). Used by the Feast and quality tests and by
`bench/bench_feast.py` until (and besides) the real marts exist. Symbols list late and delist early
so that not every symbol has every date, like the synthetic market.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.contract import FEATURE_VIEWS

LABEL_COLUMNS = (
    "fwd_ret_1d",
    "fwd_ret_5d",
    "fwd_ret_21d",
    "fwd_ret_sn_1d",
    "fwd_ret_sn_5d",
    "fwd_ret_sn_21d",
)


def standin_panel(n_symbols: int, n_days: int, start: str = "2017-01-02") -> pd.DataFrame:
    """(symbol, date) rows of a panel where ~10% of names list late or delist early."""
    dates = pd.bdate_range(start, periods=n_days)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n_symbols):
        lo, hi = 0, n_days
        if i % 10 == 3:
            lo = int(rng.integers(1, n_days // 3))
        if i % 10 == 7:
            hi = int(rng.integers(2 * n_days // 3, n_days))
        frames.append(pd.DataFrame({"symbol": f"S{i:03d}", "date": dates[lo:hi].date}))
    return pd.concat(frames, ignore_index=True)


def write_standin_features(
    features_dir: Path,
    n_symbols: int = 30,
    n_days: int = 300,
    seed: int = 1,
    views: tuple[str, ...] = FEATURE_VIEWS,
    with_labels: bool = True,
) -> dict[str, pd.DataFrame]:
    """Write one parquet per view (2-6 features each) plus labels; returns the frames written."""
    features_dir = Path(features_dir)
    features_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    panel = standin_panel(n_symbols, n_days)
    written: dict[str, pd.DataFrame] = {}
    for k, view in enumerate(views):
        n_features = 2 + (k * 3 + seed) % 5
        cols = {f"{view.split('_')[0]}_f{j}": rng.standard_normal(len(panel)) for j in range(n_features)}
        # one name that every view shares, to exercise clashes across views
        cols["zscore"] = rng.standard_normal(len(panel))
        written[view] = pd.concat([panel, pd.DataFrame(cols)], axis=1)
    if with_labels:
        labels = {c: rng.standard_normal(len(panel)) * 0.02 for c in LABEL_COLUMNS}
        written["labels"] = pd.concat([panel, pd.DataFrame(labels)], axis=1)
    for name, frame in written.items():
        write_mart(frame, features_dir / f"{name}.parquet")
    return written


def write_mart(frame: pd.DataFrame, path: Path) -> None:
    """Write with the mart's physical types: symbol string, date date32, features double."""
    fields = [pa.field("symbol", pa.string()), pa.field("date", pa.date32())]
    fields += [pa.field(c, pa.float64()) for c in frame.columns if c not in ("symbol", "date")]
    table = pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)
    pq.write_table(table, path)
