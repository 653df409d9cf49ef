"""Guardrails of the policy_backtest stage (ml/portfolio/guardrails.py): held gross over the cap, a
book that stops following the signal, positions that outlive the signal, refused trades, "no positions
taken"; and the honest reason labels of ml.policy, which never change a weight or a trade."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from policy_fixtures import toy_market

from ml import policy as pol
from ml.backtest import backtest_daily, market_panel, performance
from ml.config import ConfigError
from ml.ensemble import _merge
from ml.portfolio import guardrails as gr
from ml.portfolio import target_policy
from ml.portfolio.held_book import HeldBookPolicy

T, N = 300, 50


def _rotating_signal(phi: float = 0.8, seed: int = 0) -> np.ndarray:
    """Expected returns (bps) whose cross-section rotates: AR(1) per name, half-life ~ 3 days."""
    rng = np.random.default_rng(seed)
    er = np.zeros((T, N))
    er[0] = rng.standard_normal(N)
    for t in range(1, T):
        er[t] = phi * er[t - 1] + np.sqrt(1 - phi**2) * rng.standard_normal(N)
    return 20.0 * er


def _rank_book(er: np.ndarray, gross: float = 1.0) -> np.ndarray:
    """Weights = demeaned rank of the day's expected return, scaled to `gross`."""
    r = gr.row_ranks(er)
    w = r - r.mean(axis=1, keepdims=True)
    return w / np.abs(w).sum(axis=1, keepdims=True) * gross


def _book(weights: np.ndarray, er: np.ndarray, target: np.ndarray | None = None) -> gr.Book:
    trades = np.diff(np.vstack([np.zeros((1, weights.shape[1])), weights]), axis=0)
    return gr.Book(weights=weights, trades=trades, target=weights if target is None else target, expected_return=er,
                   dates=pd.bdate_range("2021-01-04", periods=len(weights)))


def _names(warnings) -> set[str]:
    return {w.name for w in warnings}


def test_a_healthy_book_that_follows_the_signal_triggers_nothing():
    er = _rotating_signal()
    warnings, diag = gr.check_book(_book(_rank_book(er), er), gross_cap=2.0)
    assert warnings == []
    assert diag["book_signal_rank_corr"] == pytest.approx(1.0)
    assert 1 <= diag["signal_half_life_days"] <= 6 and not diag["signal_half_life_censored"]
    assert diag["old_gross_share"] < 0.25 and diag["refused_share"] == 0.0
    assert diag["gross_max"] == pytest.approx(1.0) and diag["gross_days_above_cap_share"] == 0.0


def test_held_gross_above_the_cap_warns():
    er = _rotating_signal()
    w = _rank_book(er, gross=1.5)
    w[100:130] *= 2.0  # 3x for 30 days
    warnings, diag = gr.check_book(_book(w, er), gross_cap=2.0)
    assert _names(warnings) == {"gross_cap"}
    found = warnings[0]
    assert found.value == pytest.approx(3.0) and found.threshold == 2.0 and "exceeded the cap" in found.message
    assert diag["gross_days_above_cap_share"] == pytest.approx(30 / T)
    assert diag["gross_mean"] == pytest.approx(1.5 + 1.5 * 30 / T)


def test_a_frozen_book_warns_on_correlation_and_age():
    er = _rotating_signal()
    frozen = np.repeat(_rank_book(er)[:1], T, axis=0)  # bought on day 0, then never traded
    target = _rank_book(er)  # what the plan wanted each day
    warnings, diag = gr.check_book(_book(frozen, er, target), gross_cap=2.0)
    assert _names(warnings) == {"book_signal_correlation", "position_age", "refused_trades"}
    assert abs(diag["book_signal_rank_corr_recent"]) < 0.2 and diag["book_signal_rank_corr"] < 0.2
    assert diag["median_position_age_days"] == pytest.approx((T - 1) / 2)
    assert diag["old_gross_share"] > 0.8
    assert 0.3 < diag["old_unsupported_gross_share"] < 0.7  # a frozen book agrees with the signal by chance
    assert diag["refused_share"] > 0.9
    by_name = {w.name: w for w in warnings}
    assert by_name["book_signal_correlation"].threshold == 0.2
    assert "signal half-lives" in by_name["position_age"].message


