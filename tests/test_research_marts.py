"""The feature research marts (models/research/) against plain pandas and the project's own metrics.

Built once on the analyst sandbox (tests/conftest.py: a small market with an analyst's extra view).
Each figure an analyst reads in `aurora features` must equal an obvious recomputation: the rank IC is
ml.metrics.daily_ic where a feature covers every labelled name (and within a small tolerance where it
covers fewer: macros/research.sql ranks a label once per date), the t-statistic is
ml.monitoring.ic.nw_t_stat, turnover and autocorrelation follow their definitions, correlations are
pairwise Spearman, and a neutralized feature is orthogonal to the baseline view.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.metrics import daily_ic
from ml.monitoring.ic import nw_t_stat

STRIDE = 5


@pytest.fixture(scope="module")
def marts(analyst_sandbox):
    _, paths, *_ = analyst_sandbox
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        yield paths, con
    finally:
        con.close()


def _sampled(con) -> pd.DataFrame:
    return con.execute("select * from research.int_research_dates_sampled order by date").fetchdf()


def _panel(paths, view: str, feature: str, dates: pd.Series) -> pd.DataFrame:
    mart = pd.read_parquet(paths.features / f"{view}.parquet", columns=["date", "symbol", feature])
    labels = pd.read_parquet(paths.features / "labels.parquet")
    frame = labels.merge(mart, on=["date", "symbol"], how="left")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame[frame["date"].isin(pd.to_datetime(dates))]


def _daily(con, view: str, feature: str) -> pd.DataFrame:
    out = con.execute("select * from research.research_feature_daily where view_name = ? and feature = ? "
                      "order by date", [view, feature]).fetchdf()
    out["date"] = pd.to_datetime(out["date"])
    return out.set_index("date")


def test_research_dates_are_every_fifth_trading_date_from_the_first(marts):
    paths, con = marts
    calendar = np.sort(pd.to_datetime(pd.read_parquet(paths.features / "labels.parquet")["date"]).unique())
    sampled = _sampled(con)
    assert list(pd.to_datetime(sampled["date"])) == list(calendar[::STRIDE])
    assert sampled["prev_date"].isna().sum() == 1


def test_rank_ic_is_the_projects_spearman_ic_where_the_feature_covers_every_name(marts):
    paths, con = marts
    dates = _sampled(con)["date"]
    panel = _panel(paths, "price_momentum", "ret_5d", dates)
    daily = _daily(con, "price_momentum", "ret_5d")
    for label in ("fwd_ret_1d", "fwd_ret_sn_5d", "fwd_ret_21d"):
        g = panel.groupby("date")
        full = (g["ret_5d"].count() == g[label].count()) & (g[label].count() == g["symbol"].count())
        expected = daily_ic(panel, "ret_5d", label)
        expected = expected[expected.index.isin(full[full].index)]
        got = daily.loc[expected.index, f"ic_{label}"]
        assert len(expected) > 20
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=1e-9)


def test_rank_ic_stays_close_where_a_feature_covers_fewer_names(marts):
    paths, con = marts
    dates = _sampled(con)["date"]
    panel = _panel(paths, "fundamental", "sue", dates)
    assert panel["sue"].isna().mean() > 0.05          # sparse enough to exercise the approximation
    expected = daily_ic(panel, "sue", "fwd_ret_sn_5d")
    got = _daily(con, "fundamental", "sue").loc[expected.index, "ic_fwd_ret_sn_5d"]
    exact = got.index[(got - expected).abs() < 1e-9]
    assert len(exact) > len(got) / 2               # same names on both sides: the same IC
    assert np.abs(got - expected).max() < 0.05     # ~17 of 30 names on the first dates
    assert abs(got.mean() - expected.mean()) < 0.003


def test_ic_t_is_newey_west_with_the_labels_overlap(marts):
    _, con = marts
    summary = con.execute("select * from research.research_feature_summary "
                          "where view_name = 'price_momentum' and feature in ('ret_5d', 'mom_12_1')").fetchdf()
    assert len(summary) == 12
    for row in summary.itertuples():
        ics = _daily(con, row.view_name, row.feature)[f"ic_{row.label}"].dropna().to_numpy()
        mean, t, n = nw_t_stat(ics, lags=math.ceil(row.horizon / STRIDE))
        assert row.n_dates == n and row.mean_ic == pytest.approx(mean, abs=1e-12)
        assert row.ic_t == pytest.approx(t, rel=1e-9)


def test_turnover_and_rank_autocorrelation_follow_their_definitions(marts):
    paths, con = marts
    sampled = _sampled(con)
    panel = _panel(paths, "price_momentum", "ret_21d", sampled["date"]).dropna(subset=["ret_21d"])
    panel["pct"] = panel.groupby("date")["ret_21d"].rank(method="average")
    panel["pct"] = (panel["pct"] - 1) / (panel.groupby("date")["ret_21d"].transform("count") - 1)
    panel["decile"] = np.minimum(9, np.floor(panel["pct"] * 10)).astype(int)
    wide_pct = panel.pivot(index="date", columns="symbol", values="pct")
    wide_dec = panel.pivot(index="date", columns="symbol", values="decile")
    daily = _daily(con, "price_momentum", "ret_21d")
    for t in range(1, len(wide_pct)):
        date = wide_pct.index[t]
        now, before = wide_pct.iloc[t], wide_pct.iloc[t - 1]
        both = now.notna() & before.notna()
        if both.sum() >= 10:
            assert daily.loc[date, "rank_autocorr"] == pytest.approx(np.corrcoef(now[both], before[both])[0, 1],
                                                                     abs=1e-9)
        top = wide_dec.iloc[t] == 9
        changed = top & (wide_dec.iloc[t - 1] != 9)
        assert daily.loc[date, "top_turnover"] == pytest.approx(changed.sum() / top.sum(), abs=1e-12)


def test_correlations_are_pairwise_spearman_averaged_over_dates(marts):
    paths, con = marts
    dates = _sampled(con)["date"]
    mine = _panel(paths, "my_view", "my_ret_3d_mean", dates)
    base = _panel(paths, "price_momentum", "ret_3d", dates)[["date", "symbol", "ret_3d"]]
    both = mine.merge(base, on=["date", "symbol"]).dropna(subset=["my_ret_3d_mean", "ret_3d"])
    per_date = both.groupby("date").apply(
        lambda g: g["my_ret_3d_mean"].rank().corr(g["ret_3d"].rank()) if len(g) >= 10 else np.nan,
        include_groups=False).dropna()
    row = con.execute("select corr, n_dates from research.research_feature_correlation where view_a = 'my_view' "
                      "and feature_a = 'my_ret_3d_mean' and view_b = 'price_momentum' and feature_b = 'ret_3d'"
                      ).fetchone()
    assert row[1] == len(per_date)
    assert row[0] == pytest.approx(per_date.mean(), abs=1e-9)
    assert row[0] > 0.9       # a 3-day mean return restates the 3-day return


def test_a_neutralized_feature_is_orthogonal_to_the_baseline_view(marts):
    _, con = marts
    frame = con.execute("""
        select n.date, n.symbol, n.resid, b.feature as base_feature, b.rank_pct - 0.5 as base
        from research.int_feature_ranks_neutralized n
        join research.int_feature_ranks_computed b
          on b.date = n.date and b.symbol = n.symbol and b.view_name = 'price_momentum'
        where n.view_name = 'my_view' and n.feature = 'my_ret_3d_mean'
    """).fetchdf()
    assert not frame.empty
    base = frame.pivot_table(index=["date", "symbol"], columns="base_feature", values="base",
                             observed=True).fillna(0.0)
    resid = frame.groupby(["date", "symbol"], observed=True)["resid"].first().loc[base.index]
    for _, rows in base.groupby(level="date"):
        r = resid.loc[rows.index].to_numpy()
        np.testing.assert_allclose(rows.to_numpy().T @ r, 0.0, atol=1e-8)
        assert abs(r.sum()) < 1e-8
    ortho = con.execute("select * from research.research_feature_orthogonality").fetchdf()
    assert ortho.loc[ortho["view_name"] == "price_momentum", "orthogonal_ic"].isna().all()
    assert ortho.loc[ortho["view_name"] == "my_view", "orthogonal_ic"].notna().all()


def test_view_summary_has_one_row_per_built_view(marts):
    _, con = marts
    views = con.execute("select * from research.research_view_summary").fetchdf().set_index("view_name")
    assert {"price_momentum", "sector_neutral", "my_view"} <= set(views.index)
    assert bool(views.loc["price_momentum", "is_baseline"]) and not bool(views.loc["my_view", "is_baseline"])
    assert views.loc["my_view", "n_features"] == 2
    assert views.loc["my_view", "max_abs_corr_baseline"] > 0.9


def test_pairwise_correlation_math_equals_pandas_pairwise_spearman():
    from ml.data.research_math import mean_pairwise_corr

    rng = np.random.default_rng(3)
    cube = rng.random((4, 30, 3))
    cube[:, :, 1] = cube[:, :, 0] * 0.5 + rng.random((4, 30)) * 0.5
    cube[0, :8, 2] = np.nan
    cube[1, 5:, 2] = np.nan                       # only 5 names hold both: that date is left out
    corr, count = mean_pairwise_corr(cube)
    expected = [pd.DataFrame(cube[t]).corr(min_periods=10).to_numpy() for t in range(4)]
    stacked = np.stack(expected)
    np.testing.assert_allclose(corr, np.nanmean(stacked, axis=0), atol=1e-12)
    assert count[0, 2] == 3 and count[0, 1] == 4


def test_neutralizing_math_leaves_residuals_orthogonal_to_the_baseline_over_each_features_names():
    from ml.data.research_math import neutralize

    rng = np.random.default_rng(4)
    cube = rng.random((3, 40, 5))
    cube[0, :6, 3] = np.nan
    cube[1, 12:, 4] = np.nan
    cube[2, :3, 0] = np.nan                       # a baseline value a name lacks counts as the median
    is_base = np.array([True, True, False, False, False])
    resid = neutralize(cube, is_base)
    for t in range(3):
        for j in range(3):
            held = np.isfinite(resid[t, :, j])
            assert held.sum() == np.isfinite(cube[t, :, 2 + j]).sum()
            base = np.nan_to_num(cube[t][held][:, is_base] - 0.5)
            np.testing.assert_allclose(base.T @ resid[t, held, j], 0.0, atol=1e-12)
            assert abs(resid[t, held, j].sum()) < 1e-12
