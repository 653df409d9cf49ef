"""The embedded synthetic market keeps the statistical promises DESIGN.md and the issue make."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.baselines import price_only_score
from ml.contract import MARKET_ETF, TABLES
from ml.market import CHANNEL_DECAY, CHANNEL_STRENGTH, MarketConfig, generate_market, write_market
from ml.metrics import daily_ic, forward_returns


@pytest.fixture(scope="module")
def market():
    return generate_market(MarketConfig())


@pytest.fixture(scope="module")
def panel(market):
    """Oracle joined with realized forward returns, one row per live (symbol, date)."""
    prices = market.tables["prices"].assign(symbol=lambda f: f["symbol"].astype(str))
    oracle = market.oracle.assign(symbol=lambda f: f["symbol"].astype(str))
    return forward_returns(prices).merge(oracle, on=["date", "symbol"])


# --- calibrated strength -------------------------------------------------------------------------


def test_oracle_five_day_rank_ic_is_between_7_and_10_percent(panel):
    ic = daily_ic(panel, "er_5d", "fwd_5d")
    assert 0.07 <= ic.mean() <= 0.10, ic.mean()


@pytest.mark.parametrize("seed", [1, 2])
def test_oracle_ic_range_holds_for_other_seeds(seed):
    m = generate_market(MarketConfig(seed=seed))
    prices = m.tables["prices"].assign(symbol=lambda f: f["symbol"].astype(str))
    frame = forward_returns(prices, (5,)).merge(m.oracle.assign(symbol=lambda f: f["symbol"].astype(str)))
    assert 0.07 <= daily_ic(frame, "er_5d", "fwd_5d").mean() <= 0.10


def test_price_only_score_reaches_well_under_half_of_the_oracle(market, panel):
    scored = price_only_score(market.tables["prices"]).merge(panel, on=["date", "symbol"])
    price_only = daily_ic(scored, "score", "fwd_5d").mean()
    oracle = daily_ic(panel, "er_5d", "fwd_5d").mean()
    assert price_only < 0.4 * oracle, (price_only, oracle)


def test_no_channel_carries_more_than_a_third_of_oracle_variance(market):
    oracle = market.oracle
    total = oracle.groupby("date", observed=True)["er_5d"].var().mean()
    shares = {
        c: oracle.groupby("date", observed=True)[f"ch_{c}"].var().mean() / total for c in CHANNEL_STRENGTH
    }
    assert max(shares.values()) <= 1 / 3, shares
    assert min(shares.values()) > 0.02, shares  # every listed channel is really planted
    # also while the dying channel is alive (its share over the whole sample is diluted by its death)
    alive = oracle[pd.to_datetime(oracle["date"]) < pd.Timestamp(market.meta["decay_date"])]
    alive_total = alive.groupby("date", observed=True)["er_5d"].var().mean()
    alive_shares = {
        c: alive.groupby("date", observed=True)[f"ch_{c}"].var().mean() / alive_total for c in CHANNEL_STRENGTH
    }
    assert max(alive_shares.values()) <= 1 / 3, alive_shares


def test_oracle_er_5d_is_the_sum_of_its_channels(market):
    channels = market.oracle[[f"ch_{c}" for c in CHANNEL_STRENGTH]].sum(axis=1)
    np.testing.assert_allclose(channels, market.oracle["er_5d"], rtol=1e-9, atol=1e-12)


# --- publication lags: nothing is known before it is published ------------------------------------


def test_fundamentals_are_reported_20_to_45_days_after_period_end(market):
    f = market.tables["fundamentals"]
    lag = (pd.to_datetime(f["report_date"]) - pd.to_datetime(f["period_end"])).dt.days
    # report dates roll forward to the next business day, so a 45-day lag can become 47
    assert lag.min() >= 20 and lag.max() <= 47, (lag.min(), lag.max())


def test_short_interest_is_published_eight_business_days_after_settlement(market):
    si = market.tables["short_interest"]
    lag = np.busday_count(
        pd.to_datetime(si["settlement_date"]).values.astype("datetime64[D]"),
        pd.to_datetime(si["publish_date"]).values.astype("datetime64[D]"),
    )
    assert set(np.unique(lag)) == {8}


def test_insider_filings_follow_trades_by_one_to_three_business_days(market):
    ins = market.tables["insider_trades"]
    lag = np.busday_count(
        pd.to_datetime(ins["trade_date"]).values.astype("datetime64[D]"),
        pd.to_datetime(ins["filing_date"]).values.astype("datetime64[D]"),
    )
    assert lag.min() >= 1 and lag.max() <= 3
    assert set(ins["side"]) == {"B", "S"}


def test_estimates_for_a_period_are_all_dated_before_its_report(market):
    est = market.tables["estimates"].merge(
        market.tables["fundamentals"][["symbol", "period_end", "report_date"]], on=["symbol", "period_end"]
    )
    assert (est["as_of_date"] < est["report_date"]).all()


def _innovation_days(market, channel: str) -> pd.DataFrame:
    """(symbol, date) where a channel's state moved by more than its own decay: new information."""
    o = market.oracle[["date", "symbol", f"ch_{channel}"]].assign(symbol=lambda f: f["symbol"].astype(str))
    o = o.sort_values(["symbol", "date"])
    prev = o.groupby("symbol")[f"ch_{channel}"].shift(1)
    jump = (o[f"ch_{channel}"] - CHANNEL_DECAY[channel] * prev).abs() > 1e-12
    return o.loc[jump & prev.notna(), ["symbol", "date"]]


