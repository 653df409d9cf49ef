"""prob_up (ml/probability.py): the walk-forward probability that a name beats its sector over the
horizon. Point in time (outcomes after t cannot move prob_up before t + horizon + 1), calibrated where
the truth is known, at the base rate where there is no signal, judged by Brier, its skill and a
reliability table; and present in [0, 1] in the signals the ensemble stage writes."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from policy_fixtures import toy_market
from scipy.special import expit

from ml.paths import DataPaths
from ml.probability import (
    ProbabilityCalibrator,
    brier_score,
    brier_skill_score,
    fit_platt,
    probability_from_config,
    reliability_table,
    up_outcome,
)

H = 5


def _panel(n_days: int = 420, n_names: int = 120, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-01", periods=n_days)
    index = pd.MultiIndex.from_product([dates, [f"S{i:03d}" for i in range(n_names)]], names=["date", "symbol"])
    return pd.Series(rng.standard_normal(len(index)), index=index, name="x")


def _draw(p: pd.Series, seed: int = 1) -> pd.Series:
    return pd.Series((np.random.default_rng(seed).random(len(p)) < p.to_numpy()).astype(float), index=p.index)


def _calibrator(**kw) -> ProbabilityCalibrator:
    return ProbabilityCalibrator(horizon=H, min_train_days=60, selection_min_days=21, **kw)


# ---------------------------------------------------------------------------------------- point in time
@pytest.mark.parametrize("method", ["platt", "isotonic", "auto"])
def test_outcomes_after_t_do_not_change_prob_up_up_to_t_plus_horizon_plus_one(method):
    x = _panel()
    y = _draw(expit(0.7 * x))
    calendar = x.index.get_level_values("date").unique()
    months = calendar.to_period("M")
    refit = next(i for i in range(301, len(calendar)) if months[i] != months[i - 1])  # a monthly refit date
    t = refit - H - 1  # the refit date is t + H + 1: the tightest case, it may use outcomes up to t only
    tampered = y.copy()
    after = x.index.get_level_values("date") > calendar[t]
    tampered[after] = 1.0 - tampered[after]  # every outcome after t flipped
    base = _calibrator(method=method).fit_predict(x, y)
    moved = _calibrator(method=method).fit_predict(x, tampered)
    cut = calendar[t + H + 1]  # outcomes of t + 1 are known at the close of t + 1 + H: used from the next day on
    early = base.index.get_level_values("date") <= cut
    assert early.sum() > 0
    pd.testing.assert_frame_equal(base[early], moved.loc[base.index[early]])
    later = base.index.get_level_values("date") > calendar[t + 2 * 21 + H]  # after the next refits it moves
    assert not np.allclose(base.loc[later, "prob_up"], moved.loc[base.index[later], "prob_up"])


def test_nothing_before_the_warm_up_and_deterministic():
    x = _panel(n_days=200)
    y = _draw(expit(0.5 * x))
    a = _calibrator().fit_predict(x, y)
    b = _calibrator().fit_predict(x, y)
    pd.testing.assert_frame_equal(a, b)
    calendar = x.index.get_level_values("date").unique()
    first = a.index.get_level_values("date").min()
    assert calendar.get_loc(first) >= 60 + H + 1  # min_train_days dates of known outcomes first


# ---------------------------------------------------------------------------------------- calibration
def test_calibrated_where_the_truth_is_a_known_logistic():
    x = _panel()
    truth = expit(-0.2 + 0.9 * x)
    y = _draw(truth)
    out = _calibrator(method="auto").fit_predict(x, y)
    err = (out["prob_up"] - truth.reindex(out.index)).abs()
    assert err.mean() < 0.02
    table = reliability_table(out["prob_up"], y, n_bins=10)
    assert len(table) == 10 and table["n"].sum() == len(out)
    assert (table["observed"] - table["predicted"]).abs().max() < 0.03
    assert table["predicted"].is_monotonic_increasing
    assert brier_skill_score(out["prob_up"], y, out["base_rate"]) > 0.1


def test_platt_recovers_the_logistic_parameters():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(200_000)
    y = (rng.random(len(x)) < expit(0.3 - 1.2 * x)).astype(float)
    a, b = fit_platt(x, y)
    assert a == pytest.approx(0.3, abs=0.03) and b == pytest.approx(-1.2, abs=0.03)


def test_without_signal_prob_up_stays_at_the_base_rate_and_has_no_skill():
    x = _panel()
    y = _draw(pd.Series(0.46, index=x.index))  # outcomes independent of the score
    out = _calibrator(method="auto").fit_predict(x, y)
    assert (out["prob_up"] - 0.46).abs().quantile(0.99) < 0.04
    assert abs(brier_skill_score(out["prob_up"], y, out["base_rate"])) < 0.005


def test_auto_takes_isotonic_when_the_truth_is_not_logistic():
    x = _panel()
    y = _draw(pd.Series(np.where(x.abs() > 1.0, 0.8, 0.3), index=x.index))  # a U shape Platt cannot follow
    out = _calibrator(method="auto").fit_predict(x, y)
    late = out.index.get_level_values("date") > out.index.get_level_values("date")[0] + pd.Timedelta(days=180)
    assert (out.loc[late, "method"] == "isotonic").all()
    assert brier_score(out["prob_up"], y) < brier_score(out["prob_platt"], y)


# ---------------------------------------------------------------------------------------- judging
@pytest.mark.parametrize("p", [0.5, 0.3, 0.12])
def test_brier_of_the_constant_base_rate_is_p_times_one_minus_p(p):
    n = 1000
    y = np.zeros(n)
    y[: int(round(p * n))] = 1.0
    assert brier_score(np.full(n, p), y) == pytest.approx(p * (1 - p))
    assert brier_skill_score(np.full(n, p), y, np.full(n, p)) == pytest.approx(0.0)


def test_brier_ignores_rows_without_an_outcome_and_the_outcome_is_label_above_zero():
    label = pd.Series([0.01, -0.02, 0.0, np.nan])
    y = up_outcome(label)
    assert y.iloc[:3].tolist() == [1.0, 0.0, 0.0] and np.isnan(y.iloc[3])
    assert brier_score(pd.Series([1.0, 0.0, 0.0, 0.9]), y) == 0.0
    assert reliability_table(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1.0]), 2,
                             "uniform")["observed"].tolist() == [0.0, 1.0]


def test_config_follows_the_calibration_warm_up_and_validates_the_method():
    cal = probability_from_config({"horizon": 5, "calibration": {"min_train_days": 80, "refit": "M"},
                                   "probability": {"method": "platt"}})
    assert cal.min_train_days == 80 and cal.method == "platt" and cal.horizon == 5
    with pytest.raises(ValueError, match="probability method"):
        ProbabilityCalibrator(method="logit")


# ---------------------------------------------------------------------------------------- the stage
def test_stage_writes_prob_up_in_zero_one_and_the_brier_figures(tmp_path):
    from test_backtest import SMALL, _write_data_dir

    from ml.evaluation import SIGNAL_COLUMNS, run_ensemble_stage

    market = toy_market(n_symbols=40, n_days=360)
    paths = _write_data_dir(tmp_path / "data", market, oracle=False)
    report = run_ensemble_stage(paths, log=lambda _m: None, ensemble_config=SMALL)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        signals = con.execute("select * from ml.signals").df()
        every = con.execute("select * from ml.ensemble_signals").df()
        table = con.execute("select * from ml.ensemble_comparison where kind = 'ensemble'").df()
    assert list(signals.columns) == SIGNAL_COLUMNS and "prob_up" in every.columns
    for frame in (signals, every):
        assert frame["prob_up"].notna().all() and frame["prob_up"].between(0.0, 1.0).all()
    # the toy market has a real signal: higher expected return, higher probability of beating the sector
    assert np.corrcoef(signals["prob_up"], signals["expected_return"])[0, 1] > 0.5
    assert table["brier_score"].between(0.0, 0.25).all() and table["brier_skill"].notna().all()
    assert set(table["prob_method"]) <= {"platt", "isotonic"}
    chosen = table[table["chosen"]].iloc[0]
    assert report["brier_score"] == pytest.approx(chosen["brier_score"]) and report["brier_skill"] > 0


def test_the_policy_stage_reads_a_warehouse_written_before_prob_up(tmp_path):
    from ml.evaluation import SIGNAL_COLUMNS, read_ensemble_signals
    from ml.tables import write_tables

    paths = DataPaths.from_env(tmp_path / "data")
    paths.root.mkdir(parents=True)
    old = pd.DataFrame({"date": [pd.Timestamp("2024-01-02").date()] * 2, "symbol": ["a", "b"],
                        "expected_return": [1.0, -1.0], "lower": [-5.0, -7.0], "upper": [7.0, 5.0],
                        "uncertainty": [1.0, 1.0], "ensemble_version": ["stacked-x"] * 2, "method": ["stacked"] * 2})
    write_tables(paths, {"ensemble_signals": old, "ensemble_comparison": pd.DataFrame(
        {"name": ["stacked"], "kind": ["ensemble"], "chosen": [True]})})
    signals, chosen, _ = read_ensemble_signals(paths)
    assert chosen == "stacked" and list(signals["stacked"].columns) == SIGNAL_COLUMNS
    assert signals["stacked"]["prob_up"].isna().all()
