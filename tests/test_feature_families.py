"""The feature families of macros/feature_families.sql, recomputed from the raw tables with pandas.

Each family's SQL must equal a plain, obviously point-in-time definition: a window ends at the row's
own date, a sector aggregate uses that date's names, and an event counts from its publication date
with the weight 2^(-age / half-life). (tests/test_point_in_time.py separately proves that no value
dated on or before a cut-off moves when anything published after it changes.) Event kernels stop at 4
half-lives, so a family's value is exactly 0 once every event is old.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.market import MarketConfig, write_market
from ml.paths import DataPaths

HALF_LIVES = (5, 20, 60)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from ml.warehouse import build_features

    root = tmp_path_factory.mktemp("families")
    write_market(MarketConfig(n_symbols=30, n_days=320, seed=21), root / "raw")
    build_features(DataPaths(root), log=lambda *_a, **_k: None)
    return root


def _mart(root, view: str) -> pd.DataFrame:
    frame = pd.read_parquet(root / "features" / f"{view}.parquet")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.sort_values(["symbol", "date"]).reset_index(drop=True)


def _decayed(panel: pd.DataFrame, events: pd.DataFrame, size: str, half_life: float) -> np.ndarray:
    """sum over events published in the last 4 half-lives (age in [0, 4h)) of size * 2^(-age / h)."""
    out = np.full(len(panel), np.nan)
    for symbol, rows in panel.groupby("symbol").groups.items():
        ev = events[events["symbol"] == symbol]
        if ev.empty:
            continue
        dates = panel.loc[rows, "date"].to_numpy("datetime64[D]")
        age = (dates[:, None] - ev["event_date"].to_numpy("datetime64[D]")[None, :]).astype(float)
        weight = np.where((age >= 0) & (age < 4 * half_life), np.power(2.0, -np.clip(age, 0, None) / half_life), 0.0)
        seen = (age >= 0).any(axis=1)
        out[rows] = np.where(seen, weight @ ev[size].fillna(0).to_numpy(float), np.nan)
    return out


def test_price_family_windows_are_trailing_simple_returns(built):
    prices = pd.read_parquet(built / "raw" / "prices.parquet")
    prices["date"] = pd.to_datetime(prices["date"])
    prices = prices.sort_values(["symbol", "date"]).reset_index(drop=True)
    mart = _mart(built, "price_momentum").merge(prices[["symbol", "date", "close"]], on=["symbol", "date"])
    for w in (2, 3, 10, 63):
        expected = mart["close"] / mart.groupby("symbol")["close"].shift(w) - 1
        np.testing.assert_allclose(mart[f"ret_{w}d"], expected, rtol=1e-9, atol=1e-12, err_msg=f"ret_{w}d")
    z = mart.groupby("date")["ret_10d_z"]
    assert np.nanmax(np.abs(z.mean())) < 0.05 and np.nanmax(np.abs(z.std() - 1)) < 0.05


def test_residual_family_sums_the_daily_residuals_over_each_window(built):
    mart = _mart(built, "sector_neutral")
    for w in (2, 10, 63):
        expected = mart.groupby("symbol")["resid_ret_1d"].transform(lambda s, w=w: s.rolling(w, min_periods=w).sum())
        np.testing.assert_allclose(mart[f"resid_ret_{w}d"], expected, rtol=1e-7, atol=1e-10, err_msg=f"resid_ret_{w}d")


def test_sector_family_compares_each_name_with_its_sector_on_the_same_date(built):
    mart = _mart(built, "sector_neutral")
    sectors = pd.read_parquet(built / "raw" / "securities.parquet")[["symbol", "sector"]]
    returns = _mart(built, "price_momentum")[["symbol", "date", "ret_21d"]]
    mart = mart.merge(sectors, on="symbol").merge(returns, on=["symbol", "date"])
    mean = mart.groupby(["date", "sector"])["ret_21d"].transform("mean")
    np.testing.assert_allclose(mart["sector_ret_21d"], mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mart["ret_21d_vs_sector"], mart["ret_21d"] - mean, rtol=1e-9, atol=1e-12)
    rank = mart.groupby(["date", "sector"])["ret_21d"].rank(method="min") - 1
    count = mart.groupby(["date", "sector"])["ret_21d"].transform("count") - 1
    expected = (rank / count.replace(0, np.nan)).where(mart["ret_21d"].notna())
    np.testing.assert_allclose(mart["ret_21d_sector_rank"], expected, rtol=1e-9, atol=1e-12)


def test_insider_filings_decay_from_their_filing_date(built):
    trades = pd.read_parquet(built / "raw" / "insider_trades.parquet")
    trades["event_date"] = pd.to_datetime(trades["filing_date"])
    trades["net"] = np.where(trades["side"].str.upper() == "B", 1.0, -1.0)
    events = trades.groupby(["symbol", "event_date"], as_index=False)["net"].sum()
    mart = _mart(built, "alt_data")
    assert len(events) > 50
    for h in HALF_LIVES:
        expected = _decayed(mart, events, "net", h)
        np.testing.assert_allclose(mart[f"insider_net_buys_hl{h}"], expected, rtol=1e-9, atol=1e-9, err_msg=f"hl{h}")


def test_earnings_surprises_decay_from_their_report_date(built):
    con = duckdb.connect(str(DataPaths(built).warehouse), read_only=True)
    try:
        surprises = con.sql("select symbol, report_date, period_end, sue from int_earnings_surprise_computed").df()
    finally:
        con.close()
    surprises["event_date"] = pd.to_datetime(surprises["report_date"])
    events = surprises.groupby(["symbol", "event_date"], as_index=False)["sue"].sum(min_count=1)
    mart = _mart(built, "fundamental")
    assert events["sue"].notna().sum() > 50
    for h in HALF_LIVES:
        expected = _decayed(mart, events, "sue", h)
        np.testing.assert_allclose(mart[f"earnings_sue_hl{h}"], expected, rtol=1e-9, atol=1e-9, err_msg=f"hl{h}")


def test_a_report_counts_from_its_publication_day_and_not_before(built):
    """The day before a report the fast decay is the old surprise aged; on the report day it jumps."""
    mart = _mart(built, "fundamental")
    fast = mart.groupby("symbol")["earnings_sue_hl5"]
    jumped = mart["days_since_report"].eq(0) & fast.shift(1).notna()
    assert jumped.sum() > 10
    before = fast.shift(1)[jumped].to_numpy()
    gap = (mart["date"] - mart.groupby("symbol")["date"].shift(1)).dt.days[jumped].to_numpy()
    today = mart.loc[jumped, "earnings_sue_hl5"].to_numpy()
    # today's value = yesterday's aged by the gap + the new surprise (never the new one a day early)
    new = today - before * np.power(2.0, -gap / 5)
    assert np.all(np.isfinite(new)) and np.abs(new).max() > 0.1


@pytest.mark.parametrize("view", ["price_momentum", "sector_neutral", "fundamental", "alt_data"])
def test_every_family_column_is_finite_or_null(built, view):
    mart = _mart(built, view)
    values = mart.drop(columns=["symbol", "date"]).to_numpy(dtype=float, na_value=np.nan)
    assert not np.isinf(values).any()
