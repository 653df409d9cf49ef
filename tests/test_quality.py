"""The data-quality gate (`ml.quality`, `ml.data.quality_profile`, `ml.data.quarantine`) on stand-in marts.

Legitimate data passes whatever its shape: heavy tails, sparse coverage. Garbage stops the build:
broken keys, infinities, an all-null or constant column, a x1000 unit change in the recent rows of a
fundamental field (with or without a reference profile; the affected columns are named). A shift
against the reference that is not structural (a null-rate rise) quarantines the column: the run goes
on, the column is recorded in `quality.quarantine` and left out of the training frames.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from standin_features import write_standin_features

from ml import quality
from ml.config import ConfigError
from ml.contract import FEATURE_VIEWS
from ml.data import quarantine
from ml.paths import DataPaths

N_SYMBOLS, N_DAYS = 30, 520  # two years: enough months for month-against-baseline comparisons


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> dict[str, pd.DataFrame]:
    base = write_standin_features(tmp_path_factory.mktemp("standin"), n_symbols=N_SYMBOLS, n_days=N_DAYS, seed=5)
    rng = np.random.default_rng(11)
    fund = base["fundamental"]
    bm = np.exp(rng.normal(-0.7, 0.6, len(fund)))  # book_to_price ~ 0.5, positive
    base["fundamental"] = fund.assign(book_to_price=bm, roe=rng.normal(0.1, 0.08, len(fund)),
                                      eps_revision_1m=rng.normal(0, 0.002, len(fund)))
    alt = base["alt_data"]
    base["alt_data"] = alt.assign(insider_net_buy_ratio_90d=rng.uniform(-1, 1, len(alt)),
                                  short_days_to_cover=np.abs(rng.standard_t(1.5, len(alt))) * 20)
    return base


def make_dir(tmp_path, frames: dict[str, pd.DataFrame]) -> DataPaths:
    """A data directory whose raw prices end on the marts' last date (what freshness checks)."""
    paths = DataPaths(tmp_path / "data")
    paths.raw.mkdir(parents=True)
    frames["labels"][["symbol", "date"]].assign(close=100.0).to_parquet(paths.raw_table("prices"), index=False)
    return paths


def check(paths, frames, **kwargs) -> pd.DataFrame:
    return quality.check_features(paths, frames=frames, log=None, **kwargs)


def failures(results: pd.DataFrame, severity: str | None = None) -> pd.DataFrame:
    bad = results[~results["success"]]
    return bad if severity is None else bad[bad["severity"] == severity]


