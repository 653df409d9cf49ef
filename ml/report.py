"""`aurora report`: headline metrics of the latest run, read from the data directory.

Every key of DESIGN.md is always present; a key whose stage has not run yet is null, so tools that
read the JSON can rely on the schema.
"""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb

from ml.paths import DataPaths, raw_source

REPORT_KEYS = (
    "oos_rank_ic",
    "oos_ic",
    "icir",
    "oracle_rank_ic",
    "best_single_model_rank_ic",  # the walk-forward pick (ensemble stage), never the hindsight best
    "best_single_model_share_of_oracle",
    "sharpe_gross",
    "sharpe_net",
    "max_drawdown",
    "turnover_monthly",
    "cost_retention",
    "coverage_80",
    "calibration_error",
    "brier_score",  # prob_up (ml/probability.py): Brier score of P(beats its sector), chosen ensemble
    "brier_skill",  # ... and its skill against the base rate known at the time (0: no better)
    "n_model_families",
    "n_feature_views",
    "n_models_active",
    "n_models_retired",  # specs whose current generation is retired (their successor not yet born)
    "share_models_live",  # share of the zoo's specs active or promoted on the last date
    "n_retirements",  # retirements over the sample (every generation), by rule below
    "retirements_by_rule",
    "n_models_requalified",  # successors of retired specs that re-qualified on fresh evidence
    "timings_s",
    "policy_warnings",  # the policy_backtest stage's guardrail warnings (list of messages)
    "policy_diagnostics",  # its window, days, gross, turnover, book-signal correlation, ages, reasons
    "policy_constants",  # the policy's constants measured walk-forward, latest values (ml.policy_constants)
)
_RENDERED_APART = ("policy_warnings", "policy_diagnostics", "policy_constants")


def describe_data(paths: DataPaths) -> dict[str, Any]:
    """What is in the data directory: symbols, days, date range, source and raw tables."""
    prices = paths.raw_table("prices")
    if not prices.exists():
        return {"symbols": 0, "days": 0, "start": None, "end": None, "source": None, "tables": []}
    con = duckdb.connect()
    symbols, days, start, end = con.execute(
        "select count(distinct symbol), count(distinct date), min(date), max(date) from read_parquet(?)",
        [str(prices)],
    ).fetchone()
    source = raw_source(paths) or "ingested"
    tables = sorted(p.stem for p in paths.raw.glob("*.parquet"))
    return {
        "symbols": int(symbols),
        "days": int(days),
        "start": str(start),
        "end": str(end),
        "source": source,
        "tables": tables,
    }


def oracle_rank_ic(paths: DataPaths, dates=None, labels=None, label: str | None = None) -> float | None:
    """Mean daily rank IC of the oracle's 5-day expected return against realized returns.

    By default against raw 5-day forward returns from prices over the whole sample; with `dates`,
    `labels` (symbol, date, label columns) and `label`, on exactly the models' dates and target, so
    the two are comparable. Evaluation only: nothing that trains or trades reads the oracle.
    """
    oracle = paths.oracle / "expected_returns.parquet"
    if not oracle.exists() or not paths.raw_table("prices").exists():
        return None
    import pandas as pd

    from ml.metrics import daily_ic, forward_returns

    er = pd.read_parquet(oracle, columns=["date", "symbol", "er_5d"])
    er["date"] = pd.to_datetime(er["date"])
    if labels is not None and label is not None:
        target = labels[["symbol", "date", label]].assign(date=lambda f: pd.to_datetime(f["date"]))
        frame = target.merge(er, on=["date", "symbol"])
        target_column = label
    else:
        prices = pd.read_parquet(paths.raw_table("prices"), columns=["date", "symbol", "close"])
        prices["date"] = pd.to_datetime(prices["date"])
        frame = forward_returns(prices, horizons=(5,)).merge(er, on=["date", "symbol"])
        target_column = "fwd_5d"
    if dates is not None:
        frame = frame[frame["date"].isin(pd.to_datetime(pd.Index(dates)))]
    ic = daily_ic(frame, "er_5d", target_column)
    return float(ic.mean()) if len(ic) else None


def read_saved_report(paths: DataPaths) -> dict[str, Any]:
    """artifacts/report.json as the stages left it ({} before the first one)."""
    saved = paths.artifacts / "report.json"
    return json.loads(saved.read_text()) if saved.exists() else {}


def update_saved_report(paths: DataPaths, **values: Any) -> dict[str, Any]:
    """Merge `values` into artifacts/report.json atomically (write a temp file, then rename)."""
    import os

    saved = paths.artifacts / "report.json"
    current = read_saved_report(paths)
    current.update(values)
    saved.parent.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, saved)
    return current


def build_report(paths: DataPaths) -> dict[str, Any]:
    report: dict[str, Any] = {key: None for key in REPORT_KEYS}
    saved = paths.artifacts / "report.json"
    if saved.exists():
        report.update(json.loads(saved.read_text()))
    report["data"] = describe_data(paths)
    from ml.data import quarantine

    report["quarantined_features"] = quarantine.report_lines(paths)  # the latest build's, from the warehouse
    if report.get("oracle_rank_ic") is None:
        report["oracle_rank_ic"] = oracle_rank_ic(paths)
    report["best_single_model_share_of_oracle"] = share_of_oracle(report)
    return report


