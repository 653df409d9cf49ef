"""Calibration of ensemble scores to expected returns: walk-forward without look-ahead, monotone,
conformal intervals with nominal coverage, an uncertainty that grows with model disagreement, and the
two metrics (coverage, calibration error)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from policy_fixtures import toy_market

from ml import ensemble as ens
from ml.backtest import forward_label, horizon_scale, market_panel
from ml.calibration import (
    TRACK_RECORD_FLOOR,
    Calibrator,
    bucket_standard_errors,
    calibration_error,
    calibration_table,
    conformal_quantiles,
    interval_coverage,
    monotone_curve,
    rescale,
    track_record_scale,
    unscale,
)

H = 5


@pytest.fixture(scope="module")
def toy():
    market = toy_market(n_symbols=50, n_days=420)
    mp = market_panel(market.prices, market.securities)
    label = forward_label(mp, H, "sector")
    panel = ens.standardize(ens.score_panel(market.predictions))
    result = ens.build_ensemble(panel, label, ens.ICWeighted(horizon=H, window=60, min_periods=20))
    calibrator = Calibrator(horizon=H, min_train_days=60)
    signals = calibrator.fit_predict(result.score, label, horizon_scale(mp, H), result.dispersion)
    return mp, label, result, calibrator, signals


def test_signals_start_after_the_warm_up_and_cover_every_later_row(toy):
    _, _, result, _, signals = toy
    first = signals.index.get_level_values("date").min()
    dates = result.score.index.get_level_values("date")
    assert (dates >= first).sum() == len(signals)
    warm = sorted(set(dates))
    assert warm.index(first) >= 60 + H
    assert {"expected_return", "lower", "upper", "uncertainty"} <= set(signals.columns)


def test_expected_return_is_monotone_in_score_on_each_date(toy):
    _, _, _, _, signals = toy
    ordered = signals.sort_values(["x"]).reset_index()
    ok = ordered.groupby("date")["expected_return"].apply(lambda s: bool(np.all(np.diff(s.to_numpy()) >= -1e-9)))
    assert ok.all()


def test_the_curve_keeps_the_ranking_where_the_fit_rises_and_is_flat_where_it_cannot():
    """Centred isotonic regression: one knot per pooled block, so names with different scores get
    different expected returns wherever the curve rises; pure noise gives one flat value."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=20_000)
    curve = monotone_curve(x, 0.05 * x + rng.normal(size=x.size))
    assert np.all(np.diff(curve.knots_x) > 0) and np.all(np.diff(curve.knots_y) > 0)
    inside = np.sort(x[(x > curve.knots_x[0]) & (x < curve.knots_x[-1])])
    assert len(np.unique(curve.predict(inside))) == len(inside)  # no ties between the outer knots
    # a step fit (the isotonic blocks themselves) would tie most of them
    from sklearn.isotonic import IsotonicRegression
    step = IsotonicRegression().fit(x, 0.05 * x + rng.normal(size=x.size)).predict(inside)
    assert len(np.unique(step)) < 0.1 * len(inside)

    flat = monotone_curve(x, np.full(x.size, 2.0))
    assert np.allclose(curve.predict(np.array([-9.0, 9.0])), curve.knots_y[[0, -1]])  # flat beyond the ends
    assert np.allclose(flat.predict(x), 2.0)


def test_calibration_uses_only_labels_known_before_the_refit(toy):
    """A prediction at t must not change when labels of dates after t - h - 1 change."""
    mp, label, result, calibrator, signals = toy
    dates = sorted(set(result.score.index.get_level_values("date")))
    t = dates[300]
    cutoff = dates[300 - H - 1]
    when = label.index.get_level_values("date")
    shuffled = label.where(when <= cutoff, label.sample(frac=1.0, random_state=0).to_numpy())
    other = calibrator.fit_predict(result.score, shuffled, horizon_scale(mp, H), result.dispersion)
    upto = signals.index.get_level_values("date") <= t
    pd.testing.assert_frame_equal(signals[upto], other[other.index.get_level_values("date") <= t])


