"""The market panel mart (models/marts/market_panel.sql): one definition of returns, spread, ADV, sigma
and beta in dbt, laid on the policy's grid by ml.backtest.market_panel_from_mart and read by
ml.evaluation.load_market."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.backtest import MART_COLUMNS, market_panel, market_panel_from_mart
from ml.contract import FEATURE_VIEWS
from ml.data.market_mart import read_market_mart
from ml.market import MarketConfig, write_market
from ml.paths import DataPaths
from ml.warehouse import MARTS, build_features

CONFIG = MarketConfig(n_symbols=30, n_days=300, seed=5)
CUTOFF_INDEX = 200
SELECT = "+market_panel"
VOL_WINDOW, VOL_MIN, ADV_WINDOW, ADV_MIN = 63, 21, 20, 5  # dbt_project.yml vars panel_*


def _silent(*_a, **_k) -> None:
    return None


def _tamper_after(raw: Path, cutoff: pd.Timestamp, seed: int = 7) -> int:
    """Scale every price and ETF row dated after `cutoff` by a random factor per row (high >= low kept)."""
    rng = np.random.default_rng(seed)
    altered = 0
    for table, columns in (("prices", ("open", "high", "low", "close", "vwap", "volume", "spread_bps")),
                           ("etf_prices", ("close", "volume"))):
        frame = pd.read_parquet(raw / f"{table}.parquet")
        late = pd.to_datetime(frame["date"]) > cutoff
        factor = np.exp(rng.normal(0, 0.3, late.sum()))
        for col in columns:
            frame.loc[late, col] = frame.loc[late, col] * factor
        frame.to_parquet(raw / f"{table}.parquet", index=False)
        altered += int(late.sum())
    return altered


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("market_mart")
    original, tampered = root / "original", root / "tampered"
    write_market(CONFIG, original / "raw")
    shutil.copytree(original / "raw", tampered / "raw")
    dates = np.sort(pd.to_datetime(pd.read_parquet(original / "raw" / "prices.parquet")["date"]).unique())
    cutoff = pd.Timestamp(dates[CUTOFF_INDEX])
    assert _tamper_after(tampered / "raw", cutoff) > 0
    result = build_features(DataPaths(original), log=_silent, select=SELECT)
    build_features(DataPaths(tampered), log=_silent, select=SELECT)
    return original, tampered, cutoff, result


def _query(root: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        frame = con.execute(sql).df()
    return frame.assign(date=pd.to_datetime(frame["date"]))


def _mart(root: Path) -> pd.DataFrame:
    return _query(root, "select * from main.market_panel order by symbol, date").reset_index(drop=True)


def _raw(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(root / "raw" / "prices.parquet"), pd.read_parquet(root / "raw" / "securities.parquet")


# ------------------------------------------------------------------------------------------------ the mart


def test_the_mart_and_its_dbt_tests_are_built(builds):
    _, _, _, result = builds
    mart_tests = [n for n in result.nodes if n.is_test and "market_panel" in n.unique_id]
    assert len(mart_tests) >= 15 and all(n.status == "pass" for n in mart_tests), [
        n.describe() for n in mart_tests if n.status != "pass"]
    assert any(n.name == "market_panel" and n.status == "success" for n in result.nodes)


def test_the_mart_is_a_warehouse_table_not_a_feature_view(builds):
    original, _, _, _ = builds
    assert "market_panel" not in FEATURE_VIEWS and "market_panel" not in MARTS
    assert not (original / "features" / "market_panel.parquet").exists()
    with duckdb.connect(str(original / "warehouse.duckdb"), read_only=True) as con:
        kind = con.execute("select table_type from information_schema.tables "
                           "where table_schema = 'main' and table_name = 'market_panel'").fetchall()
    assert kind == [("BASE TABLE",)]
    assert list(_mart(original).columns) == list(MART_COLUMNS)


def test_one_row_per_price_row_with_the_one_definition_of_returns(builds):
    original, _, _, _ = builds
    mart = _mart(original)
    computed = _query(original, "select symbol, date, close, volume, spread_bps, ret_1d "
                                "from main.int_returns_computed order by symbol, date").reset_index(drop=True)
    prices, _ = _raw(original)
    assert len(mart) == len(prices) == len(computed)
    pd.testing.assert_frame_equal(mart[["symbol", "date"]], computed[["symbol", "date"]])
    np.testing.assert_array_equal(mart["ret_1d"].to_numpy(), computed["ret_1d"].to_numpy())
    np.testing.assert_array_equal(mart["close"].to_numpy(), computed["close"].to_numpy())


def test_beta_is_the_dbt_beta_and_the_windows_are_trailing_rows(builds):
    original, _, _, _ = builds
    mart = _mart(original)
    resid = _query(original, "select symbol, date, beta_market from main.int_returns_residualized "
                             "order by symbol, date").reset_index(drop=True)
    np.testing.assert_array_equal(mart["beta"].to_numpy(), resid["beta_market"].to_numpy())
    assert mart["beta"].notna().mean() > 0.6

    by_symbol = mart.groupby("symbol", sort=False)
    sigma = by_symbol["ret_1d"].transform(lambda r: r.rolling(VOL_WINDOW, min_periods=VOL_MIN).std())
    adv = (mart["close"] * mart["volume"]).groupby(mart["symbol"], sort=False).transform(
        lambda v: v.rolling(ADV_WINDOW, min_periods=ADV_MIN).mean())
    spread = by_symbol["spread_bps"].ffill()
    np.testing.assert_allclose(mart["sigma"], sigma, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(mart["adv_value"], adv, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(mart["spread_bps"], spread, rtol=0, equal_nan=True)
    assert mart["sigma"].notna().mean() > 0.8 and mart["adv_value"].notna().mean() > 0.9
    assert mart["tradable"].all()  # the synthetic market always trades


def test_point_in_time_every_column_up_to_the_cutoff_is_unchanged(builds):
    original, tampered, cutoff, _ = builds
    a, b = _mart(original), _mart(tampered)
    early_a, early_b = (f[f["date"] <= cutoff].reset_index(drop=True) for f in (a, b))
    assert len(early_a) > 0
    pd.testing.assert_frame_equal(early_a, early_b, check_exact=True)
    late_a, late_b = (f[f["date"] > cutoff].reset_index(drop=True) for f in (a, b))
    for column in ("ret_1d", "spread_bps", "adv_value", "sigma", "beta"):  # the tampering is visible after D
        assert not np.allclose(late_a[column], late_b[column], equal_nan=True), column


# ------------------------------------------------------------------------------------- the policy's panel


def test_panel_from_the_mart_matches_the_raw_panel_and_carries_the_dbt_beta(builds):
    original, _, _, _ = builds
    mart = _mart(original)
    prices, securities = _raw(original)
    got = market_panel_from_mart(mart)
    raw = market_panel(prices, securities)
    assert got.dates.equals(raw.dates) and got.symbols.equals(raw.symbols)
    assert got.sectors == raw.sectors and (got.sector == raw.sector).all()
    np.testing.assert_array_equal(got.tradable, raw.tradable)
    np.testing.assert_allclose(got.returns, raw.returns, rtol=1e-12, atol=0, equal_nan=True)
    np.testing.assert_allclose(got.market_return, raw.market_return, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(got.close, raw.close)
    np.testing.assert_array_equal(got.high, raw.high)
    # the raw panel's windows (63-day volatility, 20-day ADV, last known spread) on the days a name trades;
    # after a delisting the mart's values stay at the last day's, the raw panel's windows drain
    live = got.tradable
    assert (~live).any()
    np.testing.assert_allclose(got.sigma[live], raw.sigma[live], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got.adv_value[live], raw.adv_value[live], rtol=1e-9, equal_nan=True)
    last = mart.groupby("symbol")["date"].max()
    for j, symbol in enumerate(got.symbols):
        after = got.dates > last[symbol]
        if after.any():  # delisted: carried forward from its last row
            row = mart[(mart["symbol"] == symbol) & (mart["date"] == last[symbol])].iloc[0]
            np.testing.assert_array_equal(got.sigma[after, j], row["sigma"])
            np.testing.assert_array_equal(got.adv_value[after, j], row["adv_value"])
    np.testing.assert_allclose(got.spread_bps, raw.spread_bps, rtol=0, equal_nan=True)
    # beta: the dbt beta where it is known, carried forward after a delisting, 1.0 before it is known
    dbt_beta = got.grid(mart.set_index(["date", "symbol"])["beta"])
    known = np.isfinite(dbt_beta)
    assert known.mean() > 0.5 and np.abs(dbt_beta[known]).max() < 3
    np.testing.assert_array_equal(got.beta[known], dbt_beta[known])
    never = ~np.maximum.accumulate(known, axis=0)
    assert never.any() and (got.beta[never] == 1.0).all()
    assert np.isfinite(got.beta).all()
    assert not np.allclose(got.beta, raw.beta)  # 126 days against the benchmark, not 252 against the panel


def test_non_tradable_rows_have_no_return_and_keep_their_statistics():
    rows = pd.DataFrame({
        "symbol": ["A", "A", "A", "B", "B", "B"],
        "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"] * 2),
        "sector": ["Tech"] * 3 + [None] * 3,
        "close": [10.0, 11.0, 12.0, 5.0, 5.5, 6.0],
        "high": [10.5, 11.5, 12.5, 5.2, 5.6, 6.1],
        "low": [9.5, 10.5, 11.5, 4.8, 5.4, 5.9],
        "volume": [100.0, 0.0, 100.0, 50.0, 50.0, 50.0],
        "ret_1d": [np.nan, 0.1, 12 / 11 - 1, np.nan, 0.1, 6 / 5.5 - 1],
        "tradable": [True, False, True, True, True, True],
        "spread_bps": [5.0, 6.0, 7.0, np.nan, 3.0, 4.0],
        "adv_value": [1000.0, 1050.0, 1100.0, 250.0, 260.0, 270.0],
        "sigma": [np.nan, 0.01, 0.02, np.nan, np.nan, 0.03],
        "beta": [np.nan, 0.8, 0.9, np.nan, 7.0, np.nan],
    })
    panel = market_panel_from_mart(rows.drop(index=5))  # B has no row on the last day
    assert list(panel.symbols) == ["A", "B"] and panel.sectors == ["Tech", "Unknown"]
    np.testing.assert_array_equal(panel.tradable, [[True, True], [False, True], [True, False]])
    np.testing.assert_allclose(panel.returns, [[np.nan, np.nan], [np.nan, 0.1], [12 / 11 - 1, np.nan]])
    np.testing.assert_allclose(panel.market_return, [np.nan, 0.1, 12 / 11 - 1])
    np.testing.assert_allclose(panel.spread_bps[2], [7.0, 3.0])  # B's last spread carried forward
    np.testing.assert_allclose(panel.adv_value[2], [1100.0, 260.0])
    np.testing.assert_allclose(panel.beta, [[1.0, 1.0], [0.8, 5.0], [0.9, 5.0]])  # clipped, carried, 1 unknown
    np.testing.assert_allclose(panel.high[:, 0], [10.5, 11.5, 12.5])


# -------------------------------------------------------------------------------------- load_market


def test_load_market_reads_the_mart_and_falls_back_to_raw_prices(builds, tmp_path):
    from ml.evaluation import load_market

    original, _, _, _ = builds
    mart = _mart(original)
    from_mart = load_market(DataPaths(original))
    expected = market_panel_from_mart(mart)
    np.testing.assert_array_equal(from_mart.beta, expected.beta)
    np.testing.assert_array_equal(from_mart.sigma, expected.sigma)

    # no warehouse: the raw prices
    raw_only = tmp_path / "raw_only"
    shutil.copytree(original / "raw", raw_only / "raw")
    prices, securities = _raw(original)
    fallback = load_market(DataPaths(raw_only))
    np.testing.assert_array_equal(fallback.beta, market_panel(prices, securities).beta)

    # a mart built from other prices (a newer day in raw/) is not used
    stale = tmp_path / "stale"
    shutil.copytree(original / "raw", stale / "raw")
    shutil.copy(original / "warehouse.duckdb", stale / "warehouse.duckdb")
    shorter = prices[pd.to_datetime(prices["date"]) < pd.to_datetime(prices["date"]).max()]
    shorter.to_parquet(stale / "raw" / "prices.parquet", index=False)
    assert read_market_mart(DataPaths(stale)) is None
    assert len(load_market(DataPaths(stale)).dates) == len(from_mart.dates) - 1

    # a warehouse without the mart
    bare = tmp_path / "bare"
    shutil.copytree(original / "raw", bare / "raw")
    duckdb.connect(str(bare / "warehouse.duckdb")).close()
    assert read_market_mart(DataPaths(bare)) is None