def stored(paths: DataPaths, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute(sql).df()


def fail(paths, frames, **kwargs) -> quality.DataQualityError:
    with pytest.raises(quality.DataQualityError) as info:
        check(paths, frames, **kwargs)
    err = info.value
    rows = stored(paths, f"select * from quality.gx_results where run_id = '{err.results['run_id'].iloc[0]}'")
    assert len(rows) == len(err.results)  # recorded before the error was raised
    return err


def last_quarter(frame: pd.DataFrame) -> pd.Series:
    dates = pd.to_datetime(frame["date"])
    return dates > dates.max() - pd.Timedelta(days=91)


# ------------------------------------------------------------------------------------ passes
def test_good_marts_pass_first_without_then_with_reference(tmp_path, frames):
    paths = make_dir(tmp_path, frames)
    logged: list[str] = []
    first = quality.check_features(paths, frames=frames, log=logged.append)
    assert failures(first, "critical").empty and failures(first, "quarantine").empty
    # on a first build the distribution checks can only warn: no reference profile yet
    warned = failures(first, "warning")
    assert set(warned["rule"]) == {"reference_profile"} and set(warned["view"]) == {*FEATURE_VIEWS, "labels"}
    assert list(first.columns) == list(quality.RESULT_COLUMNS)
    per_view = first.groupby("view")["rule"].apply(set)
    for view in per_view.index:
        assert {"keys_not_null", "unique_keys", "freshness", "numeric", "finite", "not_all_null", "not_constant",
                "scale_jump", "scale_shift"} <= per_view[view]
    assert set(first.loc[first["rule"] == "scale_jump", "severity"]) == {"critical"}
    assert any("no reference profile" in line for line in logged)

    ref = stored(paths, "select * from quality.reference_profile")
    assert set(ref["view"]) == {*FEATURE_VIEWS, "labels"}
    assert {"all", "recent"} <= set(ref["period"]) and ref["period"].str.match(r"\d{4}-\d{2}").any()

    second = check(paths, frames)
    assert second["success"].all(), failures(second)[["view", "rule", "column_name", "observed_value"]]
    assert {"null_rate", "psi"} <= set(second["rule"])
    assert set(second.loc[second["rule"].isin(["null_rate", "psi"]) & (second["view"] != "labels"), "severity"]) == {
        "quarantine"}
    assert quarantine.read(paths).empty
    assert stored(paths, "select count(distinct run_id) n from quality.gx_results")["n"].iloc[0] == 2


def test_heavy_tailed_and_sparse_columns_pass(tmp_path, frames):
    """Student-t (df 1.5) days to cover (stdev in the hundreds), revisions null where no analyst covers
    the name (40% of the names), insider ratios null on ~70% of rows: legitimate, not stopped."""
    rng = np.random.default_rng(3)
    alt, fund = frames["alt_data"].copy(), frames["fundamental"].copy()
    alt["short_days_to_cover"] = np.abs(rng.standard_t(1.5, len(alt))) * 40
    assert alt["short_days_to_cover"].std() > 100
    spells = rng.random(len(alt)) < 0.7
    alt.loc[spells, "insider_net_buy_ratio_90d"] = np.nan
    uncovered = fund["symbol"].isin(sorted(fund["symbol"].unique())[::5] + sorted(fund["symbol"].unique())[1::5])
    fund.loc[uncovered, "eps_revision_1m"] = np.nan
    assert 0.3 < uncovered.mean() < 0.5
    marts = {"alt_data": alt, "fundamental": fund, "labels": frames["labels"]}
    paths = make_dir(tmp_path, frames)
    for _ in range(2):  # first build (no reference), then against its reference
        results = check(paths, marts)
        assert failures(results, "critical").empty and failures(results, "quarantine").empty
    assert quarantine.read(paths).empty


# ------------------------------------------------------------------------------ structural
def _unit_change(frame: pd.DataFrame, rows) -> pd.DataFrame:
    """book_equity reported x1000: book_to_price x1000, roe / 1000 on those rows."""
    bad = frame.copy()
    bad.loc[rows, "book_to_price"] *= 1000.0
    bad.loc[rows, "roe"] /= 1000.0
    return bad


def test_unit_change_in_recent_rows_is_critical_without_reference(tmp_path, frames):
    paths = make_dir(tmp_path, frames)
    fund = frames["fundamental"]
    err = fail(paths, {"fundamental": _unit_change(fund, last_quarter(fund))})
    jumps = failures(err.results, "critical")
    assert set(jumps["rule"]) == {"scale_jump"}
    assert set(jumps["column_name"]) == {"book_to_price", "roe"}  # the columns it touches, named
    report = str(err)
    line = next(x for x in report.splitlines() if "column book_to_price" in x)
    assert "scale_jump" in line and "10^+3.0" in line and "x1,0" in line
    line = next(x for x in report.splitlines() if "column roe" in x)
    assert "10^-3.0" in line and "1/" in line
    # a rejected build leaves no reference and no quarantine behind
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    assert "reference_profile" not in tables and "quarantine" not in tables


def test_unit_change_is_critical_against_the_reference(tmp_path, frames):
    """The whole column in thousands (no step inside the batch): only the reference can see it."""
    paths = make_dir(tmp_path, frames)
    fund = frames["fundamental"]
    check(paths, {"fundamental": fund})
    err = fail(paths, {"fundamental": _unit_change(fund, fund.index)})
    jumps = failures(err.results, "critical")
    assert set(jumps["column_name"]) == {"book_to_price", "roe"}
    assert all(json.loads(d)["against"] == "reference" for d in jumps["details"])
    # the partial change of the recent rows, against the reference, is named too
    err = fail(paths, {"fundamental": _unit_change(fund, last_quarter(fund))})
    assert set(failures(err.results, "critical")["column_name"]) == {"book_to_price", "roe"}


@pytest.mark.parametrize("defect", ["all_null", "constant"])
def test_all_null_or_constant_feature_stops_the_build(tmp_path, frames, defect):
    paths = make_dir(tmp_path, frames)
    bad = frames["alt_data"].copy()
    column = bad.columns[2]
    bad[column] = np.nan if defect == "all_null" else 0.0
    err = fail(paths, {"alt_data": bad})
    critical = failures(err.results, "critical")
    assert set(critical["column_name"]) == {column}
    assert ("not_all_null" if defect == "all_null" else "not_constant") in set(critical["rule"])
    assert "view alt_data | not_" in str(err) and f"column {column}" in str(err)


def test_broken_keys_stop_the_build(tmp_path, frames):
    paths = make_dir(tmp_path, frames)
    micro = frames["microstructure"]
    dup = pd.concat([micro, micro.iloc[[7]]], ignore_index=True)
    assert "unique_keys" in set(failures(fail(paths, {"microstructure": dup}).results)["rule"])
    null_key = micro.copy()
    null_key.loc[null_key.index[3], "symbol"] = None
    assert "keys_not_null" in set(failures(fail(paths, {"microstructure": null_key}).results)["rule"])


def test_infinity_and_impossible_values_stop_the_build(tmp_path, frames):
    paths = make_dir(tmp_path, frames)
    bad = frames["price_momentum"].copy()
    column = bad.columns[3]
    bad.loc[bad.index[42], column] = np.inf
    err = fail(paths, {"price_momentum": bad})
    line = next(x for x in str(err).splitlines() if "| finite" in x)
    assert "view price_momentum" in line and f"column {column}" in line and "e.g. inf" in line
    # a declared range (dbt YAML accepted_range): forward returns below -100% are impossible
    assert quality.declared_ranges("labels")["fwd_ret_5d"] == (-1, None)
    labels = frames["labels"].copy()
    labels.loc[labels.index[5], "fwd_ret_5d"] = -1.5
    err = fail(paths, {"labels": labels})
    critical = failures(err.results, "critical")
    assert set(zip(critical["rule"], critical["column_name"], strict=True)) == {("declared_range", "fwd_ret_5d")}


def test_stale_last_date_fails_freshness(tmp_path, frames):
    paths = make_dir(tmp_path, frames)
    fund = frames["fundamental"]
    last = max(fund["date"])
    err = fail(paths, {"fundamental": fund[fund["date"] < last]})
    assert failures(err.results, "critical")["rule"].tolist() == ["freshness"]


# ------------------------------------------------------------------------------ quarantine
def test_null_rate_rise_against_reference_quarantines_and_training_leaves_it_out(tmp_path, frames):
    paths = make_dir(tmp_path, frames)
    alt = frames["alt_data"]
    check(paths, {"alt_data": alt, "labels": frames["labels"]})
    column = alt.columns[3]
    shifted = alt.copy()
    rng = np.random.default_rng(0)
    shifted.loc[rng.random(len(alt)) < 0.5, column] = np.nan  # the feed lost half its rows
    logged: list[str] = []
    results = quality.check_features(paths, frames={"alt_data": shifted, "labels": frames["labels"]},
                                     log=logged.append)  # does not raise: the run goes on
    held = failures(results, "quarantine")
    assert set(held["column_name"]) == {column} and "null_rate" in set(held["rule"])
    assert failures(results, "critical").empty
    assert any("quarantined" in line and f"alt_data.{column}" in line for line in logged)

    table = quarantine.read(paths)
    assert set(table["column_name"]) == {column} and set(table["view"]) == {"alt_data"}
    assert table["reason"].str.contains("null rate").any()
    assert quarantine.report_lines(paths)[0].startswith(f"alt_data.{column}: null_rate")
    from ml.report import build_report, render_report

    report = build_report(paths)
    assert report["quarantined_features"] == quarantine.report_lines(paths)
    assert f"- alt_data.{column}: null_rate" in render_report(report)

    # training frames (Feast full names <view>__<feature>) leave it out; other columns stay
    wide = shifted.rename(columns={c: f"alt_data__{c}" for c in shifted.columns if c not in ("symbol", "date")})
    out = quarantine.drop_from_frames({"alt_data": wide, "labels": frames["labels"]}, paths, log=None)
    assert f"alt_data__{column}" not in out["alt_data"].columns
    assert len(out["alt_data"].columns) == len(wide.columns) - 1
    assert quarantine.feature_ids(paths) == {f"alt_data__{column}"}
    only = shifted[["symbol", "date", column]].rename(columns={column: f"alt_data__{column}"})
    assert "alt_data" not in quarantine.drop_from_frames({"alt_data": only}, paths, log=None)  # nothing left
    check(paths, {"fundamental": frames["fundamental"]})  # a run of other views keeps this quarantine
    assert quarantine.feature_ids(paths) == {f"alt_data__{column}"}

    # the quarantined column keeps its old reference: the same data stays quarantined
    again = check(paths, {"alt_data": shifted, "labels": frames["labels"]})
    assert set(failures(again, "quarantine")["column_name"]) == {column}
    # and data back to normal clears it
    assert failures(check(paths, {"alt_data": alt, "labels": frames["labels"]}), "quarantine").empty
    assert quarantine.read(paths).empty


def test_moderate_rescale_against_reference_quarantines_not_stops(tmp_path, frames):
    paths = make_dir(tmp_path, frames)
    fund = frames["fundamental"]
    check(paths, {"fundamental": fund})
    bad = fund.assign(book_to_price=fund["book_to_price"] * 5.0)  # 5x: not a unit change, not right either
    results = check(paths, {"fundamental": bad})
    assert failures(results, "critical").empty
    held = failures(results, "quarantine")
    assert set(held["column_name"]) == {"book_to_price"} and {"scale_shift", "psi"} <= set(held["rule"])


def test_new_days_against_the_reference_pass(tmp_path, frames):
    """The daily case: the reference was built a few months ago, the batch has the days since."""
    paths = make_dir(tmp_path, frames)
    older = {}
    for name in ("alt_data", "fundamental", "labels"):
        dates = pd.to_datetime(frames[name]["date"])
        older[name] = frames[name][dates <= dates.max() - pd.Timedelta(days=75)]
    check(paths, older, latest=max(older["labels"]["date"]))
    results = check(paths, {n: frames[n] for n in older})
    assert failures(results).empty, failures(results)[["view", "rule", "column_name", "observed_value"]]


def test_reference_from_other_raw_data_is_not_used(tmp_path, frames):
    paths = make_dir(tmp_path, frames)
    check(paths, {"alt_data": frames["alt_data"]})
    (paths.raw / "_source.json").write_text(json.dumps({"source": "synthetic", "seed": 99}))
    results = check(paths, {"alt_data": frames["alt_data"]})
    assert set(failures(results)["rule"]) == {"reference_profile"}


# ------------------------------------------------------------------------------------ config
def test_config_file_and_overrides(tmp_path):
    cfg = quality.QualityConfig.load()
    assert cfg.scale_jump_log10 == 2.0 and cfg.max_null_rate_increase == 0.25
    assert quality.QualityConfig.load({"scale_jump_log10": 3}).scale_jump_log10 == 3.0
    path = tmp_path / "q.yaml"
    path.write_text("max_psi: 0.5\n")
    assert quality.QualityConfig.load(path).max_psi == 0.5
    with pytest.raises(ConfigError, match="unknown key"):
        quality.QualityConfig.load({"max_null_rate": 0.25})