def test_interval_coverage_is_close_to_nominal_out_of_sample(toy):
    _, label, _, _, signals = toy
    cov = interval_coverage(signals, label)
    assert 0.74 <= cov <= 0.86
    assert (signals["lower"] <= signals["expected_return"]).all()
    assert (signals["expected_return"] <= signals["upper"]).all()


def test_wider_intervals_for_more_volatile_names(toy):
    mp, _, _, _, signals = toy
    width = (signals["upper"] - signals["lower"])
    scale = horizon_scale(mp, H).reindex(signals.index)
    known = scale.notna()
    assert np.corrcoef(width[known], scale[known])[0, 1] > 0.8


def test_uncertainty_grows_with_model_disagreement(toy):
    mp, label, result, calibrator, _ = toy
    noisy = result.dispersion * 3.0
    loud = calibrator.fit_predict(result.score, label, horizon_scale(mp, H), noisy)
    quiet = calibrator.fit_predict(result.score, label, horizon_scale(mp, H), result.dispersion * 0.0)
    base = calibrator.fit_predict(result.score, label, horizon_scale(mp, H), result.dispersion)
    assert loud["uncertainty"].mean() > base["uncertainty"].mean() > quiet["uncertainty"].mean()
    assert quiet["uncertainty"].min() > 0.0  # with no disagreement, the calibration's own standard error
    alone = Calibrator(horizon=H, min_train_days=60, calibration_error=False)
    assert alone.fit_predict(result.score, label, horizon_scale(mp, H), result.dispersion * 0.0)["uncertainty"].max() == 0


def test_the_calibration_standard_error_tells_a_real_signal_from_noise(toy):
    """A score with no information gets an uncertainty as large as its calibrated expected return (the
    policy abstains); the planted signal's expected returns stand well above theirs."""
    mp, label, result, calibrator, signals = toy
    noise = pd.Series(np.random.default_rng(5).standard_normal(len(result.score)), index=result.score.index)
    null = calibrator.fit_predict(noise, label, horizon_scale(mp, H), result.dispersion * 0.0)
    real = calibrator.fit_predict(result.score, label, horizon_scale(mp, H), result.dispersion * 0.0)

    def snr(frame):
        return float((frame["expected_return"].abs() / frame["uncertainty"]).median())

    assert snr(null) < 0.2 < 0.5 < snr(real)
    assert (null["expected_return"].abs() > null["uncertainty"]).mean() < 0.05
    assert (real["expected_return"].abs() > real["uncertainty"]).mean() > 0.3


def test_bucket_standard_errors_count_one_independent_date_per_horizon():
    rng = np.random.default_rng(0)
    dates = np.repeat(np.arange(400), 20)
    y = np.repeat(rng.normal(0, 10, 400), 20) + rng.normal(0, 1, 8000)  # a common shock per date dominates
    bucket = np.tile(np.arange(2), 4000)
    se1 = bucket_standard_errors(y, bucket, dates, 2, horizon=1)
    se5 = bucket_standard_errors(y, bucket, dates, 2, horizon=5)
    assert se1 == pytest.approx([10 / np.sqrt(400)] * 2, rel=0.15)  # dates, not rows, are the observations
    assert se5 == pytest.approx(se1 * np.sqrt(5))


def test_conformal_quantiles_follow_each_bucket():
    rng = np.random.default_rng(0)
    u = np.r_[rng.normal(0, 1, 5000), rng.normal(0, 3, 5000)]
    bucket = np.r_[np.zeros(5000, int), np.ones(5000, int)]
    lo, hi = conformal_quantiles(u, bucket, 2, alpha=0.1)
    assert hi[0] == pytest.approx(1.2816, abs=0.08) and hi[1] == pytest.approx(3 * 1.2816, abs=0.25)
    assert lo[0] == pytest.approx(-1.2816, abs=0.08)


