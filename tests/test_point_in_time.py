"""A point-in-time test that cannot be fooled.

Build the features once. Then alter every raw row published after a cut-off date D (prices,
fundamentals, estimates, short interest, options, insider trades, ETF prices and flows, and the
delisting dates that were still in the future at D), rebuild, and require every feature value dated
on or before D to be identical. Labels look forward by design and are exempt.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.contract import FEATURE_VIEWS
from ml.market import MarketConfig, write_market
from ml.paths import DataPaths

CUTOFF_INDEX = 300  # business day index of D in a 420-day market

# numeric columns to scramble per table, and the column that says when a row became public
ALTERATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "prices": ("date", ("open", "high", "low", "close", "vwap", "volume", "spread_bps", "order_imbalance")),
    "fundamentals": (
        "report_date",
        ("eps", "revenue", "net_income", "operating_cash_flow", "total_assets", "total_liabilities",
         "book_equity", "shares_outstanding"),
    ),
    "estimates": ("as_of_date", ("consensus_eps", "eps_std", "n_analysts")),
    "short_interest": ("publish_date", ("shares_short", "avg_daily_volume")),
    "options_iv": ("date", ("iv_call_30d", "iv_put_30d")),
    "insider_trades": ("filing_date", ("shares", "price")),
    "etf_prices": ("date", ("close", "volume")),
    "etf_flows": ("date", ("net_flow_usd",)),
}


def _alter_after(raw: Path, cutoff: pd.Timestamp, seed: int = 99) -> dict[str, int]:
    """Scramble every row published after `cutoff`, keeping each row valid; return rows altered."""
    rng = np.random.default_rng(seed)
    altered = {}
    for table, (published, columns) in ALTERATIONS.items():
        path = raw / f"{table}.parquet"
        frame = pd.read_parquet(path)
        late = pd.to_datetime(frame[published]) > cutoff
        altered[table] = int(late.sum())
        factor = np.exp(rng.normal(0, 0.3, late.sum()))
        for col in columns:
            values = frame.loc[late, col]
            if col == "order_imbalance":
                frame.loc[late, col] = -values  # stays in [-1, 1]
            elif col == "n_analysts":
                frame.loc[late, col] = (values + 3).astype(values.dtype)
            elif col in ("eps", "net_income", "operating_cash_flow", "net_flow_usd", "consensus_eps"):
                frame.loc[late, col] = values * factor - 0.5 * values.abs().mean()
            else:
                frame.loc[late, col] = values * factor  # the same factor per row keeps high >= low
        if table == "insider_trades":
            frame.loc[late, "side"] = np.where(frame.loc[late, "side"] == "B", "S", "B")
        frame.to_parquet(path, index=False)
    securities = pd.read_parquet(raw / "securities.parquet")
    future = pd.to_datetime(securities["delisted_date"]) > cutoff
    securities.loc[future, "delisted_date"] = None  # at D nobody knew these names would delist
    securities.to_parquet(raw / "securities.parquet", index=False)
    altered["securities"] = int(future.sum())
    return altered


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    from ml.warehouse import build_features

    root = tmp_path_factory.mktemp("pit")
    original, tampered = root / "original", root / "tampered"
    write_market(MarketConfig(n_symbols=40, n_days=420, seed=13), original / "raw")
    shutil.copytree(original / "raw", tampered / "raw")
    cutoff = pd.Timestamp(pd.bdate_range("2017-01-02", periods=420)[CUTOFF_INDEX])
    altered = _alter_after(tampered / "raw", cutoff)
    silent = lambda *_a, **_k: None  # noqa: E731
    build_features(DataPaths(original), log=silent)
    build_features(DataPaths(tampered), log=silent)
    return original, tampered, cutoff, altered


def test_the_tampering_really_touched_every_table(builds):
    _, _, _, altered = builds
    assert all(n > 0 for n in altered.values()), altered


def test_features_after_the_cutoff_do_change(builds):
    """Guards against a vacuous pass: the tampering must be visible after D."""
    original, tampered, cutoff, _ = builds
    changed = []
    for view in FEATURE_VIEWS:
        a = pd.read_parquet(original / "features" / f"{view}.parquet")
        b = pd.read_parquet(tampered / "features" / f"{view}.parquet")
        a, b = (f[pd.to_datetime(f["date"]) > cutoff].sort_values(["symbol", "date"]) for f in (a, b))
        changed.append(not a.reset_index(drop=True).equals(b.reset_index(drop=True)))
    assert all(changed)


@pytest.mark.parametrize("view", FEATURE_VIEWS)
def test_every_feature_value_up_to_the_cutoff_is_identical(builds, view):
    original, tampered, cutoff, _ = builds
    a = pd.read_parquet(original / "features" / f"{view}.parquet")
    b = pd.read_parquet(tampered / "features" / f"{view}.parquet")
    a, b = (
        f[pd.to_datetime(f["date"]) <= cutoff].sort_values(["symbol", "date"]).reset_index(drop=True)
        for f in (a, b)
    )
    assert len(a) > 0 and list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
