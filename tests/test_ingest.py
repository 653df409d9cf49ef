"""`aurora ingest` specification: user CSV/Parquet in, validated raw-contract parquet out, or a clear error.

Each test starts from a small valid dataset (all nine tables, built below and written into tmp_path)
and corrupts exactly one thing, so every class of bad input has one test that says what the user sees.
Row numbers in CSV messages: the header is line 1, so DataFrame row r is "line r+2 (row r+1 of data)".
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.cli import main
from ml.contract import TABLES
from ml.ingest import IngestError, IngestSummary, ingest_files

FIXTURES = Path(__file__).parent / "fixtures"
SYMBOLS = ["AAA", "BBB", "CCC"]
DATES = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]


# ------------------------------------------------------------------------------------ valid base data
def valid_tables() -> dict[str, pd.DataFrame]:
    """A small dataset that passes every rule; rows are deliberately not in key order."""
    grid = [(d, s) for d in reversed(DATES) for s in SYMBOLS]
    close = [10.0 + i for i in range(len(grid))]
    prices = pd.DataFrame(
        {
            "date": [d for d, _ in grid],
            "symbol": [s for _, s in grid],
            "open": [c - 0.5 for c in close],
            "high": [c + 1.0 for c in close],
            "low": [c - 2.0 for c in close],
            "close": close,
            "volume": [1000.0 * (i + 1) for i in range(len(grid))],
            "vwap": [c - 0.2 for c in close],
            "spread_bps": [5.0] * len(grid),
            "order_imbalance": [0.1] * len(grid),
        }
    )
    securities = pd.DataFrame(
        {
            "symbol": SYMBOLS,
            "name": ["Alpha Inc", "Beta Corp", "Gamma Oil"],
            "sector": ["Information Technology", "Information Technology", "Energy"],
            "industry": ["Software", "Semiconductors", "Oil & Gas"],
            "etf": ["XLK", "XLK", "XLE"],
            "listed_date": ["2010-01-04", "2012-06-01", ""],
            "delisted_date": ["", "", ""],
        }
    )
    etfs = ["SPY", "XLK", "XLE"]
    etf_prices = pd.DataFrame(
        {
            "date": [d for d in DATES for _ in etfs],
            "etf": etfs * len(DATES),
            "close": [400.0, 200.0, 90.0] * len(DATES),
            "volume": [1e6] * (len(DATES) * len(etfs)),
        }
    )
    etf_flows = pd.DataFrame(
        {"date": [d for d in DATES for _ in etfs[1:]], "etf": etfs[1:] * len(DATES), "net_flow_usd": -1e5}
    )
    fundamentals = pd.DataFrame(
        {
            "symbol": SYMBOLS,
            "period_end": "2023-12-31",
            "report_date": "2024-01-03",
            "eps": [1.2, -0.3, 0.8],
            "revenue": [1e9, 5e8, 2e9],
            "net_income": [1e8, -2e7, 3e8],
            "operating_cash_flow": [1.5e8, 1e7, 4e8],
            "total_assets": [5e9, 1e9, 8e9],
            "total_liabilities": [2e9, 4e8, 3e9],
            "book_equity": [3e9, 6e8, 5e9],
            "shares_outstanding": [1e8, 5e7, 2e8],
        }
    )
    estimates = pd.DataFrame(
        {
            "symbol": SYMBOLS * 2,
            "period_end": "2024-03-31",
            "as_of_date": ["2024-01-02"] * 3 + ["2024-01-04"] * 3,
            "consensus_eps": [1.3, -0.2, 0.9, 1.35, -0.1, 0.85],
            "eps_std": [0.1, 0.05, 0.2, 0.1, 0.05, 0.2],
            "n_analysts": [12, 5, 20, 13, 5, 19],
        }
    )
    short_interest = pd.DataFrame(
        {
            "symbol": SYMBOLS,
            "settlement_date": "2023-12-29",
            "publish_date": "2024-01-03",
            "shares_short": [1e6, 3e6, 5e5],
            "avg_daily_volume": [2e5, 4e5, 1e5],
        }
    )
    options_iv = pd.DataFrame(
        {
            "date": [d for d, _ in grid],
            "symbol": [s for _, s in grid],
            "iv_call_30d": 0.25,
            "iv_put_30d": 0.27,
        }
    )
    insider_trades = pd.DataFrame(
        {
            "symbol": ["AAA", "BBB", "AAA"],
            "trade_date": ["2024-01-02", "2024-01-02", "2024-01-03"],
            "filing_date": ["2024-01-04", "2024-01-03", "2024-01-05"],
            "shares": [1000.0, 500.0, 2000.0],
            "price": [10.5, 11.0, 12.0],
            "side": ["B", "S", "B"],
        }
    )
    return {
        "securities": securities,
        "prices": prices,
        "etf_prices": etf_prices,
        "etf_flows": etf_flows,
        "fundamentals": fundamentals,
        "estimates": estimates,
        "short_interest": short_interest,
        "options_iv": options_iv,
        "insider_trades": insider_trades,
    }


def corrupt(frame: pd.DataFrame, row: int, column: str, value: object) -> None:
    """Put any value (text included) into one cell, whatever the column's dtype."""
    frame[column] = frame[column].astype(object)
    frame.at[row, column] = value


