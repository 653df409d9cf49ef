"""Feast layer (`ml.feature_store`, `feature_repo/definitions.py`) on stand-in marts.

The stand-in marts have the dbt contract's shape (symbol, date32 date, double features; late listers
and early delisters). One symbol has gaps cut into its price_momentum rows so that entity dates fall
between feature rows: a 3-business-day gap (bridged, within the 5-day ttl) and a 10-business-day gap
(beyond the ttl).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from standin_features import write_mart, write_standin_features

from ml import feature_store as fstore
from ml.contract import FEATURE_VIEWS
from ml.paths import DataPaths

GAP_SYMBOL = "S001"
SHORT_GAP = slice(100, 103)  # business-day positions removed from GAP_SYMBOL's price_momentum rows
LONG_GAP = slice(200, 210)


def _cut_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame.index[frame["symbol"] == GAP_SYMBOL]
    drop = list(rows[SHORT_GAP]) + list(rows[LONG_GAP])
    return frame.drop(index=drop).reset_index(drop=True)


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> tuple[DataPaths, dict[str, pd.DataFrame], pd.DataFrame]:
    paths = DataPaths(tmp_path_factory.mktemp("fs") / "data")
    marts = write_standin_features(paths.features, n_symbols=30, n_days=300, seed=3)
    full_pm = marts["price_momentum"]
    marts["price_momentum"] = _cut_gaps(full_pm)
    write_mart(marts["price_momentum"], paths.features / "price_momentum.parquet")
    fstore.apply(paths)
    return paths, marts, full_pm


def _features(marts: dict[str, pd.DataFrame], view: str) -> list[str]:
    return [c for c in marts[view].columns if c not in ("symbol", "date")]


# ------------------------------------------------------------------------------ registry / services
def test_definitions_discover_features_from_parquet_schemas(market):
    paths, marts, _ = market
    defs = fstore.build_definitions(paths)
    assert list(defs.views) == list(FEATURE_VIEWS)
    for view in FEATURE_VIEWS:
        assert defs.feature_names(view) == _features(marts, view)
        assert defs.sources[view].timestamp_field == "date"
        assert Path(defs.sources[view].path).is_absolute()
    assert defs.feature_names("labels") == _features(marts, "labels")
    assert defs.entity.join_key == "symbol"


def test_feature_services_for_all_views_and_each_view(market):
    paths, marts, _ = market
    fs = fstore.store(paths)
    services = {s.name: s for s in fs.list_feature_services()}
    assert set(services) == {"all_views"} | {f"{v}_service" for v in FEATURE_VIEWS}
    assert [p.name for p in services["all_views"].feature_view_projections] == list(FEATURE_VIEWS)
    for view in FEATURE_VIEWS:
        (proj,) = services[f"{view}_service"].feature_view_projections
        assert proj.name == view
        assert [f.name for f in proj.features] == _features(marts, view)
    assert {v.name for v in fs.list_feature_views()} == set(FEATURE_VIEWS) | {"labels"}
    rendered = (paths.feast / "feature_store.yaml").read_text()
    assert str(paths.feast / "registry.db") in rendered and "duckdb" in rendered


def test_apply_is_idempotent(market):
    paths, _, _ = market
    fs = fstore.store(paths)
    before = sorted((v.name, tuple(f.name for f in v.features)) for v in fs.list_feature_views())
    fs = fstore.apply(paths)
    fs = fstore.apply(paths)
    after = sorted((v.name, tuple(f.name for f in v.features)) for v in fs.list_feature_views())
    assert before == after
    assert len(fs.list_feature_services()) == len(FEATURE_VIEWS) + 1


# --------------------------------------------------------------------------------------- offline
def test_historical_retrieval_equals_mart_rows(market):
    paths, marts, _ = market
    keys = marts["labels"][["symbol", "date"]].sample(400, random_state=1).reset_index(drop=True)
    frame = fstore.training_frame(paths, keys)
    assert list(frame.columns[:2]) == ["symbol", "date"]
    pd.testing.assert_frame_equal(frame[["symbol", "date"]], keys)  # order and values as given
    expected_cols = [f"{v}__{f}" for v in FEATURE_VIEWS for f in _features(marts, v)]
    expected_cols += [f"labels__{f}" for f in _features(marts, "labels")]
    assert list(frame.columns[2:]) == expected_cols
    assert fstore.feature_columns(frame) == expected_cols[: -len(_features(marts, "labels"))]
    for view in (*FEATURE_VIEWS, "labels"):
        feats = _features(marts, view)
        want = keys.merge(marts[view], on=["symbol", "date"], how="left")
        got = frame[[f"{view}__{f}" for f in feats]].to_numpy()
        present = want[feats].notna().all(axis=1).to_numpy()
        # exact equality where the mart has the row (the gap rows of price_momentum fall back, below)
        assert np.array_equal(got[present], want[feats].to_numpy()[present])
        assert present.mean() > 0.95


def test_entity_between_rows_gets_the_earlier_row_never_a_later_one(market):
    paths, marts, full_pm = market
    pm = marts["price_momentum"]
    feats = _features(marts, "price_momentum")
    sym_full = full_pm[full_pm["symbol"] == GAP_SYMBOL].reset_index(drop=True)
    short_gap_dates = list(sym_full["date"].iloc[SHORT_GAP])
    long_gap_dates = list(sym_full["date"].iloc[LONG_GAP])
    before_short = sym_full["date"].iloc[SHORT_GAP.start - 1]
    after_short = sym_full["date"].iloc[SHORT_GAP.stop]
    saturday = next(d for d in sym_full["date"] if d.weekday() == 4) + dt.timedelta(days=1)
    friday = saturday - dt.timedelta(days=1)
    keys = pd.DataFrame(
        {
            "symbol": GAP_SYMBOL,
            "date": [*short_gap_dates, after_short, saturday, friday, long_gap_dates[-1]],
        }
    )
    frame = fstore.training_frame(paths, keys, views="price_momentum", with_labels=True)
    got = frame[[f"price_momentum__{f}" for f in feats]].to_numpy()
    rows = pm[pm["symbol"] == GAP_SYMBOL].set_index("date")[feats]
    n_short = len(short_gap_dates)
    # inside the short gap: the last row dated before the gap, not the row after it
    for i in range(n_short):
        assert np.array_equal(got[i], rows.loc[before_short].to_numpy())
        assert not np.array_equal(got[i], rows.loc[after_short].to_numpy())
    # the first row after the gap is returned on its own date
    assert np.array_equal(got[n_short], rows.loc[after_short].to_numpy())
    # a Saturday gets Friday's row (same values as asking for Friday)
    assert np.array_equal(got[n_short + 1], rows.loc[friday].to_numpy())
    assert np.array_equal(got[n_short + 2], rows.loc[friday].to_numpy())
    # 10 business days without a row is beyond the 5-day ttl: nothing, rather than a stale row
    assert np.isnan(got[n_short + 3]).all()
    # labels match their own date only: none on a Saturday (no label row), Friday's on Friday
    labels = frame[fstore.label_columns(frame)].to_numpy()
    assert np.isnan(labels[n_short + 1]).all()
    assert not np.isnan(labels[n_short + 2]).any()


def test_entity_dates_as_timestamps_strings_or_tz_aware_keep_their_calendar_date(market):
    paths, marts, _ = market
    pm = marts["sector_neutral"]
    row = pm.iloc[777]
    d = row["date"]
    variants = [
        d,
        pd.Timestamp(d),
        pd.Timestamp(d).isoformat(),
        pd.Timestamp(d, tz="America/New_York") + pd.Timedelta(hours=16),  # the close, New York time
        pd.Timestamp(d, tz="Asia/Tokyo") + pd.Timedelta(hours=1),
    ]
    feats = _features(marts, "sector_neutral")
    for value in variants:
        keys = pd.DataFrame({"symbol": [row["symbol"]], "date": [value]})
        frame = fstore.training_frame(paths, keys, views="sector_neutral_service", with_labels=False)
        assert list(frame.columns) == ["symbol", "date", *[f"sector_neutral__{f}" for f in feats]]
        assert np.array_equal(frame.iloc[0, 2:].to_numpy(dtype=float), row[feats].to_numpy(dtype=float)), (
            value
        )


def test_views_argument_and_errors(market):
    paths, marts, _ = market
    keys = marts["labels"][["symbol", "date"]].head(50)
    two = fstore.training_frame(paths, keys, views=["fundamental", "alt_data_service"], with_labels=False)
    assert {c.split("__")[0] for c in two.columns[2:]} == {"fundamental", "alt_data"}
    dup_keys = pd.concat([keys, keys], ignore_index=True)
    dup = fstore.training_frame(paths, dup_keys, views="microstructure", with_labels=False)
    assert len(dup) == 100 and dup.iloc[:50, 2:].equals(dup.iloc[50:, 2:].reset_index(drop=True))
    with pytest.raises(fstore.FeatureStoreError, match="unknown feature view or service 'nope'"):
        fstore.training_frame(paths, keys, views="nope")
    with pytest.raises(fstore.FeatureStoreError, match="symbol and date"):
        fstore.training_frame(paths, keys.rename(columns={"date": "day"}))


# ---------------------------------------------------------------------------------------- online
def _latest_rows(mart: pd.DataFrame, upto: dt.date | None = None) -> pd.DataFrame:
    if upto is not None:
        mart = mart[mart["date"] <= upto]
    return mart.sort_values("date").groupby("symbol").tail(1).set_index("symbol")


def test_online_vectors_equal_latest_mart_row_after_materialize(market):
    paths, marts, _ = market
    dates = sorted(marts["labels"]["date"].unique())
    middle = dates[150]
    symbols = sorted(marts["labels"]["symbol"].unique())
    logged: list[str] = []
    timings = fstore.materialize(paths, dates[0], middle, log=logged.append)
    assert set(timings) == set(FEATURE_VIEWS) and len(logged) == len(FEATURE_VIEWS) + 1
    for upto in (middle, None):
        if upto is None:  # the rest of the range, on top of the first part
            fstore.materialize(paths, dates[151], dates[-1], log=None)
        vectors = fstore.online_vectors(paths, [*symbols, "UNKNOWN"], view_dates=True)
        assert vectors["symbol"].tolist() == [*symbols, "UNKNOWN"]
        assert vectors.iloc[-1, 2:].isna().all() and vectors.iloc[-1]["date"] is None
        vectors = vectors.set_index("symbol").loc[symbols]
        view_dates = []
        for view in FEATURE_VIEWS:
            latest = _latest_rows(marts[view], upto)
            feats = _features(marts, view)
            listed = [s for s in symbols if s in latest.index]
            assert np.array_equal(
                vectors.loc[listed, [f"{view}__{f}" for f in feats]].to_numpy(),
                latest.loc[listed, feats].to_numpy(),
            )
            assert vectors.loc[listed, f"{view}__asof"].tolist() == latest.loc[listed, "date"].tolist()
            view_dates.append(latest["date"].rename(view))
        newest = pd.concat(view_dates, axis=1).max(axis=1)
        assert vectors.loc[newest.index, "date"].tolist() == newest.tolist()
        assert vectors.drop(index=newest.index)["date"].isna().all()
    only = fstore.online_vectors(paths, symbols[:3], views="microstructure_service")
    assert list(only.columns) == [
        "symbol",
        "date",
        *[f"microstructure__{f}" for f in _features(marts, "microstructure")],
    ]


# ------------------------------------------------------------------------- marts come and go
def test_absent_views_new_features_and_stale_registry(tmp_path):
    paths = DataPaths(tmp_path / "data")
    marts = write_standin_features(
        paths.features, n_symbols=6, n_days=40, views=("price_momentum", "sector_neutral")
    )
    fstore.apply(paths)
    fs = fstore.store(paths)
    assert {s.name for s in fs.list_feature_services()} == {
        "all_views",
        "price_momentum_service",
        "sector_neutral_service",
    }
    keys = marts["labels"][["symbol", "date"]]
    assert fstore.training_frame(paths, keys).shape[1] == 2 + sum(len(_features(marts, v)) for v in marts)

    # an analyst adds a feature in SQL: the registry is stale until apply
    pm = marts["price_momentum"].assign(new_signal=np.arange(len(keys), dtype=float))
    write_mart(pm, paths.features / "price_momentum.parquet")
    with pytest.raises(fstore.FeatureStoreError, match=r"new features \['new_signal'\].*apply"):
        fstore.training_frame(paths, keys)
    fstore.apply(paths)
    frame = fstore.training_frame(paths, keys, views="price_momentum_service", with_labels=False)
    assert np.array_equal(frame["price_momentum__new_signal"].to_numpy(), pm["new_signal"].to_numpy())

    # a view's inputs disappear: its mart is gone, apply removes it and its service
    (paths.features / "sector_neutral.parquet").unlink()
    fstore.apply(paths)
    fs = fstore.store(paths)
    assert {v.name for v in fs.list_feature_views()} == {"price_momentum", "labels"}
    assert {s.name for s in fs.list_feature_services()} == {"all_views", "price_momentum_service"}


# ------------------------------------------------------------------------------------ time zones
TZ_CHECK = """
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[2])
from standin_features import write_standin_features
from ml import feature_store as fstore
from ml.paths import DataPaths
paths = DataPaths(Path(sys.argv[1]))
marts = write_standin_features(paths.features, n_symbols=4, n_days=30, views=("price_momentum",))
fstore.apply(paths)
keys = marts["price_momentum"][["symbol", "date"]]
frame = fstore.training_frame(paths, keys)
feats = [c for c in marts["price_momentum"].columns if c not in ("symbol", "date")]
assert np.array_equal(frame[["price_momentum__" + f for f in feats]].to_numpy(), marts["price_momentum"][feats].to_numpy())
labels = [c for c in marts["labels"].columns if c not in ("symbol", "date")]
assert np.array_equal(frame[["labels__" + f for f in labels]].to_numpy(), marts["labels"][labels].to_numpy())
fstore.materialize(paths, None, None, log=None)
online = fstore.online_vectors(paths, ["S000"])
assert online["date"].iloc[0] == keys["date"].max(), online
print("same-day semantics hold")
"""


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "America/Los_Angeles"])
def test_dates_do_not_shift_with_the_machine_time_zone(tmp_path, tz):
    """UTC+14 and UTC-8 processes: a feature dated t still serves entity rows dated t (fresh process)."""
    tests_dir = Path(__file__).parent
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(TZ_CHECK), str(tmp_path / "data"), str(tests_dir)],
        env={**os.environ, "TZ": tz},
        cwd=tests_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "same-day semantics hold" in proc.stdout