@pytest.mark.parametrize(
    ("channel", "table", "publish_column"),
    [
        ("pead", "fundamentals", "report_date"),
        ("accruals", "fundamentals", "report_date"),
        ("revision", "estimates", "as_of_date"),
        ("insider_cluster", "insider_trades", "filing_date"),
    ],
)
def test_event_channels_move_only_on_publication_dates(market, channel, table, publish_column):
    moves = _innovation_days(market, channel)
    published = market.tables[table][["symbol", publish_column]].rename(columns={publish_column: "date"})
    published = published.assign(symbol=lambda f: f["symbol"].astype(str)).drop_duplicates()
    joined = moves.merge(published, on=["symbol", "date"], how="left", indicator=True)
    assert len(moves) > 50
    assert (joined["_merge"] == "both").all(), joined[joined["_merge"] != "both"].head()


def test_earnings_surprise_does_not_leak_into_returns_before_the_report(market):
    """SUE predicts residual returns after report_date, not between period end and the report."""
    f = market.tables["fundamentals"].assign(symbol=lambda x: x["symbol"].astype(str))
    est = market.tables["estimates"].assign(symbol=lambda x: x["symbol"].astype(str))
    last = est.sort_values("as_of_date").groupby(["symbol", "period_end"]).tail(1)
    f = f.merge(last[["symbol", "period_end", "consensus_eps", "eps_std"]], on=["symbol", "period_end"])
    f["sue"] = (f["eps"] - f["consensus_eps"]) / f["eps_std"]
    prices = market.tables["prices"].assign(symbol=lambda x: x["symbol"].astype(str))
    close = prices.pivot(index="date", columns="symbol", values="close")
    rets = close.pct_change(fill_method=None)
    resid = rets.sub(rets.mean(axis=1), axis=0)  # equal-weight market removed
    cum = resid.fillna(0).cumsum()
    dates = cum.index.values

    def window(start, end):
        i = np.searchsorted(dates, pd.to_datetime(start).values.astype("datetime64[ns]"))
        j = np.searchsorted(dates, pd.to_datetime(end).values.astype("datetime64[ns]"))
        ok = (i > 0) & (j < len(dates))
        cols = cum.columns.get_indexer(f["symbol"])
        out = np.full(len(f), np.nan)
        out[ok] = cum.values[np.minimum(j, len(dates) - 1)[ok], cols[ok]] - cum.values[i[ok] - 1, cols[ok]]
        return out

    report = pd.to_datetime(f["report_date"])
    before = window(pd.to_datetime(f["period_end"]), report - pd.Timedelta(days=1))
    after = window(report + pd.Timedelta(days=1), report + pd.Timedelta(days=60))
    ok = np.isfinite(before) & np.isfinite(after)
    n = ok.sum()
    corr_before = np.corrcoef(f["sue"][ok], before[ok])[0, 1]
    corr_after = np.corrcoef(f["sue"][ok], after[ok])[0, 1]
    assert abs(corr_before) * np.sqrt(n) < 3, corr_before  # no significant pre-report drift
    assert corr_after * np.sqrt(n) > 3, corr_after  # clear post-earnings drift