def write_tables(directory: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> dict[str, Path]:
    """Write each table as `<table>.csv` (or typed `<table>.parquet`) and return the ingest arguments."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, frame in tables.items():
        path = directory / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            typed = frame.copy()
            for col, logical in TABLES[name].columns.items():
                if logical == "date" and col in typed:
                    typed[col] = pd.to_datetime(typed[col].mask(typed[col].eq(""))).dt.date
            pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), path)
        files[name] = path
    return files


def ingest(tmp_path: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> IngestSummary:
    return ingest_files(write_tables(tmp_path / "in", tables, fmt), tmp_path / "data" / "raw")


def ingest_error(tmp_path: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> str:
    """Ingest expecting failure; the output directory must not have been created. Returns the message."""
    out = tmp_path / "data" / "raw"
    with pytest.raises(IngestError) as caught:
        ingest_files(write_tables(tmp_path / "in", tables, fmt), out)
    assert not out.exists()
    return str(caught.value)


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every path under a directory with its bytes (None for folders), to prove it did not change."""
    return {
        str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(directory.rglob("*"))
    }


# ---------------------------------------------------------------------------------------- good input
def test_valid_tables_are_written_as_typed_parquet_with_contract_columns_in_order(tmp_path):
    ingest(tmp_path, valid_tables())
    raw = tmp_path / "data" / "raw"
    arrow_type = {"date": pa.date32(), "str": pa.string(), "side": pa.string(), "float": pa.float64()}
    arrow_type["int"] = pa.int64()
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        [f"{t}.parquet" for t in TABLES] + ["_source.json"]
    )
    for name, table in TABLES.items():
        schema = pq.read_schema(raw / f"{name}.parquet")
        assert schema.names == list(table.columns), name
        assert [schema.field(c).type for c in table.columns] == [
            arrow_type[t] for t in table.columns.values()
        ]


def test_rows_are_sorted_by_key_so_output_is_deterministic(tmp_path):
    tables = valid_tables()
    ingest(tmp_path / "a", tables)
    shuffled = {name: frame.sample(frac=1.0, random_state=3) for name, frame in tables.items()}
    ingest(tmp_path / "b", shuffled)
    for name in TABLES:
        first = pq.read_table(tmp_path / "a" / "data" / "raw" / f"{name}.parquet")
        second = pq.read_table(tmp_path / "b" / "data" / "raw" / f"{name}.parquet")
        assert first.equals(second), name
    prices = pq.read_table(tmp_path / "a" / "data" / "raw" / "prices.parquet").to_pandas()
    assert prices[["symbol", "date"]].equals(prices[["symbol", "date"]].sort_values(["symbol", "date"]))


def test_source_json_records_ingested_and_original_file_names(tmp_path):
    tables = valid_tables()
    files = write_tables(tmp_path / "in", tables)
    files["prices"] = files["prices"].rename(files["prices"].with_name("my_prices.csv"))
    ingest_files(files, tmp_path / "raw")
    source = json.loads((tmp_path / "raw" / "_source.json").read_text())
    assert source["source"] == "ingested"
    assert source["files"]["prices"] == "my_prices.csv"
    assert source["files"]["securities"] == "securities.csv"