def share_of_oracle(report: dict[str, Any]) -> float | None:
    """The walk-forward best single model's rank IC over the oracle's: derived when the report is read
    (evaluation only), so no stage that trains or trades ever touches the oracle."""
    ic, oracle = report.get("best_single_model_rank_ic"), report.get("oracle_rank_ic")
    ok = all(isinstance(v, int | float) and math.isfinite(v) for v in (ic, oracle)) and oracle > 0
    return ic / oracle if ok else None


# how `render_report` shows a value (labels and formatting only: the JSON keeps the raw numbers)
_UNITS = {
    "sharpe_gross": lambda v: f"{v:.2f} (annualized)",
    "sharpe_net": lambda v: f"{v:.2f} (annualized, after costs)",
    "max_drawdown": lambda v: f"{abs(v):.2%} (peak to trough of the net equity curve)",
    "turnover_monthly": lambda v: f"{v:.2f}x of the book per month",
    "cost_retention": lambda v: f"{v:.1%} of the gross return kept after costs",
    "coverage_80": lambda v: f"{v:.1%} of realized returns inside the 80% interval",
    "calibration_error": lambda v: f"{v:.4f} (share of the realized top-minus-bottom decile spread)",
    "brier_score": lambda v: f"{v:.4f} (prob_up against 'beats its sector'; a coin flip scores 0.25)",
    "brier_skill": lambda v: f"{v:+.4f} (1 - Brier / Brier of the base rate known at the time)",
}
_UNITS_LINE = ("  units: ICs are daily cross-sectional correlations of scores with forward returns; expected returns "
               "(ml.signals, the app's Signals page) are in bps over the ensemble's horizon (config/ensemble.yaml "
               "`horizon`, in trading days); drawdown in % of the equity peak; timings in seconds")


def render_report(report: dict[str, Any]) -> str:
    """A human-readable table of the headline metrics."""
    data = report.get("data") or {}
    lines = [
        f"data: {data.get('source')} · {data.get('symbols')} symbols · {data.get('days')} days "
        f"· {data.get('start')} .. {data.get('end')}",
    ]
    freshness = report.get("data_freshness") or {}
    if freshness.get("stale"):
        lines.append(f"  WARNING: data stale: latest raw date {freshness['latest']} is "
                     f"{freshness['business_days_behind']} business days behind {freshness['today']} "
                     f"(limit {freshness['limit']}); today's signals were "
                     f"{'published anyway (--allow-stale)' if report.get('published_date') else 'not published'}")
    quarantined = report.get("quarantined_features") or []
    if quarantined:
        lines.append(f"  quarantined features ({len(quarantined)}; left out of training and serving):")
        lines += [f"    - {line}" for line in quarantined]
    lines += _policy_lines(report)
    for key in REPORT_KEYS:
        if key in _RENDERED_APART:
            continue
        value = report.get(key)
        if isinstance(value, float) and key in _UNITS and math.isfinite(value):
            value = _UNITS[key](value)
        elif isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, dict):
            unit = "s" if key == "timings_s" else ""
            value = ", ".join(
                f"{k}={v:.1f}{unit}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()
            )
        if key == "best_single_model_rank_ic" and value is not None and report.get("best_single_model"):
            value = f"{value} ({report['best_single_model']})"
        lines.append(f"  {key:33s} {'—' if value is None else value if value != '' else 'none'}")
    return "\n".join(lines + _hindsight_lines(report) + [_UNITS_LINE])


def _hindsight_lines(report: dict[str, Any]) -> list[str]:
    """The best single model picked with hindsight (best whole-history rank IC of the zoo): a
    diagnostic of how much model selection leaves on the table, never a headline."""
    ic = report.get("best_single_model_rank_ic_hindsight")
    if not isinstance(ic, int | float):
        return []
    return [f"  diagnostic, not a headline: best single model picked with hindsight "
            f"{report.get('best_single_model_hindsight') or '?'} rank IC {ic:.4f}"]


def _policy_lines(report: dict[str, Any]) -> list[str]:
    """The backtest's window, gross and turnover (or "no positions taken" with the reason counts),
    then each guardrail warning of the policy_backtest stage."""
    from ml.portfolio.guardrails import guardrail_messages, summary_line

    diagnostics = report.get("policy_diagnostics")
    lines = [f"  backtest: {summary_line(diagnostics)}"] if diagnostics else []
    constants = report.get("policy_constants") or {}
    if constants:
        lines.append(f"  measured: {constants_line(constants)}")
    warnings = report.get("policy_warnings") or []
    return lines + [f"  WARNING (policy): {m}" for m in (guardrail_messages(warnings) if diagnostics else warnings)]


def constants_line(c: dict[str, float]) -> str:
    """The policy's latest measured constants in one line (edge, horizon, spreads, risk scale)."""
    edge = c.get("edge_per_bp", 0.0)
    head = (f"edge {edge:.2f} bps per bp of expected return over {c.get('holding_horizon_days', 0):.0f} days "
            f"(t {c.get('edge_tstat', float('nan')):.1f})" if edge > 0 else
            "no measurable edge (the book abstains)")
    shares = [f"{c[k] * 100:.0f}% {k.removeprefix('spread_share_')}" for k in
              ("spread_share_quoted", "spread_share_estimated", "spread_share_fallback") if c.get(k, 0) > 0]
    spread = f"; spreads median {c['spread_median_bps']:.1f} bps ({', '.join(shares)})" if "spread_median_bps" in c else ""
    risk = f"; realized/ex-ante risk {c['realized_risk_scale']:.2f}" if "realized_risk_scale" in c else ""
    return head + spread + risk
