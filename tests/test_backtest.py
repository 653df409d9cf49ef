"""Backtest accounting and the backtest stage: timing (decide at t, earn from t+1), costs on every trade,
delistings, trailing market statistics, labels, metrics, and atomic writes of the ml.* tables."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from policy_fixtures import toy_market

from ml import policy as pol
from ml.backtest import backtest_daily, forward_label, market_panel, max_drawdown, performance
from ml.costs import Commission, HalfSpread, SquareRootImpact
from ml.evaluation import BEST_SINGLE_WALK_FORWARD, run_backtest_stage
from ml.models.registry_store import connect as registry_connect
from ml.paths import DataPaths
from ml.report import REPORT_KEYS, build_report, update_saved_report
from ml.tables import write_tables

REPORT_FROM_STAGE = {"oos_rank_ic", "oos_ic", "icir", "best_single_model_rank_ic", "sharpe_gross", "sharpe_net",
                     "max_drawdown", "turnover_monthly", "cost_retention", "coverage_80", "calibration_error"}


@pytest.fixture(scope="module")
def toy():
    market = toy_market(n_symbols=40, n_days=360)
    return market, market_panel(market.prices, market.securities)


def _signals_from_state(mp, toy, scale=40.0, unc=2.0) -> pol.SignalPanel:
    er = mp.grid(toy.state.set_index(["date", "symbol"])["s"]) * scale
    return pol.SignalPanel(er, er - 500, er + 500, np.where(np.isfinite(er), unc, np.nan))


def _policy():
    return pol.CostAwarePolicy(costs=HalfSpread() + Commission(1.0) + SquareRootImpact(1.0), capital=1e7)


# ---------------------------------------------------------------------------------------- timing
def test_positions_decided_at_t_earn_returns_from_t_plus_1(toy):
    _, mp = toy
    T, N = mp.shape
    w = np.zeros((T, N))
    t, j = 100, 7
    w[t, j] = 0.5  # bought at the close of t, sold at the close of t+1
    trades = np.diff(np.vstack([np.zeros((1, N)), w]), axis=0)
    daily = backtest_daily(w, trades, np.zeros((T, N)), mp)
    r = mp.returns
    assert daily["gross_return"].iloc[t] == 0.0
    assert daily["gross_return"].iloc[t + 1] == pytest.approx(0.5 * r[t + 1, j])
    assert daily["gross_return"].drop([t + 1]).abs().max() == 0.0
    assert daily["turnover"].iloc[t] == 0.5 and daily["turnover"].iloc[t + 1] == 0.5


def test_returns_are_close_to_close_from_raw_prices(toy):
    market, mp = toy
    sym = mp.symbols[5]
    closes = market.prices[market.prices["symbol"] == sym].set_index("date")["close"]
    j = mp.symbols.get_loc(sym)
    assert mp.returns[50, j] == pytest.approx(closes.iloc[50] / closes.iloc[49] - 1)


def test_decisions_ignore_prices_after_the_decision_date(toy):
    market, mp = toy
    t = 250
    prices = market.prices.copy()
    after = pd.to_datetime(prices["date"]) > mp.dates[t]
    prices.loc[after, "close"] *= np.exp(np.random.default_rng(2).normal(0, 0.2, after.sum()))
    other = market_panel(prices, market.securities)
    for name in ("returns", "sigma", "adv_value", "beta", "spread_bps"):
        a, b = getattr(mp, name)[: t + 1], getattr(other, name)[: t + 1]
        assert np.array_equal(np.nan_to_num(a), np.nan_to_num(b)), name
    sig = _signals_from_state(mp, market)
    base, moved = _policy().run(sig, mp), _policy().run(sig, other)
    assert np.array_equal(base.weights[: t + 1], moved.weights[: t + 1])
    d0 = backtest_daily(base.weights, base.trades, base.costs, mp)
    d1 = backtest_daily(moved.weights, moved.trades, moved.costs, other)
    assert np.allclose(d0["net_return"].iloc[: t + 1], d1["net_return"].iloc[: t + 1])


def test_whole_chain_signals_and_decisions_at_t_ignore_prices_after_t():
    """Ensemble weights, calibration, policy: perturbing every price after t changes nothing up to t."""
    from ml.ensemble import load_config as ensemble_config
    from ml.evaluation import compare
    from ml.policy import load_config as policy_config

    market = toy_market(n_symbols=30, n_days=320, seed=4)
    ecfg, pcfg = ensemble_config(SMALL), policy_config()
    base_mp = market_panel(market.prices, market.securities)
    t = 260
    prices = market.prices.copy()
    after = pd.to_datetime(prices["date"]) > base_mp.dates[t]
    prices.loc[after, "close"] *= np.exp(np.random.default_rng(9).normal(0, 0.1, after.sum()))
    runs = [compare(market.predictions, mp, ecfg, pcfg, log=lambda _m: None)
            for mp in (base_mp, market_panel(prices, market.securities))]
    upto = [c.signals["stacked"][pd.to_datetime(c.signals["stacked"]["date"]) <= base_mp.dates[t]] for c in runs]
    assert len(upto[0]) > 0
    pd.testing.assert_frame_equal(upto[0].reset_index(drop=True), upto[1].reset_index(drop=True))
    w0, w1 = (c.runs[c.chosen].result.weights[: t + 1] for c in runs)
    assert np.array_equal(w0, w1)


# ---------------------------------------------------------------------------------------- costs
def test_costs_are_charged_on_every_trade(toy):
    market, mp = toy
    res = _policy().run(_signals_from_state(mp, market), mp)
    traded = np.abs(res.trades) > 0
    assert traded.sum() > 100
    assert (res.costs[traded] > 0).all() and (res.costs[~traded] == 0).all()
    daily = backtest_daily(res.weights, res.trades, res.costs, mp)
    assert np.allclose(daily["cost"], res.costs.sum(axis=1))
    assert np.allclose(daily["net_return"], daily["gross_return"] - daily["cost"])
    expected = (HalfSpread() + Commission(1.0) + SquareRootImpact(1.0)).cost(
        res.trades[200], mp.costs_at(200), 1e7)
    assert np.allclose(res.costs[200], expected)


# ---------------------------------------------------------------------------------------- delistings
def test_delisted_position_is_closed_at_its_last_price(toy):
    market, mp = toy
    j = 1  # delists at 60% of the sample
    last = int(np.flatnonzero(mp.tradable[:, j]).max())
    er = np.where(mp.tradable | (np.arange(mp.shape[1]) == j), 0.0, np.nan)
    er[:, j] = 50.0
    er[:, 0] = -50.0
    sig = pol.SignalPanel(er, er - 500, er + 500, np.zeros(mp.shape))
    policy = pol.CostAwarePolicy(costs=HalfSpread(), capital=1e7, threshold=None, turnover=None,
                                 risk=pol.RiskBudget(neutral=("dollar",), target_vol=None, max_adv_fraction=None))
    res = policy.run(sig, mp, start=100)
    assert res.weights[last, j] > 0
    book_return = (res.weights[last] * np.nan_to_num(mp.returns[last + 1])).sum()
    drifted = res.weights[last, j] / (1 + book_return)  # its value is frozen at the last price
    assert res.weights[last + 1, j] == 0.0 and res.trades[last + 1, j] == pytest.approx(-drifted)
    assert res.reasons[last + 1, j] == pol.CLOSED
    assert res.costs[last + 1, j] > 0  # charged at its last known spread
    assert (res.weights[last + 1:, j] == 0).all()
    daily = backtest_daily(res.weights, res.trades, res.costs, mp)
    others = np.nan_to_num(mp.returns[last + 1]) * res.weights[last]
    assert daily["gross_return"].iloc[last + 1] == pytest.approx(others.sum())  # the delisted name earns 0


# ---------------------------------------------------------------------------------------- labels
def test_forward_label_is_sector_neutral_and_spans_t_plus_1_to_t_plus_h(toy):
    _, mp = toy
    label = forward_label(mp, 5, "sector")
    raw = forward_label(mp, 5, "raw")
    t, j = 100, 9
    key = (mp.dates[t], mp.symbols[j])
    assert raw[key] == pytest.approx(mp.close[t + 5, j] / mp.close[t, j] - 1)
    day = label.xs(mp.dates[t], level="date")
    sectors = pd.Series(mp.sector, index=mp.symbols).reindex(day.index)
    assert day.groupby(sectors).sum().abs().max() < 1e-12
    assert mp.dates[-5] not in label.index.get_level_values("date")


# ---------------------------------------------------------------------------------------- metrics
def test_performance_metrics_follow_their_definitions():
    dates = pd.bdate_range("2021-01-01", periods=6)
    daily = pd.DataFrame({
        "date": dates, "gross_return": [0.01, 0.02, -0.03, 0.01, 0.0, 0.01],
        "cost": [0.001] * 6, "gross_exposure": [2.0] * 6, "net_exposure": [0.0] * 6,
        "beta_exposure": [0.0] * 6, "turnover": [0.2] * 6, "n_long": [5] * 6, "n_short": [5] * 6,
    })
    daily["net_return"] = daily["gross_return"] - daily["cost"]
    m = performance(daily)
    assert m["cost_retention"] == pytest.approx(daily["net_return"].mean() / daily["gross_return"].mean())
    assert m["max_drawdown"] == pytest.approx(max_drawdown(daily["net_return"]))
    assert m["turnover_monthly_nav"] == pytest.approx(0.6)  # one month: 6 days x 0.2 / 2
    assert m["turnover_monthly"] == pytest.approx(0.3)  # ... per unit of gross exposure
    assert max_drawdown([0.1, -0.5, 0.2]) == pytest.approx(0.5)
    assert m["hit_rate"] == pytest.approx(4 / 6)


# ---------------------------------------------------------------------------------------- the stage
def _write_data_dir(root, market, statuses=None, oracle=True) -> DataPaths:
    paths = DataPaths.from_env(root)
    paths.raw.mkdir(parents=True)
    market.prices.to_parquet(paths.raw_table("prices"))
    market.securities.to_parquet(paths.raw_table("securities"))
    if oracle:
        paths.oracle.mkdir()
        market.state.assign(er_5d=market.state["s"] * 0.004).to_parquet(paths.oracle / "expected_returns.parquet")
    con = registry_connect(paths)
    preds = market.predictions.assign(date=pd.to_datetime(market.predictions["date"]).dt.date)
    con.register("_p", preds)
    con.execute("insert into ml.predictions select date, symbol, model_id, score from _p")
    for model_id, status in (statuses or {}).items():
        con.execute(
            "insert into ml.model_registry (model_id, family, view, features, feature_versions, params, "
            "artifact_path, artifact_format, artifact_sha256, status, created_at, updated_at) values "
            "(?, ?, 'toy', '[]', '{}', '{}', '-', '-', '-', ?, now(), now())",
            [model_id, model_id.split("-")[0], status])
    con.close()
    return paths


SMALL = {"calibration": {"min_train_days": 60}, "stacked": {"min_train_days": 40},
         "ic_weighted": {"window": 60, "min_periods": 20}}


def test_stage_writes_the_tables_and_returns_the_report_keys(tmp_path):
    market = toy_market(n_symbols=40, n_days=360)
    paths = _write_data_dir(tmp_path / "data", market)
    report = run_backtest_stage(paths, log=lambda _m: None, ensemble_config={**SMALL, "method": "ic_weighted"})
    assert REPORT_FROM_STAGE <= set(report) and REPORT_FROM_STAGE <= set(REPORT_KEYS)
    assert all(np.isfinite(report[k]) for k in REPORT_FROM_STAGE)
    assert report["oos_rank_ic"] > 0.05 and report["sharpe_gross"] > 0
    assert "oracle_policy_sharpe_net" in report and "naive_sharpe_net" in report
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    signals = con.execute("select * from ml.signals").df()
    positions = con.execute("select * from ml.positions").df()
    daily = con.execute("select * from ml.backtest_daily").df()
    comparison = con.execute("select * from ml.ensemble_comparison").df()
    con.close()
    assert list(signals.columns) == ["date", "symbol", "expected_return", "lower", "upper", "uncertainty",
                                     "ensemble_version", "prob_up", "track_record_scale"]
    assert signals["ensemble_version"].str.startswith("ic_weighted-").all()
    assert pd.Timestamp(signals["date"].max()) == pd.Timestamp(market.prices["date"].max())  # the latest day
    assert list(positions.columns) == ["date", "symbol", "target_weight", "trade", "cost_estimate", "reason"]
    assert {"gross_return", "cost", "net_return", "gross_exposure", "net_exposure", "turnover", "n_long",
            "n_short"} <= set(daily.columns)
    assert {"equal", "ic_weighted", "stacked", "oracle", "naive_decile", "best_trailing"} <= set(comparison["name"])
    assert comparison.loc[comparison["chosen"], "name"].tolist() == ["ic_weighted"]
    # the headline best single model is the walk-forward pick of the comparison, never the hindsight best
    walk_forward = comparison.loc[comparison["kind"] == "best_single_walk_forward", "rank_ic"].item()
    hindsight = comparison.loc[comparison["kind"] == "best_single_hindsight", "rank_ic"].item()
    assert report["best_single_model_rank_ic"] == pytest.approx(walk_forward) and walk_forward != hindsight
    assert report["best_single_model"] == BEST_SINGLE_WALK_FORWARD
    # the stages never read the oracle: the share of it is derived when the report is read
    assert not {"oracle_rank_ic", "best_single_model_share_of_oracle"} & set(report)
    assert not {"ensemble_best_single_rank_ic", "ensemble_best_trailing_rank_ic"} & set(report)


def test_ensemble_and_policy_are_separate_stages_joined_by_persisted_signals(tmp_path):
    from ml.evaluation import compare, run_ensemble_stage, run_policy_stage

    market = toy_market(n_symbols=40, n_days=360)
    paths = _write_data_dir(tmp_path / "data", market)
    with pytest.raises(ValueError, match="ensemble_calibrate"):
        run_policy_stage(paths, log=lambda _m: None)  # nothing to trade yet: says which stage comes first
    update_saved_report(paths, oracle_rank_ic=0.25)  # as the train stage writes it
    first = run_ensemble_stage(paths, log=lambda _m: None, ensemble_config=SMALL)
    assert not {"oracle_rank_ic", "best_single_model_share_of_oracle"} & set(first)  # the stage never reads it
    update_saved_report(paths, **first)
    report = build_report(paths)  # the share is derived on reading, over the train stage's oracle
    assert report["best_single_model_share_of_oracle"] == pytest.approx(first["best_single_model_rank_ic"] / 0.25)
    assert {"oos_rank_ic", "coverage_80", "calibration_error"} <= set(first) and "sharpe_net" not in first
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    every = con.execute("select * from ml.ensemble_signals").df()
    from ml.ensemble import METHODS

    assert set(every["method"]) == set(METHODS)  # every ensemble method, the neural one and the choice included
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables() where schema_name = 'ml'").fetchall()}
    assert "positions" not in tables and "backtest_daily" not in tables  # the policy has not run
    con.close()
    second = run_policy_stage(paths, log=lambda _m: None, ensemble_config=SMALL)
    assert {"sharpe_net", "max_drawdown", "turnover_monthly", "cost_retention"} <= set(second)
    assert isinstance(second["policy_warnings"], list)  # the guardrails (tests/test_guardrails.py)
    assert second["policy_diagnostics"]["n_days"] > 0 and "reason_counts" in second["policy_diagnostics"]
    # the persisted signals give the same backtest as doing both in memory
    from ml.ensemble import load_config as ensemble_config
    from ml.evaluation import load_label, read_predictions
    from ml.policy import load_config as policy_config

    mp = market_panel(market.prices, market.securities)
    preds, families, active = read_predictions(paths)
    label, _ = load_label(paths, mp, ensemble_config(SMALL))
    oracle = pd.read_parquet(paths.oracle / "expected_returns.parquet", columns=["date", "symbol", "er_5d"])
    comp = compare(preds, mp, ensemble_config(SMALL), policy_config(), oracle=oracle, families=families,
                   active=active, log=lambda _m: None, label=label)
    assert second["sharpe_net"] == pytest.approx(comp.runs[comp.chosen].metrics["sharpe_net"], rel=1e-9)
    assert first["oos_rank_ic"] == pytest.approx(float(comp.table.set_index("name").loc[comp.chosen, "rank_ic"]))
    walk_forward = comp.table.loc[comp.table["kind"] == "best_single_walk_forward", "rank_ic"].item()
    assert first["best_single_model_rank_ic"] == pytest.approx(walk_forward) == comp.best_single[1]


def test_stage_uses_only_active_models(tmp_path):
    market = toy_market(n_symbols=40, n_days=360)
    statuses = {"good-toy": "retired", "fair-toy": "active", "weak-toy": "active", "noise-toy": "active",
                "wrong-toy": "candidate"}
    paths = _write_data_dir(tmp_path / "data", market, statuses, oracle=False)
    run_backtest_stage(paths, log=lambda _m: None, ensemble_config=SMALL)
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    comparison = con.execute("select * from ml.ensemble_comparison").df()
    con.close()
    assert comparison.loc[comparison["kind"] == "best_single_hindsight", "name"].item() == "fair-toy"
    assert "oracle" not in set(comparison["name"])


def test_label_comes_from_the_label_mart_when_present_relative_to_the_day(tmp_path):
    from ml.ensemble import load_config
    from ml.evaluation import load_label

    market = toy_market(n_symbols=20, n_days=120)
    mp = market_panel(market.prices, market.securities)
    paths = DataPaths.from_env(tmp_path / "data")
    label, source = load_label(paths, mp, load_config())
    assert source.startswith("raw") and label.equals(forward_label(mp, 5, "sector"))
    paths.features.mkdir(parents=True)
    mart = market.prices[["symbol", "date"]].assign(fwd_ret_sn_5d=np.random.default_rng(0).normal(0.01, 0.02,
                                                                                                   len(market.prices)))
    mart.to_parquet(paths.features / "labels.parquet")
    label, source = load_label(paths, mp, load_config())
    assert "labels.parquet" in source
    assert label.groupby(level="date").mean().abs().max() < 1e-12  # relative to the day's mean
    assert len(label) == len(mart)


def test_a_failed_write_leaves_the_previous_tables_intact(tmp_path):
    paths = DataPaths.from_env(tmp_path / "data")
    paths.root.mkdir(parents=True)
    old = pd.DataFrame({"date": [pd.Timestamp("2021-01-04").date()], "symbol": ["A"], "expected_return": [1.0]})
    write_tables(paths, {"signals": old, "positions": old.assign(reason="trade")})
    new = old.assign(expected_return=2.0)
    with pytest.raises(duckdb.Error):
        write_tables(paths, {"signals": new, "positions bad name": new})
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    assert con.execute("select expected_return from ml.signals").fetchall() == [(1.0,)]
    assert con.execute("select reason from ml.positions").fetchall() == [("trade",)]
    con.close()


def test_the_policy_backtests_the_chosen_method_unless_every_method_is_asked_for():
    from ml.policy_stage import compared_methods

    signals = {m: pd.DataFrame({"method": [m]}) for m in ("equal", "stacked", "walk_forward_choice")}
    assert list(compared_methods(signals, "stacked", pol.load_config())) == ["stacked"]  # the shipped default
    assert list(compared_methods(signals, "stacked", {"compare_methods": "all"})) == list(signals)
    with pytest.raises(ValueError, match="compare_methods"):
        compared_methods(signals, "stacked", {"compare_methods": "every"})


def test_a_monitored_warehouse_without_its_dated_statuses_is_refused_not_read_with_hindsight(tmp_path):
    """Once the monitor has run, the registry's statuses are today's verdicts: applied to every past date
    they would pick models by their future. Without `ml.model_status_daily` the stage says so."""
    from ml.evaluation import read_prediction_panel

    market = toy_market(n_symbols=20, n_days=120)
    paths = _write_data_dir(tmp_path / "data", market, {"good-toy": "retired", "fair-toy": "active"}, oracle=False)
    assert read_prediction_panel(paths).active == ["fair-toy"]  # a hand-kept registry: its statuses are the user's
    con = registry_connect(paths)
    con.execute("create table ml.lifecycle_events (date date, model_id varchar, event varchar)")
    con.close()
    with pytest.raises(RuntimeError, match="model_status_daily is missing but the monitor has run"):
        read_prediction_panel(paths)