def test_parquet_input_is_accepted_and_its_rows_are_numbered_from_one(tmp_path):
    summary = ingest(tmp_path / "ok", valid_tables(), fmt="parquet")
    assert summary.symbols == SYMBOLS
    tables = valid_tables()
    tables["prices"].loc[2, "close"] = -1.0
    message = ingest_error(tmp_path / "bad", tables, fmt="parquet")
    assert message.startswith("prices.parquet, row 3 of data, column 'close': expected a positive number")


def test_gzipped_csv_is_accepted(tmp_path):
    files = write_tables(tmp_path / "in", valid_tables())
    valid_tables()["prices"].to_csv(tmp_path / "in" / "prices.csv.gz", index=False)
    files["prices"] = tmp_path / "in" / "prices.csv.gz"
    assert ingest_files(files, tmp_path / "raw").rows["prices"] == len(valid_tables()["prices"])


def test_line_numbers_count_blank_lines_so_they_match_the_file(tmp_path):
    files = write_tables(tmp_path / "in", valid_tables())
    header, aaa, bbb, ccc = files["securities"].read_text().splitlines()
    bbb = bbb.replace("2012-06-01", "June 2012")
    files["securities"].write_text("\n".join([header, "", aaa, "", bbb, ccc]) + "\n\n")
    with pytest.raises(IngestError) as caught:
        ingest_files(files, tmp_path / "raw")
    assert str(caught.value).startswith("securities.csv, line 5 (row 2 of data), column 'listed_date'")


def test_accepts_datetime_strings_whose_time_part_is_zero(tmp_path):
    tables = valid_tables()
    tables["prices"]["date"] = tables["prices"]["date"] + " 00:00:00"
    tables["fundamentals"]["report_date"] = tables["fundamentals"]["report_date"] + "T00:00:00Z"
    ingest(tmp_path, tables)
    prices = pq.read_table(tmp_path / "data" / "raw" / "prices.parquet")
    assert prices.column("date").type == pa.date32()
    assert str(prices.column("date")[0]) == "2024-01-02"


def test_allows_blanks_only_in_nullable_and_optional_columns(tmp_path):
    tables = valid_tables()
    corrupt(tables["securities"], 0, "industry", "")
    corrupt(tables["prices"], 1, "vwap", "")
    ingest(tmp_path, tables)
    securities = pq.read_table(tmp_path / "data" / "raw" / "securities.parquet").to_pandas()
    assert securities["delisted_date"].isna().all()
    assert securities["industry"].isna().sum() == 1


def test_drops_unknown_extra_columns_with_a_note_in_the_summary(tmp_path):
    tables = valid_tables()
    tables["prices"]["adj_close"] = tables["prices"]["close"]
    summary = ingest(tmp_path, tables)
    assert "dropped unknown column(s) 'adj_close'" in summary.render()
    assert "adj_close" not in pq.read_schema(tmp_path / "data" / "raw" / "prices.parquet").names


def test_missing_optional_price_columns_are_fine_and_disable_microstructure(tmp_path):
    tables = valid_tables()
    tables["prices"] = tables["prices"].drop(columns=["vwap", "spread_bps", "order_imbalance"])
    summary = ingest(tmp_path, tables)
    assert summary.missing_price_columns == ["vwap", "spread_bps", "order_imbalance"]
    assert list(summary.disabled) == ["microstructure"]
    assert "microstructure" in summary.render()


def test_summary_lists_symbols_dates_tables_missing_tables_and_disabled_views(tmp_path):
    tables = valid_tables()
    summary = ingest(tmp_path, {"prices": tables["prices"], "securities": tables["securities"]})
    text = summary.render()
    assert "3 (AAA, BBB, CCC)" in text
    assert "2024-01-02 .. 2024-01-05" in text
    assert (
        "optional tables missing: etf_prices, etf_flows, fundamentals, estimates, short_interest, "
        "options_iv, insider_trades" in text
    )
    for view in ("fundamental", "alt_data"):
        assert f"    {view}" in text
    assert set(summary.disabled) == {"fundamental", "alt_data"}
    assert "market and sector returns will be built from the panel" in text