def test_old_positions_the_signal_still_supports_are_not_stale():
    """A signal with a persistent part (each name's lasting view, plus a fast part that halves its rank
    autocorrelation within days) keeps supporting the names at its extremes: a book that holds them for
    the whole span is old, but not stale, and does not warn. The same old book on a signal without the
    persistent part does."""
    rng = np.random.default_rng(1)
    lasting = rng.standard_normal(N)
    er = 0.7 * 20.0 * lasting + _rotating_signal(seed=2)
    extreme = np.abs(lasting) >= np.quantile(np.abs(lasting), 0.8)
    held = np.where(extreme, np.sign(lasting), 0.0)
    held = np.repeat((held - held.mean())[None, :] / np.abs(held - held.mean()).sum(), T, axis=0)
    warnings, diag = gr.check_book(_book(held, er), gross_cap=2.0)
    assert diag["signal_half_life_days"] <= 6 and diag["old_gross_share"] > 0.8
    assert diag["old_unsupported_gross_share"] < 0.25 and "position_age" not in _names(warnings)
    _, churned = gr.check_book(_book(held, _rotating_signal(seed=2)), gross_cap=2.0)
    assert churned["old_unsupported_gross_share"] > 0.3


def test_supported_means_the_sign_of_the_days_demeaned_expected_return():
    w = np.array([[0.1, -0.1, 0.0, 0.1]])
    er = np.array([[5.0, 7.0, 1.0, np.nan]])  # mean 4.33: name 0 above (long: supported), name 1 above (short: not)
    assert gr.supported(w, er).tolist() == [[True, False, False, False]]


def test_position_age_counts_days_since_opened_or_flipped():
    w = np.array([[0.0], [0.1], [0.2], [0.1], [-0.1], [-0.1], [0.0], [0.3]])
    assert gr.position_age(w)[:, 0].tolist() == [0, 0, 1, 2, 0, 1, 0, 0]


def test_refused_share_counts_wanted_trades_with_nothing_executed():
    # 2 days x 4 names: post-trade weights, trades (pre-trade = weights - trades), the plan's targets
    weights = np.array([[0.10, 0.00, -0.05, 0.02], [0.10, 0.01, -0.05, 0.0]])
    trades = np.array([[0.10, 0.00, 0.00, 0.00], [0.00, 0.01, 0.00, -0.02]])
    target = np.array([[0.10, 0.00, 0.00, 0.02], [0.20, 0.03, -0.05, 0.0]])
    wanted, refused = gr.wanted_and_refused(weights, trades, target, min_trade=1e-4)
    # day 0: name 0 wanted and done, name 2 wanted (-0.05 -> 0) refused, name 3 wanted (0.02 from 0.02? no:
    # pre-trade 0.02, target 0.02) not wanted; day 1: names 0 (0.10 -> 0.20) refused, 1 done (partly), 3 done
    assert wanted.tolist() == [[True, False, True, False], [True, True, False, True]]
    assert refused.tolist() == [[False, False, True, False], [True, False, False, False]]
    m = gr.RefusedTrades(max_share=0.3, min_trade=1e-4).measure(gr.Book(weights, trades, target, np.ones((2, 4))))
    assert (m["wanted_trades"], m["refused_trades"], m["refused_share"]) == (5, 2, pytest.approx(0.4))
    assert gr.RefusedTrades(max_share=0.3).warning(m).name == "refused_trades"
    assert gr.RefusedTrades(max_share=0.5).warning(m) is None


def test_half_life_is_measured_on_the_signals_rank_autocorrelation():
    fast, _ = gr.signal_half_life(_rotating_signal(phi=0.5))
    slow, censored = gr.signal_half_life(_rotating_signal(phi=0.97))
    assert fast <= 2 and 15 <= slow <= 40 and not censored
    still = np.repeat(_rotating_signal()[:1], T, axis=0)
    assert gr.signal_half_life(still, max_lag=20) == (20.0, True)  # never decays: a lower bound
    assert gr.signal_half_life(np.full((T, N), np.nan)) == (None, False)