def test_calibration_error_is_small_when_calibrated_and_large_when_not(toy):
    _, label, _, _, signals = toy
    good = calibration_error(signals, label)
    assert good < 0.15
    overconfident = signals.assign(expected_return=signals["expected_return"] * 3)
    assert calibration_error(overconfident, label, score="x") > 2 * good


def test_calibration_error_definition_on_a_hand_example():
    idx = pd.MultiIndex.from_product([pd.bdate_range("2021-01-01", periods=1), [f"S{i}" for i in range(10)]],
                                     names=["date", "symbol"])
    realized = pd.Series(np.arange(10) * 0.001, index=idx)  # deciles 0, 10, ..., 90 bps: spread 90
    signals = pd.DataFrame({"expected_return": np.arange(10) * 10.0 + 4.5}, index=idx)
    assert calibration_error(signals, realized) == pytest.approx(4.5 / 90)
    table = calibration_table(signals, realized)
    assert list(table["n"]) == [1] * 10


def test_rank_transform_is_supported(toy):
    mp, label, result, _, _ = toy
    out = Calibrator(horizon=H, min_train_days=60, transform="rank").fit_predict(
        result.score, label, horizon_scale(mp, H), result.dispersion)
    assert out["x"].abs().max() <= np.sqrt(3) + 1e-9
    assert 0.7 < interval_coverage(out, label) < 0.9


def _late_data_panel(missing: str, n_days: int = 450, empty_days: int = 200, n_names: int = 30):
    """A score with a real signal; on the first `empty_days` dates either the label or the score is missing."""
    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2020-01-01", periods=n_days)
    idx = pd.MultiIndex.from_product([dates, [f"S{i:02d}" for i in range(n_names)]], names=["date", "symbol"])
    score = pd.Series(rng.normal(size=len(idx)), index=idx)
    label = pd.Series(0.01 * score.to_numpy() + 0.02 * rng.normal(size=len(idx)), index=idx)
    early = idx.get_level_values("date") < dates[empty_days]
    if missing == "label":
        label[early] = np.nan
    else:
        score[early] = np.nan
    return dates, score, label


def _first_refit_from(dates: pd.DatetimeIndex, position: int) -> pd.Timestamp:
    periods = dates.to_period("M")
    refits = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
    return dates[refits[refits >= position][0]]


@pytest.mark.parametrize("missing", ["label", "score"])
def test_warm_up_counts_dates_with_data_not_calendar_rows(missing):
    """200 dates without a usable (score, label) pair, then data: the first fit needs 126 dates with
    data before the refit's cutoff (refit - h - 1), not 126 calendar rows."""
    dates, score, label = _late_data_panel(missing)
    out = Calibrator(horizon=H, min_train_days=126).fit_predict(score, label)
    first = out.index.get_level_values("date").min()
    assert first == _first_refit_from(dates, 200 + 126 + H)  # dates 200..(refit - h - 1) hold 126 with data