def test_reports_etf_tickers_of_etf_tables_without_failing(tmp_path):
    tables = valid_tables()
    tables["etf_prices"] = tables["etf_prices"][tables["etf_prices"]["etf"] != "XLE"]
    extra = pd.DataFrame({"date": DATES, "etf": "QQQ", "net_flow_usd": 5e4})
    tables["etf_flows"] = pd.concat([tables["etf_flows"], extra], ignore_index=True)
    text = ingest(tmp_path, tables).render()
    assert "ETFs in etf_prices: SPY, XLK" in text
    assert "ETFs in etf_flows: QQQ, XLE, XLK" in text
    assert "etf_prices has no rows for XLE" in text


# ----------------------------------------------------------------------------------------- bad input
def test_rejects_non_positive_price_naming_file_row_and_column(tmp_path):
    tables = valid_tables()
    tables["prices"].loc[3, "close"] = -3.2
    message = ingest_error(tmp_path, tables)
    assert (
        message
        == "prices.csv, line 5 (row 4 of data), column 'close': expected a positive number (> 0), got -3.2"
    )


def test_rejects_zero_price(tmp_path):
    tables = valid_tables()
    tables["prices"].loc[0, ["open", "low"]] = [0.0, 0.0]
    message = ingest_error(tmp_path, tables)
    assert "line 2 (row 1 of data), column 'open': expected a positive number (> 0), got 0.0" in message


def test_rejects_high_below_low_naming_file_row_and_column(tmp_path):
    tables = valid_tables()
    tables["prices"].loc[4, ["high", "low"]] = [9.0, 9.5]
    message = ingest_error(tmp_path, tables)
    assert message == (
        "prices.csv, line 6 (row 5 of data), column 'high': high 9.0 is below low 9.5; expected low <= high"
    )


@pytest.mark.parametrize("column", ["open", "close"])
def test_rejects_open_or_close_outside_the_low_high_range(tmp_path, column):
    tables = valid_tables()
    tables["prices"].loc[2, column] = tables["prices"].loc[2, "high"] + 0.01
    message = ingest_error(tmp_path, tables)
    assert message.startswith(f"prices.csv, line 4 (row 3 of data), column '{column}': {column} 13.01")
    assert "is outside the day's range [low 10.0, high 13.0]" in message


def test_rejects_negative_volume(tmp_path):
    tables = valid_tables()
    tables["prices"].loc[6, "volume"] = -100.0
    message = ingest_error(tmp_path, tables)
    assert message == (
        "prices.csv, line 8 (row 7 of data), column 'volume': expected a non-negative number (>= 0), got -100.0"
    )


def test_rejects_non_numeric_volume(tmp_path):
    tables = valid_tables()
    corrupt(tables["prices"], 1, "volume", "1,000")
    message = ingest_error(tmp_path, tables)
    assert message == "prices.csv, line 3 (row 2 of data), column 'volume': expected a number, got '1,000'"


def test_rejects_non_numeric_value_in_an_optional_table(tmp_path):
    tables = valid_tables()
    corrupt(tables["fundamentals"], 2, "eps", "n.m.")
    message = ingest_error(tmp_path, tables)
    assert message == "fundamentals.csv, line 4 (row 3 of data), column 'eps': expected a number, got 'n.m.'"


@pytest.mark.parametrize("value", ["NaN", "", "null"])
def test_rejects_nan_or_blank_in_a_required_numeric_column(tmp_path, value):
    tables = valid_tables()
    corrupt(tables["prices"], 5, "close", value)
    message = ingest_error(tmp_path, tables)
    assert message == (
        "prices.csv, line 7 (row 6 of data), column 'close': missing value (blank or NaN); this column may not be empty"
    )


@pytest.mark.parametrize("value", ["inf", "-inf"])
def test_rejects_infinite_values_in_numeric_columns(tmp_path, value):
    tables = valid_tables()
    corrupt(tables["fundamentals"], 1, "net_income", value)
    message = ingest_error(tmp_path, tables)
    assert message.startswith(
        "fundamentals.csv, line 3 (row 2 of data), column 'net_income': expected a finite number"
    )