# ---------------------------------------------------------------------------------------- the stage
@pytest.fixture(scope="module")
def toy_run():
    toy = toy_market(n_symbols=40, n_days=300)
    mp = market_panel(toy.prices, toy.securities)
    er = mp.grid(toy.state.set_index(["date", "symbol"])["s"]) * 40.0
    er = er + np.random.default_rng(3).normal(0, 40, mp.shape) * np.isfinite(er)
    sig = pol.SignalPanel(er, er - 500, er + 500, np.where(np.isfinite(er), 2.0, np.nan))
    cfg = pol.load_config()
    cfg["capital"] = 1e7
    return mp, sig, cfg


def _stage(res, mp, sig, cfg):
    daily = backtest_daily(res.weights, res.trades, res.costs, mp, start=res.start)
    book = gr.Book.from_result(res, sig.expected_return, mp.dates)
    counts = res.positions_frame(mp)["reason"].value_counts().to_dict()
    return gr.stage_guardrails(book, daily, performance(daily, mp, res.weights), counts, cfg)


def test_stage_report_keys_on_a_small_run(toy_run):
    mp, sig, cfg = toy_run
    res = pol.policy_from_config(cfg).run(sig, mp)
    out = _stage(res, mp, sig, cfg)
    d = out.diagnostics
    assert {"window_start", "window_end", "n_days", "gross_mean", "gross_max", "turnover_monthly_capital",
            "turnover_monthly_book", "book_signal_rank_corr", "median_position_age_days", "old_gross_share",
            "refused_share", "reason_counts", "positions_taken"} <= set(d)
    assert d["n_days"] == len(mp.dates) - res.start and d["window_end"] == str(mp.dates[-1].date())
    assert d["positions_taken"] and d["turnover_monthly_book"] > d["turnover_monthly_capital"] > 0
    assert sum(d["reason_counts"].values()) == len(res.positions_frame(mp))
    assert out.messages == [w.message for w in out.warnings]
    json.dumps(d, allow_nan=False)  # JSON-safe: no NaN
    line = gr.summary_line(d)
    assert "days" in line and "mean gross" in line and "of capital" in line and "of the book" in line


def test_no_positions_taken_is_said_with_the_reason_counts(toy_run):
    mp, sig, cfg = toy_run
    res = pol.policy_from_config({**cfg, "abstention": {"interval": "expected", "z": 1e9}}).run(sig, mp)
    assert not np.abs(res.weights).any()
    out = _stage(res, mp, sig, cfg)
    assert out.messages[0].startswith("no positions taken (ml.positions reasons: abstain: interval straddles zero:")
    assert not out.diagnostics["positions_taken"] and out.diagnostics["turnover_monthly_book"] is None
    assert "nan" not in gr.summary_line(out.diagnostics).lower()
    assert "no positions taken" in gr.summary_line(out.diagnostics)
    assert gr.guardrail_messages(out.messages) == out.messages[1:]

    from ml.report import render_report

    text = render_report({"policy_warnings": out.messages, "policy_diagnostics": out.diagnostics})
    assert "no positions taken (ml.positions reasons: abstain" in text


def test_report_shows_the_guardrail_warnings():
    from ml.report import REPORT_KEYS, build_report, render_report

    assert {"policy_warnings", "policy_diagnostics"} <= set(REPORT_KEYS)
    diag = {"window_start": "2021-01-04", "window_end": "2021-12-31", "n_days": 250, "positions_taken": True,
            "gross_mean": 2.9, "gross_max": 4.8, "gross_cap": 2.0, "turnover_monthly_capital": 0.25,
            "turnover_monthly_book": 0.085}
    text = render_report({"policy_warnings": ["held gross exceeded the cap"], "policy_diagnostics": diag,
                          "sharpe_net": 0.5})
    assert "WARNING (policy): held gross exceeded the cap" in text
    assert "2021-01-04 .. 2021-12-31 (250 days): mean gross 2.90x" in text and "0.09x of the book" in text
    assert "sharpe_net" in text
    assert callable(build_report)


