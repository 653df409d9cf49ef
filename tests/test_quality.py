"""Great Expectations checks of the feature and label marts (`ml.quality`) on stand-in marts.

Good marts pass and land in `quality.gx_results`; each injected defect (an infinity, an all-null
column, a stale last date, duplicate keys) fails with a report naming view, rule, column and what
was observed, and is recorded too. The bad runs validate only the damaged frame, to stay fast.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from standin_features import write_standin_features

from ml import quality
from ml.contract import FEATURE_VIEWS
from ml.paths import DataPaths


@pytest.fixture(scope="module")
def marts(tmp_path_factory) -> tuple[DataPaths, dict[str, pd.DataFrame]]:
    paths = DataPaths(tmp_path_factory.mktemp("gx") / "data")
    frames = write_standin_features(paths.features, n_symbols=30, n_days=300, seed=5)
    # raw prices end on the marts' last date: that is what freshness compares against
    prices = frames["labels"][["symbol", "date"]].assign(close=100.0)
    paths.raw.mkdir(parents=True)
    prices.to_parquet(paths.raw_table("prices"), index=False)
    return paths, frames


def _results(paths: DataPaths, run_id: str) -> pd.DataFrame:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute("select * from quality.gx_results where run_id = ?", [run_id]).df()


def test_good_marts_pass_and_results_are_recorded(marts):
    paths, frames = marts
    assert quality.latest_price_date(paths) == max(frames["labels"]["date"])
    logged: list[str] = []
    results = quality.check_features(paths, log=logged.append)
    assert results["success"].all()
    assert list(results.columns) == list(quality.RESULT_COLUMNS)
    assert set(results["view"]) == {*FEATURE_VIEWS, "labels"}
    per_view = results.groupby("view")["rule"].apply(set)
    for view in per_view.index:
        assert {"keys_not_null", "unique_keys", "freshness", "numeric", "finite", "null_rate"} <= per_view[
            view
        ]
        assert {"plausible_range", "mean", "stdev", "not_constant"} <= per_view[view]
    assert set(results.loc[results["rule"] == "not_constant", "severity"]) == {"warning"}
    assert set(results.loc[results["rule"] != "not_constant", "severity"]) == {"critical"}
    n_features = sum(len(f.columns) - 2 for f in frames.values())
    assert (results["rule"] == "finite").sum() == n_features
    assert any("expectations" in line for line in logged)

    stored = _results(paths, results["run_id"].iloc[0])
    assert len(stored) == len(results) and stored["success"].all()
    assert set(stored.columns) == set(quality.RESULT_COLUMNS)
    fresh = stored[(stored["rule"] == "freshness") & (stored["view"] == "price_momentum")].iloc[0]
    assert fresh["observed_value"] == max(frames["labels"]["date"]).isoformat()
    assert "min_value" in json.loads(fresh["details"])["kwargs"]


def _fail(paths: DataPaths, frames: dict[str, pd.DataFrame], **kwargs) -> quality.DataQualityError:
    with pytest.raises(quality.DataQualityError) as info:
        quality.check_features(paths, frames=frames, log=None, **kwargs)
    err = info.value
    # whatever failed was recorded before the error was raised
    stored = _results(paths, err.results["run_id"].iloc[0])
    assert len(stored) == len(err.results) and (~stored["success"]).sum() >= 1
    return err


def test_injected_infinity_fails_with_a_readable_report(marts):
    paths, frames = marts
    bad = frames["price_momentum"].copy()
    column = bad.columns[3]
    bad.loc[bad.index[42], column] = np.inf
    err = _fail(paths, {"price_momentum": bad})
    failed = err.results[~err.results["success"]]
    assert ("finite", column) in set(zip(failed["rule"], failed["column_name"], strict=True))
    assert set(failed["column_name"]) == {column}  # only the damaged column
    line = next(x for x in str(err).splitlines() if "| finite" in x)
    assert "view price_momentum" in line and f"column {column}" in line and "e.g. inf" in line
    assert f"1 of {len(bad)} rows" in line


def test_all_null_column_fails(marts):
    paths, frames = marts
    bad = frames["alt_data"].copy()
    column = bad.columns[2]
    bad[column] = np.nan
    err = _fail(paths, {"alt_data": bad})
    failed = err.results[~err.results["success"]]
    assert list(zip(failed["rule"], failed["column_name"], strict=True)) == [("null_rate", column)]
    assert f"view alt_data | null_rate (expect_column_values_to_not_be_null) | column {column}" in str(err)
    assert "(100%)" in str(err) and "mostly=0.75" in str(err)


def test_stale_last_date_fails_freshness(marts):
    paths, frames = marts
    last = max(frames["fundamental"]["date"])
    bad = frames["fundamental"][frames["fundamental"]["date"] < last]
    err = _fail(paths, {"fundamental": bad})
    failed = err.results[~err.results["success"]]
    assert failed["rule"].tolist() == ["freshness"]
    observed = (last - pd.offsets.BDay(1)).date().isoformat()
    assert (
        f"observed: {observed} | expected: min_value={last.isoformat()}, max_value={last.isoformat()}"
        in str(err)
    )


def test_absurd_values_fail_the_plausible_range(marts):
    paths, frames = marts
    bad = frames["fundamental"].copy()
    column = bad.columns[4]
    rows = bad.sample(frac=0.005, random_state=0).index  # a unit error in 0.5% of the rows
    bad.loc[rows, column] = bad.loc[rows, column] * 1e9
    err = _fail(paths, {"fundamental": bad})
    failed = err.results[~err.results["success"]]
    assert "plausible_range" in set(failed.loc[failed["column_name"] == column, "rule"])
    assert set(failed["column_name"]) == {column}


def test_constant_column_is_a_warning_not_an_error(marts):
    paths, frames = marts
    flat = frames["microstructure"].assign(**{frames["microstructure"].columns[2]: 0.0})
    logged: list[str] = []
    results = quality.check_features(paths, frames={"microstructure": flat}, log=logged.append)
    failed = results[~results["success"]]
    assert failed[["rule", "severity"]].values.tolist() == [["not_constant", "warning"]]
    assert any("data quality warnings" in line and "not_constant" in line for line in logged)
    assert len(_results(paths, results["run_id"].iloc[0])) == len(results)


def test_duplicate_keys_fail(marts):
    paths, frames = marts
    bad = pd.concat([frames["microstructure"], frames["microstructure"].iloc[[7]]], ignore_index=True)
    err = _fail(paths, {"microstructure": bad})
    assert "unique_keys" in set(err.results.loc[~err.results["success"], "rule"])


def test_warm_up_nulls_are_allowed_and_results_append(marts):
    paths, frames = marts
    ok = frames["sector_neutral"].copy()
    column = ok.columns[2]
    first_rows = ok.groupby("symbol").cumcount() < 100  # e.g. a 100-day rolling window
    ok.loc[first_rows, column] = np.nan
    config = quality.QualityConfig(warmup_rows=120)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        before = con.execute("select count(distinct run_id) from quality.gx_results").fetchone()[0]
    results = quality.check_features(paths, frames={"sector_neutral": ok}, config=config, log=None)
    assert results["success"].all()
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert (
            con.execute("select count(distinct run_id) from quality.gx_results").fetchone()[0] == before + 1
        )
    # leading nulls are each column's own warm-up; gaps after a column has started are not
    strict = quality.QualityConfig(warmup_rows=0, max_null_rate=0.05)
    assert quality.check_features(paths, frames={"sector_neutral": ok}, config=strict, log=None)["success"].all()
    gappy = ok.copy()
    position = gappy.groupby("symbol").cumcount()
    gappy.loc[(position >= 150) & (position < 200), column] = np.nan
    err = _fail(paths, {"sector_neutral": gappy}, config=strict)
    assert set(err.results.loc[~err.results["success"], "column_name"]) == {column}