def test_rejects_fractional_count_in_an_integer_column(tmp_path):
    tables = valid_tables()
    corrupt(tables["estimates"], 0, "n_analysts", "2.5")
    message = ingest_error(tmp_path, tables)
    assert (
        message
        == "estimates.csv, line 2 (row 1 of data), column 'n_analysts': expected a whole number, got '2.5'"
    )


@pytest.mark.parametrize("value", ["01/03/2024", "2024-13-01", "2024-02-30", "yesterday"])
def test_rejects_unparseable_dates_naming_file_row_and_column(tmp_path, value):
    tables = valid_tables()
    corrupt(tables["prices"], 7, "date", value)
    message = ingest_error(tmp_path, tables)
    assert message == (
        f"prices.csv, line 9 (row 8 of data), column 'date': expected an ISO date YYYY-MM-DD "
        f"(a time part, if any, must be 00:00:00), got '{value}'"
    )


def test_rejects_datetimes_with_a_non_zero_time_part(tmp_path):
    tables = valid_tables()
    corrupt(tables["options_iv"], 0, "date", "2024-01-05 15:30:00")
    message = ingest_error(tmp_path, tables)
    assert "options_iv.csv, line 2 (row 1 of data), column 'date': expected an ISO date" in message
    assert "got '2024-01-05 15:30:00'" in message


def test_rejects_missing_required_column_naming_file_and_column(tmp_path):
    tables = valid_tables()
    tables["prices"] = tables["prices"].drop(columns=["volume"])
    message = ingest_error(tmp_path, tables)
    assert message.startswith(
        "prices.csv, line 1 (header): missing required column(s) 'volume'; expected date,"
    )


def test_rejects_a_column_given_twice(tmp_path):
    files = write_tables(tmp_path / "in", valid_tables())
    files["securities"].write_text("symbol,sector,Sector\nAAA,Tech,Tech\n")
    with pytest.raises(IngestError, match=r"securities.csv, line 1 \(header\): column 'sector' appears more"):
        ingest_files(files, tmp_path / "raw")


def test_rejects_empty_file_of_zero_bytes(tmp_path):
    files = write_tables(tmp_path / "in", valid_tables())
    files["estimates"].write_bytes(b"")
    with pytest.raises(IngestError) as caught:
        ingest_files(files, tmp_path / "raw")
    assert (
        str(caught.value)
        == "estimates.csv: the file is empty (0 bytes); expected a header line and data rows"
    )


def test_rejects_file_with_a_header_but_no_data_rows(tmp_path):
    tables = valid_tables()
    tables = {"prices": tables["prices"].iloc[:0], "securities": tables["securities"]}
    message = ingest_error(tmp_path, tables)
    assert message == "prices.csv: the file has a header but no data rows; expected at least one data row"


def test_rejects_missing_file_naming_its_path(tmp_path):
    files = write_tables(tmp_path / "in", valid_tables())
    files["short_interest"] = tmp_path / "in" / "nowhere.csv"
    with pytest.raises(IngestError) as caught:
        ingest_files(files, tmp_path / "raw")
    assert str(caught.value) == f"{tmp_path / 'in' / 'nowhere.csv'} (short_interest): file not found"
    assert not (tmp_path / "raw").exists()


def test_rejects_when_a_required_table_is_not_given(tmp_path):
    files = write_tables(tmp_path / "in", valid_tables())
    del files["securities"]
    with pytest.raises(IngestError, match="required table.s. securities not given"):
        ingest_files(files, tmp_path / "raw")


@pytest.mark.parametrize(("sep", "word"), [(";", "semicolon"), ("\t", "tab")])
def test_rejects_csv_with_a_wrong_delimiter(tmp_path, sep, word):
    files = write_tables(tmp_path / "in", valid_tables())
    valid_tables()["prices"].to_csv(files["prices"], sep=sep, decimal=",", index=False)
    with pytest.raises(IngestError) as caught:
        ingest_files(files, tmp_path / "raw")
    message = str(caught.value)
    assert message.startswith("prices.csv, line 1 (header): expected comma-separated values")
    assert f"looks {word}-separated" in message


@pytest.mark.parametrize("name", [t.name for t in TABLES.values() if t.symbol_column])
def test_rejects_symbols_missing_from_securities_in_every_table(tmp_path, name):
    tables = valid_tables()
    corrupt(tables[name], 1, "symbol", "ZZZ")
    message = ingest_error(tmp_path, tables)
    assert message == (
        f"{name}.csv, line 3 (row 2 of data), column 'symbol': symbol 'ZZZ' is not in securities "
        f"(securities.csv); 1 symbol(s) of {name} missing from securities: ZZZ"
    )