# ---------------------------------------------------------------------------------------- config and labels
def test_guardrails_block_is_read_typed_and_passed_over_by_the_policy():
    cfg = pol.load_config()
    assert "guardrails" in cfg and isinstance(pol.policy_from_config(cfg), HeldBookPolicy)
    g = gr.GuardrailConfig.from_policy_config(cfg)
    assert g.min_book_signal_correlation == 0.2 and g.max_age_half_lives == 10 and g.max_refused_share == 0.5
    assert gr.GuardrailConfig.load({"recent_days": 21}).recent_days == 21
    with pytest.raises(ConfigError, match="unknown key"):
        gr.GuardrailConfig.from_policy_config({"guardrails": {"max_gross": 3}})


def test_reason_labels_never_change_weights_or_trades(toy_run, monkeypatch):
    """The honest labels (refused: value below cost / capped: budget / capped: neutral scaling) replace
    the old all-"capped" label only: every weight, trade and cost is bit-identical to the old labelling."""
    mp, sig, cfg = toy_run
    policy = pol.policy_from_config(_merge(cfg, pol.TARGET_POLICY))  # the target-tracking policy's labels
    assert isinstance(policy, pol.CostAwarePolicy)
    new = policy.run(sig, mp)
    # simulate looks cut_reasons up in its own module (ml.portfolio.target_policy; ml.policy re-exports it)
    monkeypatch.setattr(target_policy, "cut_reasons", lambda value, spent: np.full(value.shape, pol.CAPPED, np.int8))
    old = policy.run(sig, mp)
    for key in ("weights", "trades", "costs", "target"):
        assert np.array_equal(getattr(new, key), getattr(old, key)), key
    relabelled = np.isin(new.reasons, [pol.REFUSED_COST, pol.CAPPED_NEUTRAL])
    assert np.array_equal(np.where(relabelled, pol.CAPPED, new.reasons), old.reasons)
    assert (new.reasons == pol.REFUSED_COST).any() and (new.reasons == pol.CAPPED).any()
    assert (old.reasons == pol.CAPPED).sum() > (new.reasons == pol.CAPPED).sum()


def test_cut_reasons_follow_value_and_budget():
    value = np.array([-1.0, 0.0, 2.0])
    assert pol.cut_reasons(value, spent=True).tolist() == [pol.REFUSED_COST, pol.REFUSED_COST, pol.CAPPED]
    assert pol.cut_reasons(value, spent=False).tolist() == [pol.REFUSED_COST, pol.REFUSED_COST,
                                                            pol.CAPPED_NEUTRAL]
    assert pol.REASONS[pol.REFUSED_COST] == "refused: trade value below cost"


# ---------------------------------------------------------------------------------------- the CLI line
@pytest.mark.parametrize("taken", [True, False])
def test_aurora_backtest_states_window_gross_turnover_or_no_positions(taken, tmp_path, monkeypatch, capsys):
    import ml.pipeline
    from flows import cli

    diag = {"window_start": "2021-01-04", "window_end": "2021-12-31", "n_days": 250, "positions_taken": taken,
            "gross_mean": 2.9 if taken else 0.0, "gross_max": 4.8 if taken else 0.0, "gross_cap": 2.0,
            "turnover_monthly_capital": 0.25 if taken else 0.0, "turnover_monthly_book": 0.085 if taken else None,
            "reason_counts": {"hold: edge below cost": 12} if taken else {"abstain: no signal": 7}}
    warnings = ["held gross exceeded the cap"] if taken else [gr.no_positions_message(diag["reason_counts"])]
    stage = {"sharpe_net": 0.5 if taken else float("nan"), "max_drawdown": 0.1, "turnover_monthly": 0.085,
             "cost_retention": 0.8, "policy_warnings": warnings, "policy_diagnostics": diag}
    monkeypatch.setenv("AURORA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(ml.pipeline, "run_stage", lambda name, paths, log: {} if name == "ensemble_calibrate" else stage)
    assert cli.main(["backtest"]) == 0
    out = capsys.readouterr().out
    assert "2021-01-04 .. 2021-12-31 (250 days)" in out and "nan" not in out.lower()
    if taken:
        assert "Sharpe net 0.50" in out and "mean gross 2.90x" in out and "0.25x of capital, 0.09x of the book" in out
        assert "WARNING held gross exceeded the cap" in out
    else:
        assert "Sharpe" not in out and "no positions taken (ml.positions reasons: abstain: no signal: 7)" in out
