"""Build and read the feature research marts (`models/research/`, tag `research`, schema `research`).

The marts score every feature of every built view against the labels (rank IC by horizon, raw and
sector-neutral, Newey-West t, coverage, rank autocorrelation, decile spreads gross and net of a cost,
stability by year and volatility state, correlations, and the IC left after neutralizing to the
baseline view); the SQL and its definitions are in models/research/ and macros/research.sql. The
feature build (ml.warehouse.build_features) builds them with everything else, and a research failure
is reported there without holding back the features the pipeline trains on; `build_research_marts`
rebuilds them alone (after editing only research SQL). `aurora features` and the app's Features page
read them with `feature_table`, `view_table`, `feature_card` and `research_frame`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ml.paths import DataPaths
from ml.data.dbt_runner import RESEARCH_SELECTOR, Log, MartBuildError, NodeResult, build_marts
from ml.data.raw_inputs import inspect_raw

RESEARCH_SCHEMA = "research"
PRIMARY_LABEL = "fwd_ret_sn_5d"  # the default of the dbt var research_primary_label


class ResearchBuildError(MartBuildError):
    """A research mart or one of its tests failed."""


@dataclass
class ResearchResult:
    built: list[str] = field(default_factory=list)
    tests_passed: int = 0
    seconds: float = 0.0
    nodes: list[NodeResult] = field(default_factory=list)


def build_research_marts(paths: DataPaths, log: Log = print) -> ResearchResult:
    """`dbt build --select tag:research` over the published feature marts, tests included.
    Raises ResearchBuildError when a mart or a test fails."""
    started = time.perf_counter()
    raw = inspect_raw(paths)
    log(f"[research] dbt build of the feature research marts ({len(raw.dbt_vars()['feature_views'])} views)")
    nodes = build_marts(paths, raw, [RESEARCH_SELECTOR], log,
                        "feature research marts (the feature marts are published and unaffected)", ResearchBuildError)
    result = ResearchResult(
        built=sorted(n.name for n in nodes if n.resource_type == "model" and n.status == "success"),
        tests_passed=sum(1 for n in nodes if n.is_test and n.status == "pass"),
        seconds=time.perf_counter() - started,
        nodes=nodes,
    )
    log(f"[research] built {len(result.built)} research models, {result.tests_passed} tests passed "
        f"in {result.seconds:.1f}s (schema {RESEARCH_SCHEMA})")
    return result


def _read(paths: DataPaths, sql: str, params: list | None = None) -> pd.DataFrame:
    if not paths.warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {paths.warehouse}: run `aurora build-features` first")
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchdf()
    except duckdb.CatalogException as err:
        raise FileNotFoundError(
            f"no feature research in {paths.warehouse}: run `aurora build-features` first") from err
    finally:
        con.close()


def feature_table(paths: DataPaths, view: str | None = None, feature: str | None = None,
                  label: str = PRIMARY_LABEL) -> pd.DataFrame:
    """One row per feature: the primary label's figures, the IC at every horizon (decay) and the
    orthogonal IC, ranked by |Newey-West t|."""
    where, params = [], []
    if view:
        where.append("s.view_name = ?")
        params.append(view)
    if feature:
        where.append("s.feature = ?")
        params.append(feature)
    decay = _read(paths, f"select distinct horizon from {RESEARCH_SCHEMA}.research_feature_summary "
                         "where sector_neutral = (select sector_neutral from "
                         f"{RESEARCH_SCHEMA}.research_feature_summary where label = ? limit 1) order by 1",
                  [label])["horizon"].tolist()
    neutral = label.startswith("fwd_ret_sn_")
    decay_cols = ", ".join(
        f"max(d.mean_ic) filter (where d.horizon = {int(h)}) as ic_{int(h)}d" for h in decay)
    sql = f"""
        with decay as (
            select view_name, feature, {decay_cols}
            from {RESEARCH_SCHEMA}.research_feature_summary d
            where sector_neutral = {neutral}
            group by view_name, feature
        )
        select s.view_name as view, s.feature, s.mean_ic, s.ic_t, s.icir, s.hit_rate, decay.* exclude (view_name, feature),
               o.orthogonal_ic, o.orthogonal_share, s.coverage, s.rank_autocorr, s.turnover,
               s.spread_bps, s.net_spread_ann, s.n_dates
        from {RESEARCH_SCHEMA}.research_feature_summary s
        left join decay using (view_name, feature)
        left join {RESEARCH_SCHEMA}.research_feature_orthogonality o using (view_name, feature)
        where s.label = ? {''.join(' and ' + w for w in where)}
        order by abs(s.ic_t) desc nulls last, s.view_name, s.feature
    """
    return _read(paths, sql, [label, *params])


def view_table(paths: DataPaths) -> pd.DataFrame:
    """One row per view: size, significant features, best feature, orthogonal edge, correlations."""
    return _read(paths, f"select * from {RESEARCH_SCHEMA}.research_view_summary order by view_name")


def research_frame(paths: DataPaths, mart: str, where: str = "", params: list | None = None) -> pd.DataFrame:
    """Any research mart (e.g. research_feature_daily for cumulative IC), optionally filtered."""
    if not mart.replace("_", "").isalnum():
        raise ValueError(f"not a research mart name: {mart!r}")
    return _read(paths, f"select * from {RESEARCH_SCHEMA}.{mart}" + (f" where {where}" if where else ""),
                 params)


def feature_card(paths: DataPaths, view: str, feature: str, label: str = PRIMARY_LABEL,
                 top_correlates: int = 5) -> dict:
    """Everything the research marts say about one feature: its row of `feature_table`, its IC by
    label, by year and by volatility state, and its most correlated features."""
    row = feature_table(paths, view, feature, label)
    if row.empty:
        raise KeyError(f"no feature {feature!r} in view {view!r} in the research marts "
                       "(is it spelled as in the view's SQL, and was `aurora build-features` run since?)")
    by_label = research_frame(paths, "research_feature_summary", "view_name = ? and feature = ?",
                              [view, feature]).sort_values(["sector_neutral", "horizon"])
    stability = research_frame(paths, "research_feature_stability",
                               "view_name = ? and feature = ? and label = ?", [view, feature, label]
                               ).sort_values(["split", "period"])
    correlates = _read(paths, f"""
        select view_b as view, feature_b as feature, corr from {RESEARCH_SCHEMA}.research_feature_correlation
        where view_a = ? and feature_a = ? and corr is not null order by abs(corr) desc limit ?""",
                       [view, feature, top_correlates])
    return {"feature": row.iloc[0].to_dict(),
            "by_label": by_label[["label", "horizon", "sector_neutral", "mean_ic", "ic_t", "hit_rate",
                                  "spread_bps", "net_spread_ann"]].to_dict("records"),
            "stability": stability[["split", "period", "n_dates", "mean_ic", "hit_rate"]].to_dict("records"),
            "correlates": correlates.to_dict("records")}


_FORMATS = {"mean_ic": "{:+.4f}", "ic_t": "{:+.1f}", "icir": "{:+.2f}", "hit_rate": "{:.0%}",
            "orthogonal_ic": "{:+.4f}", "orthogonal_share": "{:.2f}", "coverage": "{:.0%}",
            "rank_autocorr": "{:.2f}", "turnover": "{:.0%}", "spread_bps": "{:+.1f}",
            "net_spread_ann": "{:+.1%}", "n_dates": "{:d}", "mean_abs_ic": "{:.4f}", "best_ic": "{:+.4f}",
            "best_ic_t": "{:.1f}", "mean_abs_orthogonal_ic": "{:.4f}", "mean_abs_corr_within": "{:.2f}",
            "mean_abs_corr_across": "{:.2f}", "max_abs_corr_baseline": "{:.2f}", "corr": "{:+.2f}"}


def render(frame: pd.DataFrame) -> str:
    """A plain-text table: numbers formatted per column (ic_<h>d as ICs), NULL as '-'."""
    if frame.empty:
        return "(none)"

    def cell(column: str, value) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return "-"
        fmt = _FORMATS.get(column, "{:+.4f}" if column.startswith("ic_") else None)
        if fmt and isinstance(value, int | float) and not isinstance(value, bool):
            return fmt.format(int(value) if fmt == "{:d}" else value)
        return str(value)

    cells = [[cell(c, v) for c, v in zip(frame.columns, row, strict=True)] for row in frame.itertuples(index=False)]
    widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(frame.columns)]
    numeric = [frame[c].dtype.kind in "fiu" for c in frame.columns]
    line = lambda values: "  ".join(  # noqa: E731
        v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()
    return "\n".join([line([str(c) for c in frame.columns]), line(["-" * w for w in widths]),
                      *(line(r) for r in cells)])