def test_rejects_duplicate_securities(tmp_path):
    tables = valid_tables()
    tables["securities"] = pd.concat(
        [tables["securities"], tables["securities"].iloc[[1]]], ignore_index=True
    )
    message = ingest_error(tmp_path, tables)
    assert message == (
        "securities.csv, line 5 (row 4 of data), column 'symbol': duplicate security ('BBB'); "
        "first seen at securities.csv, line 3 (row 2 of data)"
    )


def test_rejects_duplicate_keys_naming_both_rows(tmp_path):
    tables = valid_tables()
    tables["prices"].loc[5, ["date", "symbol"]] = ["2024-01-04", "AAA"]
    message = ingest_error(tmp_path, tables)
    assert message == (
        "prices.csv, line 7 (row 6 of data), columns 'symbol', 'date': duplicate key (symbol, date) "
        "('AAA', 2024-01-04); first seen at prices.csv, line 5 (row 4 of data)"
    )


@pytest.mark.parametrize(
    ("name", "later", "earlier"),
    [(t.name, later, earlier) for t in TABLES.values() for later, earlier in t.not_before],
)
def test_rejects_publication_before_the_period_or_trade_it_describes(tmp_path, name, later, earlier):
    tables = valid_tables()
    corrupt(tables[name], 0, earlier, "2024-01-01")
    corrupt(tables[name], 0, later, "2023-12-15")
    message = ingest_error(tmp_path, tables)
    assert message == (
        f"{name}.csv, line 2 (row 1 of data), column '{later}': {later} 2023-12-15 is before "
        f"{earlier} 2024-01-01; expected {later} on or after {earlier}"
    )


def test_rejects_insider_side_other_than_b_or_s(tmp_path):
    tables = valid_tables()
    corrupt(tables["insider_trades"], 2, "side", "buy")
    message = ingest_error(tmp_path, tables)
    assert message == (
        "insider_trades.csv, line 4 (row 3 of data), column 'side': expected 'B' (buy) or 'S' (sell), got 'buy'"
    )


def test_reports_up_to_five_problems_and_the_total(tmp_path):
    tables = valid_tables()
    for row in range(7):
        tables["prices"].loc[row, "close"] = -1.0 - row
    corrupt(tables["insider_trades"], 0, "side", "X")
    tables["fundamentals"].loc[0, "shares_outstanding"] = 0.0
    corrupt(tables["options_iv"], 0, "date", "nope")
    for col, value in [("spread_bps", -1.0), ("vwap", -2.0), ("high", 1.0)]:
        tables["prices"].loc[0, col] = value
    message = ingest_error(tmp_path, tables)
    lines = message.splitlines()
    assert lines[0] == "7 problems in the input files (the first 5):"
    assert len(lines) == 6
    assert "column 'close': expected a positive number (> 0), got -1.0 (6 more row(s) like this)" in message


# --------------------------------------------------------------------------------------- atomicity
def test_failed_ingest_leaves_an_existing_out_dir_byte_identical(tmp_path):
    out = tmp_path / "data" / "raw"
    ingest(tmp_path, valid_tables())
    (out / "extra_note.txt").write_text("keep me")
    (tmp_path / "data" / "oracle").mkdir()
    before = snapshot(tmp_path / "data")
    tables = valid_tables()
    tables["prices"].loc[0, "high"] = 1.0
    with pytest.raises(IngestError):
        ingest_files(write_tables(tmp_path / "in2", tables), out)
    assert snapshot(tmp_path / "data") == before
    assert sorted(p.name for p in tmp_path.joinpath("data").iterdir()) == ["oracle", "raw"]


def test_failed_ingest_leaves_an_absent_out_dir_absent(tmp_path):
    tables = valid_tables()
    corrupt(tables["prices"], 0, "close", "x")
    with pytest.raises(IngestError):
        ingest_files(write_tables(tmp_path / "in", tables), tmp_path / "new" / "raw")
    assert not (tmp_path / "new").exists()


