"""The scenario bench's markdown tables: the main row per scenario, the lifecycle per scenario and
the textbook baselines, from the rows `bench_scenarios.collect` reads."""

from __future__ import annotations

from typing import Any

import numpy as np

COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("symbols", "names", "{}"),
    ("days", "days", "{}"),
    ("rank_ic", "OOS rank IC", "{:.4f}"),
    ("share_of_oracle", "share of oracle", "{:.2f}"),
    ("best_walk_forward_rank_ic", "best single (walk-fwd) IC", "{:.4f}"),
    ("baseline_rank_ic", "baseline IC", "{:.4f}"),
    ("sharpe_gross", "Sharpe gross", "{:.2f}"),
    ("sharpe_net", "Sharpe net", "{:.2f}"),
    ("baseline_sharpe_net", "baseline Sharpe net", "{:.2f}"),
    ("oracle_sharpe_net", "oracle Sharpe net (same policy)", "{:.2f}"),
    ("max_drawdown", "max DD", "{:.1%}"),
    ("ann_return_net", "ann. net return", "{:.2%}"),
    ("edge_per_bp", "measured edge (bps/bp, last)", "{:.2f}"),
    ("turnover_monthly", "turnover /month", "{:.2f}x"),
    ("gross_exposure", "mean gross", "{:.2f}"),
    ("max_gross_exposure", "max gross", "{:.2f}"),
    ("models_active", "active", "{}"),
    ("models_retired", "retired", "{}"),
    ("quarantined", "quarantined cols", "{}"),
    ("policy_warnings", "policy warnings", "{}"),
    ("runtime_s", "runtime", "{:.0f} s"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def markdown(rows: list[dict[str, Any]], columns=COLUMNS) -> str:
    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(r.get(key), fmt) if r.get("ok", True) or key in ("scenario", "runtime_s")
                             else "failed" for key, _, fmt in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


LIFECYCLE_COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("dying", "dying channel (view, death)", "{}"),
    ("live_end", "live at end", "{}"),
    ("retired_by_rule", "retired by rule", "{}"),
    ("false_healthy", "false retirements /20y, healthy (n in model-years)", "{}"),
    ("false_all", "false retirements /20y, `all` view", "{}"),
    ("outside_dying", "models outside the dying view ever retired (without `all`)", "{}"),
    ("dying_view_retired_within_3m", "dying view retired <= 63d", "{}"),
    ("detection_lag_days_median", "median lag (trading days)", "{:.0f}"),
    ("dying_view_retired_early", "dying view retired before death", "{}"),
    ("successors", "retrained successors", "{}"),
    ("after", "retired models' percentile among peers, year after (n)", "{}"),
    ("ensemble_ge_wf_best", "ensemble IC >= walk-fwd best", "{}"),
)


def _rate_cell(row: dict[str, Any], prefix: str) -> str:
    n, years = row.get(f"{prefix}_n"), row.get(f"{prefix}_live_years")
    detail = f" ({n} in {years:.0f} y)" if n is not None and years is not None else ""
    return _cell(row.get(f"{prefix}_per_20y"), "{:.2f}") + detail


TEXTBOOK_COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("signal_rank_ic", "published signals' rank IC", "{:.4f}"),
    ("textbook_reversal_5d", "5-day reversal", "{:.4f}"),
    ("textbook_residual_reversal_5d", "sector-residual reversal", "{:.4f}"),
    ("textbook_momentum_12_1", "12-1 momentum", "{:.4f}"),
    ("textbook_earnings_drift", "earnings drift", "{:.4f}"),
    ("textbook_best", "best textbook (hindsight)", "{}"),
    ("signal_minus_textbook_t", "t of (signals - best textbook)", "{:.1f}"),
    ("signal_rank_ic_last_third", "signals, last third", "{:.4f}"),
    ("textbook_best_rank_ic_last_third", "best textbook, last third", "{:.4f}"),
    ("signal_over_textbook_last_third", "signals / best textbook, last third", "{:.2f}"),
    ("signal_minus_textbook_t_last_third", "t of (signals - best textbook), last third", "{:.1f}"),
)


def textbook_markdown(rows: list[dict[str, Any]]) -> str:
    """The textbook baselines on the published signals' dates: a third table."""
    return markdown([r for r in rows if "signal_rank_ic" in r or not r.get("ok", True)], TEXTBOOK_COLUMNS)


def lifecycle_markdown(rows: list[dict[str, Any]]) -> str:
    """The lifecycle per scenario: a second table, so that the first stays readable."""
    shown = []
    for r in rows:
        if "retired_by_rule" not in r:  # a failed run, or a row saved before these columns existed
            shown.append(r)
            continue
        share = r.get("share_active_end")
        dying = (f"{r['dying_channel']} ({r.get('dying_views') or '?'}, {r.get('death_date')})"
                 if r.get("dying_channel") else ("none (no alpha)" if r.get("has_alpha") is False else "none"))
        shown.append({**r, "dying": dying,
                      "live_end": f"{_cell(share, '{:.0%}')} ({r.get('models_live_end')})",
                      "false_healthy": _rate_cell(r, "false_retirements"),
                      "false_all": _rate_cell(r, "false_retirements_all"),
                      "after": (f"{_cell(r.get('retired_after_percentile'), '{:.2f}')} "
                                f"({r.get('retired_after_n', '?')})"),
                      "outside_dying": (f"{_cell(r.get('outside_dying_retired_share'), '{:.0%}')} "
                                        f"({_cell(r.get('outside_dying_retired_share_no_all'), '{:.0%}')})")})
    return markdown(shown, LIFECYCLE_COLUMNS)


_TEXTBOOK = {
    "signal_rank_ic": ("signals", "{:.4f}"),
    "textbook_best_rank_ic": ("best textbook (hindsight)", "{:.4f}"),
    "signal_rank_ic_last_third": ("signals, last third", "{:.4f}"),
    "signal_over_textbook_last_third": ("signals / best textbook, last third", "{:.2f}"),
}
_MAIN = {key: (title, fmt) for key, title, fmt in COLUMNS}
BEFORE_AFTER = tuple(
    (key, *({**_MAIN, **_TEXTBOOK}[key]))
    for key in ("rank_ic", "share_of_oracle", "best_walk_forward_rank_ic", *_TEXTBOOK, "sharpe_net", "runtime_s")
)


def before_after_markdown(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    """One row per scenario in `after`: each BEFORE_AFTER figure as `before -> after`."""
    old = {r["scenario"]: r for r in before}
    head = "| scenario | " + " | ".join(title for _, title, _ in BEFORE_AFTER) + " |"
    lines = [head, "|" + "---|" * (len(BEFORE_AFTER) + 1)]
    for row in after:
        prev = old.get(row["scenario"], {})
        cells = [f"{_cell(prev.get(key), fmt)} → {_cell(row.get(key), fmt)}" for key, _, fmt in BEFORE_AFTER]
        lines.append(f"| {row['scenario']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python bench/scenario_tables.py BEFORE.json [...] -- AFTER.json [...]
    import json
    import sys

    split = sys.argv.index("--")
    read = lambda files: [r for f in files for r in json.loads(open(f).read())]  # noqa: E731
    print(before_after_markdown(read(sys.argv[1:split]), read(sys.argv[split + 1:])))