# --- the channel that dies -------------------------------------------------------------------------


def test_dying_channel_stops_at_the_recorded_decay_date(market, panel):
    decay = pd.Timestamp(market.meta["decay_date"])
    dying = market.meta["dying_channel"]
    assert pd.Timestamp(market.oracle["date"].min()) + pd.Timedelta(days=365 * 4) < decay  # second half
    after = market.oracle[pd.to_datetime(market.oracle["date"]) >= decay]
    assert (after[f"ch_{dying}"] == 0).all()

    # observable effect: order imbalance predicts next-day returns before the decay date, not after
    prices = market.tables["prices"].assign(symbol=lambda f: f["symbol"].astype(str))
    frame = prices[["date", "symbol", "order_imbalance"]].merge(panel[["date", "symbol", "fwd_1d"]])
    ic = daily_ic(frame, "order_imbalance", "fwd_1d")
    before_ic, after_ic = ic[ic.index < decay], ic[ic.index >= decay]
    se_after = after_ic.std() / np.sqrt(len(after_ic))
    assert before_ic.mean() > 0.02
    assert abs(after_ic.mean()) < 3 * se_after
    assert before_ic.mean() - after_ic.mean() > 5 * se_after


# --- structure: sectors, listings, costs --------------------------------------------------------------


def test_sectors_are_unequal_with_one_etf_each_plus_the_market(market):
    sec = market.tables["securities"]
    counts = sec["sector"].value_counts()
    assert len(counts) == 11 and counts.max() >= 3 * counts.min()
    assert sec.groupby("sector")["etf"].nunique().eq(1).all()
    etfs = set(market.tables["etf_prices"]["etf"])
    assert etfs == set(sec["etf"]) | {MARKET_ETF}


def test_returns_co_move_within_sectors_and_etfs_track_their_members(market):
    prices = market.tables["prices"].assign(symbol=lambda f: f["symbol"].astype(str))
    rets = prices.pivot(index="date", columns="symbol", values="close").pct_change(fill_method=None).iloc[1:]
    sector = market.tables["securities"].set_index("symbol")["sector"].reindex(rets.columns)
    corr = rets.corr().values
    same = sector.values[:, None] == sector.values[None, :]
    off_diag = ~np.eye(len(sector), dtype=bool)
    assert np.nanmean(corr[same & off_diag]) > np.nanmean(corr[~same]) + 0.05

    etf = (
        market.tables["etf_prices"]
        .pivot(index="date", columns="etf", values="close")
        .pct_change(fill_method=None)
        .iloc[1:]
    )
    tech = market.tables["securities"].query("etf == 'XLK'")["symbol"]
    members = rets[tech].mean(axis=1)
    assert np.corrcoef(members, etf["XLK"].loc[members.index])[0, 1] > 0.8


def test_some_names_list_late_and_at_least_five_percent_delist(market):
    sec = market.tables["securities"]
    prices = market.tables["prices"].assign(symbol=lambda f: f["symbol"].astype(str))
    assert sec["delisted_date"].notna().mean() >= 0.05
    span = prices.groupby("symbol")["date"].agg(["min", "max"])
    sec = sec.set_index("symbol")
    assert (pd.to_datetime(span["min"]) == pd.to_datetime(sec.loc[span.index, "listed_date"])).all()
    gone = sec["delisted_date"].notna()
    assert (
        pd.to_datetime(span.loc[gone[gone].index, "max"]) == pd.to_datetime(sec.loc[gone, "delisted_date"])
    ).all()
    assert (pd.to_datetime(sec["listed_date"]) > pd.to_datetime(prices["date"].min())).sum() >= 3