def test_successful_ingest_replaces_out_dir_and_removes_the_sibling_oracle(tmp_path):
    out = tmp_path / "data" / "raw"
    out.mkdir(parents=True)
    (out / "fundamentals.parquet").write_bytes(b"synthetic leftovers")
    (tmp_path / "data" / "oracle").mkdir()
    (tmp_path / "data" / "oracle" / "expected_returns.parquet").write_bytes(b"synthetic truth")
    tables = valid_tables()
    summary = ingest_files(
        write_tables(tmp_path / "in", {t: tables[t] for t in ("prices", "securities")}), out
    )
    assert sorted(p.name for p in out.iterdir()) == ["_source.json", "prices.parquet", "securities.parquet"]
    assert not (tmp_path / "data" / "oracle").exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["raw"]
    assert summary.removed_oracle
    assert "it described the synthetic market" in summary.render()


# --------------------------------------------------------------------------------------- real data
def test_ingests_real_daily_prices_of_20_sp500_stocks_1990_to_2022(tmp_path):
    """skfolio's 20-stock panel as `ml.data.sample_panels` writes it: open=high=low=close, constant volume."""
    from ml.data.sample_panels import write_panel_inputs

    summary = ingest_files(write_panel_inputs("sp20", tmp_path / "in"), tmp_path / "raw")
    assert len(summary.symbols) == 20
    assert summary.start.startswith("1990-") and summary.end.startswith("2022-")
    assert set(summary.disabled) == {"fundamental", "microstructure", "alt_data"}
    text = summary.render()
    for view in ("fundamental", "microstructure", "alt_data"):
        assert f"    {view}" in text
    prices = pq.read_table(tmp_path / "raw" / "prices.parquet")
    assert prices.num_rows == 20 * summary.n_dates
    securities = pq.read_table(tmp_path / "raw" / "securities.parquet").to_pandas()
    assert securities["sector"].notna().all() and securities["sector"].nunique() >= 5


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_ingest_exits_zero_on_good_input_and_non_zero_leaving_data_unchanged_on_bad(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("AURORA_DATA_DIR", str(tmp_path / "data"))
    tables = valid_tables()
    good = write_tables(tmp_path / "good", tables)
    args = ["ingest", "--prices", str(good["prices"]), "--securities", str(good["securities"])]
    assert main([*args, "--insider-trades", str(good["insider_trades"])]) == 0
    out = capsys.readouterr().out
    assert "symbols:  3 (AAA, BBB, CCC)" in out and "insider_trades" in out
    raw = (tmp_path / "data" / "raw").resolve()
    assert (raw / "insider_trades.parquet").exists()

    before = snapshot(tmp_path / "data")
    tables["prices"].loc[3, "high"] = 1.0
    bad = write_tables(tmp_path / "bad", tables)
    assert main(["ingest", "--prices", str(bad["prices"]), "--securities", str(bad["securities"])]) != 0
    err = capsys.readouterr().err
    assert (
        "aurora ingest: error: prices.csv, line 5 (row 4 of data), column 'high': high 1.0 is below low"
        in err
    )
    assert f"nothing was written; {raw} is unchanged" in err
    assert snapshot(tmp_path / "data") == before


def test_ingests_the_second_real_panel_64_uk_large_caps_with_its_gaps_and_crashes(tmp_path):
    """Real data is refused nowhere: 2008's bank collapses (NatWest's closes fell 67% in a day), a few
    missing closes mid-history, and tickers with dots and dashes (BT-A.L)."""
    from ml.data.sample_panels import panel_closes, write_panel_inputs

    closes = panel_closes("ftse64")
    summary = ingest_files(write_panel_inputs("ftse64", tmp_path / "in"), tmp_path / "raw")
    assert len(summary.symbols) == 64 and "BT-A.L" in summary.symbols
    assert summary.start == "2000-01-04" and summary.end == "2023-05-31"
    prices = pq.read_table(tmp_path / "raw" / "prices.parquet")
    assert prices.num_rows == int(closes.drop(columns="Date").notna().sum().sum()) < 64 * summary.n_dates
    securities = pq.read_table(tmp_path / "raw" / "securities.parquet").to_pandas()
    assert securities["sector"].nunique() == 11