# ------------------------------------------------------------------ the training window, chosen walk-forward
def _drifting_panel(strength_late: float, n_days: int = 1500, n_symbols: int = 80, seed: int = 5):
    """Scores and 5-day labels whose slope on the score is 1 bp/sd for the first half of the dates and
    `strength_late` after: a signal that decays, as real ones do (or not, with 1.0)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-01", periods=n_days)
    index = pd.MultiIndex.from_product([dates, [f"S{i:03d}" for i in range(n_symbols)]], names=["date", "symbol"])
    score = rng.normal(size=len(index))
    slope = np.where(np.repeat(np.arange(n_days), n_symbols) < n_days // 2, 1.0, strength_late) * 8e-4
    label = slope * score + rng.normal(scale=4e-3, size=len(index))
    return pd.Series(score, index=index), pd.Series(label, index=index)


def _late(frame: pd.DataFrame, share: float = 0.25) -> pd.DataFrame:
    dates = frame.index.get_level_values("date").unique().sort_values()
    return frame[frame.index.get_level_values("date") >= dates[int(len(dates) * (1 - share))]]


def test_a_trailing_window_is_chosen_when_the_signal_decays_and_the_expected_return_follows_it():
    score, label = _drifting_panel(strength_late=0.25)
    expanding = Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(score, label)
    chooser = Calibrator(horizon=H, min_train_days=60, track_record=False, window=[None, 250])
    chosen = chooser.fit_predict(score, label)
    assert chooser.chosen_window[0][1] is None and chooser.chosen_window[-1][1] == 250
    late_expanding, late_chosen = _late(expanding), _late(chosen)
    assert late_chosen.index.equals(late_expanding.index)
    err_expanding = calibration_error(late_expanding, label)
    err_chosen = calibration_error(late_chosen, label)
    assert err_chosen < 0.5 * err_expanding, (err_chosen, err_expanding)


def test_a_stationary_signal_keeps_mostly_the_expanding_window():
    score, label = _drifting_panel(strength_late=1.0)
    expanding = Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(score, label)
    chooser = Calibrator(horizon=H, min_train_days=60, track_record=False, window=[None, 250])
    chosen = chooser.fit_predict(score, label)
    same = np.isclose(chosen["expected_return"], expanding["expected_return"].reindex(chosen.index))
    assert same.mean() > 0.5
    assert calibration_error(chosen, label) < calibration_error(expanding, label) + 0.05


def test_with_a_significance_floor_a_stationary_signal_never_leaves_the_expanding_window_but_a_decay_does():
    stationary, decaying = _drifting_panel(strength_late=1.0), _drifting_panel(strength_late=0.25)
    expanding = Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(*stationary)
    steady = Calibrator(horizon=H, min_train_days=60, track_record=False, window=[None, 250], choice_min_t=2.0)
    pd.testing.assert_frame_equal(steady.fit_predict(*stationary), expanding)
    assert steady.chosen_window == [(expanding.index[0][0], None)]
    drifting = Calibrator(horizon=H, min_train_days=60, track_record=False, window=[None, 250], choice_min_t=2.0)
    late = _late(drifting.fit_predict(*decaying))
    assert drifting.chosen_window[-1][1] == 250
    late_expanding = _late(Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(*decaying))
    assert calibration_error(late, decaying[1]) < 0.5 * calibration_error(late_expanding, decaying[1])


def test_the_window_choice_at_a_refit_reads_only_losses_known_then():
    """A candidate's loss on a date s is known once s's label is, at s + horizon + 1: changing every
    loss from p - horizon on cannot change the choice made at p."""
    from ml.calibration import choose_windows

    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=400)
    loss = pd.DataFrame(rng.random((400, 2)), index=dates)
    periods = dates.to_period("M")
    base = choose_windows(loss, periods, H, 120, 30)
    starts = np.flatnonzero(np.r_[True, periods[1:] != periods[:-1]])
    for p in starts[3:]:
        changed = loss.copy()
        changed.iloc[p - H:] = rng.random((len(dates) - p + H, 2)) * [10.0, 0.0]
        assert choose_windows(changed, periods, H, 120, 30).iloc[p] == base.iloc[p]
    assert (base.iloc[: starts[1]] == 0).all()  # too few known dates yet: the first candidate


# ------------------------------------------------------------------ the calibration's own track record
def test_a_decaying_signal_is_scaled_down_by_its_track_record_and_a_steady_one_is_not():
    """After the signal's slope falls to a quarter, the expanding calibration overstates the spread; its
    out-of-sample track record (realized on predicted, so far) scales it back toward what is delivered.
    A signal that holds keeps a scale near 1 and its calibration."""
    score, label = _drifting_panel(strength_late=0.25)
    plain = Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(score, label)
    tracked = Calibrator(horizon=H, min_train_days=60, track_record=True).fit_predict(score, label)
    assert tracked.index.equals(plain.index)
    assert calibration_error(tracked, label) < 0.8 * calibration_error(plain, label)  # 0.106 -> 0.075
    late = _late(tracked)
    ratio = (late["expected_return"] / _late(plain)["expected_return"]).median()
    assert 0.3 < ratio < 0.9        # delivered so far: a mix of the strong first half and the weak second
    steady_score, steady_label = _drifting_panel(strength_late=1.0)
    steady_plain = Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(steady_score, steady_label)
    steady = Calibrator(horizon=H, min_train_days=60, track_record=True).fit_predict(steady_score, steady_label)
    steady_ratio = (_late(steady)["expected_return"] / _late(steady_plain)["expected_return"]).median()
    assert 0.85 < steady_ratio < 1.15
    assert calibration_error(steady, steady_label) < calibration_error(steady_plain, steady_label) + 0.02


def test_the_track_record_scale_reads_only_labels_known_at_each_date_and_keeps_abstention():
    """The scale at t reads dates <= t - h - 1 (labels known then): labels after that change nothing up
    to t. It is 1 until `min_days` dates are known, never negative, and the uncertainty moves with the
    expected return (their ratio, which the policy's abstention reads, is unchanged) while the interval
    keeps its width."""
    score, label = _drifting_panel(strength_late=0.25, n_days=600)
    expected = Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(score, label)["expected_return"]
    calendar = score.index.get_level_values("date").unique()
    full = track_record_scale(expected, label, calendar, H, min_days=63)
    t = calendar[400]
    cut = label.where(label.index.get_level_values("date") <= calendar[400 - H - 1])
    noisy = cut.fillna(0.05)  # a wild label on every date not yet known at t
    partial = track_record_scale(expected, noisy, calendar, H, min_days=63)
    pd.testing.assert_series_equal(full.loc[:t], partial.loc[:t])
    first = expected.index.get_level_values("date").min()
    at = calendar.get_loc(first) + 63 + H  # the 63rd date with signals is known h + 1 dates after it
    assert (full.loc[:calendar[at - 1]] == 1.0).all() and full.loc[calendar[at]] != 1.0
    assert (full >= TRACK_RECORD_FLOOR).all()  # floored above 0: the curve stays recoverable
    plain = Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(score, label)
    tracked = Calibrator(horizon=H, min_train_days=60, track_record=True).fit_predict(score, label)
    moved = tracked["expected_return"] != plain["expected_return"]
    assert moved.any()
    np.testing.assert_allclose((tracked["uncertainty"] / tracked["expected_return"].abs())[moved],
                               (plain["uncertainty"] / plain["expected_return"].abs())[moved], rtol=1e-9)
    np.testing.assert_allclose(tracked["upper"] - tracked["lower"], plain["upper"] - plain["lower"], rtol=1e-9)


def test_published_track_record_signals_give_back_the_calibration_curve_exactly():
    """`ml.signals` keeps each row's `track_record_scale` (1 with the option off), and `unscale` undoes
    it: expected return, interval and uncertainty as the curve gave them, even where the scale sits at
    its floor. A frame without the column (a warehouse written before it) is read as it is."""
    score, label = _drifting_panel(strength_late=0.25, n_days=800)
    plain = Calibrator(horizon=H, min_train_days=60, track_record=False).fit_predict(score, label)
    tracked = Calibrator(horizon=H, min_train_days=60, track_record=True).fit_predict(score, label)
    assert (plain["track_record_scale"] == 1.0).all()
    assert (tracked["track_record_scale"] < 0.95).any() and (tracked["track_record_scale"] > 0).all()
    cols = ["expected_return", "lower", "upper", "uncertainty"]
    pd.testing.assert_frame_equal(unscale(tracked)[cols], plain[cols], rtol=1e-9)
    floored = rescale(plain, np.full(len(plain), TRACK_RECORD_FLOOR))
    assert floored["expected_return"].abs().max() < 1e-3
    pd.testing.assert_frame_equal(unscale(floored)[cols], plain[cols], rtol=1e-6)
    old = plain.drop(columns="track_record_scale")
    assert unscale(old) is old