def test_spreads_run_from_about_2_bps_for_the_largest_to_about_30_for_the_smallest(market):
    p = market.tables["prices"].assign(symbol=lambda f: f["symbol"].astype(str))
    p["dollar_volume"] = p["close"] * p["volume"]
    by_symbol = p.groupby("symbol").agg(spread=("spread_bps", "median"), dv=("dollar_volume", "median"))
    shares = market.tables["fundamentals"].groupby("symbol")["shares_outstanding"].last()
    mcap = (p.groupby("symbol")["close"].median() * shares.reindex(by_symbol.index)).rename("mcap")
    by_symbol = by_symbol.join(mcap)
    largest = by_symbol.nlargest(13, "mcap")["spread"].median()
    smallest = by_symbol.nsmallest(13, "mcap")["spread"].median()
    assert 1 <= largest <= 4 and 18 <= smallest <= 40, (largest, smallest)
    assert by_symbol[["dv", "mcap"]].corr(method="spearman").iloc[0, 1] > 0.8  # volume consistent with size


def test_prices_are_internally_consistent(market):
    p = market.tables["prices"]
    assert (p[["open", "high", "low", "close", "vwap"]] > 0).all().all()
    assert (p["high"] >= p[["open", "close", "vwap", "low"]].max(axis=1)).all()
    assert (p["low"] <= p[["open", "close", "vwap", "high"]].min(axis=1)).all()
    assert p["order_imbalance"].between(-1, 1).all() and (p["volume"] >= 0).all()
    assert not p.duplicated(["symbol", "date"]).any()


# --- files: contract, determinism, CLI -----------------------------------------------------------------


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    config = MarketConfig(n_symbols=40, n_days=400, seed=5)
    write_market(config, root / "a" / "raw")
    write_market(config, root / "b" / "raw")
    write_market(MarketConfig(n_symbols=40, n_days=400, seed=6), root / "c" / "raw")
    return root


def test_same_seed_gives_byte_identical_files(written):
    for sub in ("raw", "oracle"):
        assert _digest(written / "a" / sub) == _digest(written / "b" / sub)


def test_a_different_seed_gives_a_different_market(written):
    assert (
        _digest(written / "a" / "raw")["prices.parquet"] != _digest(written / "c" / "raw")["prices.parquet"]
    )


def test_every_raw_table_matches_the_contract(written):
    raw = written / "a" / "raw"
    types = {"date": "date32[day]", "str": "string", "float": "double", "int": "int64", "side": "string"}
    for name, table in TABLES.items():
        schema = pq.read_schema(raw / f"{name}.parquet")
        assert schema.names == list(table.columns), name
        assert [str(t) for t in schema.types] == [types[t] for t in table.columns.values()], name
    meta = json.loads((written / "a" / "oracle" / "meta.json").read_text())
    assert meta["decay_date"] and meta["dying_channel"] in CHANNEL_STRENGTH and meta["decoy_fields"]


def test_generate_command_honours_aurora_data_dir_and_out(tmp_path, monkeypatch):
    from flows.cli import main

    monkeypatch.setenv("AURORA_DATA_DIR", str(tmp_path / "d"))
    assert main(["generate", "--symbols", "30", "--days", "320", "--seed", "2"]) == 0
    assert (tmp_path / "d" / "raw" / "prices.parquet").exists()
    assert (tmp_path / "d" / "oracle" / "expected_returns.parquet").exists()
    assert main(["generate", "--symbols", "30", "--days", "320", "--out", str(tmp_path / "x" / "raw")]) == 0
    assert (tmp_path / "x" / "oracle" / "meta.json").exists()


def test_report_json_describes_the_data_directory(tmp_path, monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.setenv("AURORA_DATA_DIR", str(tmp_path))
    main(["generate", "--symbols", "30", "--days", "320"])
    capsys.readouterr()
    assert main(["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"]["symbols"] == 30 and report["data"]["days"] == 320
    assert report["data"]["source"] == "synthetic"
    assert report["data"]["start"] == "2017-01-02"
    assert isinstance(report["oracle_rank_ic"], float)
    assert "sharpe_net" in report  # every DESIGN key present, null until its stage runs


def test_bad_configuration_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="n_symbols"):
        MarketConfig(n_symbols=5)
