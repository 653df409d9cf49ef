"""The app's named queries over signals, the policy's positions and constants, and the quality gate
(ICs, calibration, coverage, latest signals, symbol history, reasons, quality runs and quarantine).
Registered in app.data's QUERIES on import (app.data imports this module at its end)."""

from __future__ import annotations

import pandas as pd

from app.data import ML, Ctx, label_column, labels_path, query


@query("rolling_ic")
def _rolling_ic(ctx: Ctx) -> pd.DataFrame | None:
    """Monthly mean of each model's daily rank IC against the 5-day label, by the project's one
    definition (`ml.metrics.daily_rank_ic`); used when the lifecycle's monthly table is missing."""
    from ml.data.predictions import read_score_panel
    from ml.metrics import daily_rank_ic

    label = label_column(ctx.paths)
    if label is None or not ctx.has(f"{ML}.predictions"):
        return None
    labels = pd.read_parquet(labels_path(ctx.paths), columns=["date", "symbol", label])
    y = pd.Series(labels[label].to_numpy(dtype="float64"), index=pd.MultiIndex.from_arrays(
        [pd.to_datetime(labels["date"]), labels["symbol"].astype(str)], names=["date", "symbol"]))
    daily = daily_rank_ic(read_score_panel(ctx.con), y.dropna())
    daily = daily.rename_axis(index="date", columns="model_id").stack().rename("ic").reset_index()
    daily["month"] = daily["date"].dt.to_period("M").dt.to_timestamp()
    out = daily.groupby(["month", "model_id"])["ic"].agg(rank_ic="mean", n_days="size").reset_index()
    return out.sort_values(["month", "model_id"]).reset_index(drop=True)


def _signal_unit_scale(ctx: Ctx) -> float:
    """Labels are return fractions; signals are in bps (ml.calibration) unless their intervals look
    like fractions. The factor that puts labels in the signals' unit."""
    width = ctx.con.execute(
        f"select median(abs(upper - lower)) from {ML}.signals where upper is not null and lower is not null"
    ).fetchone()[0]
    return 1.0 if width is not None and width < 0.5 else 1e4


def _signals_with_labels(ctx: Ctx) -> tuple[str, list] | None:
    label = label_column(ctx.paths)
    if label is None or not ctx.has(f"{ML}.signals"):
        return None
    scale = _signal_unit_scale(ctx)
    sql = f"""
        select s.date, s.symbol, s.expected_return, s.lower, s.upper, l."{label}" * {scale} as realized
        from {ML}.signals s
        join read_parquet(?) l on l.symbol = s.symbol and cast(l.date as date) = cast(s.date as date)
        where s.expected_return is not null and l."{label}" is not null
    """
    return sql, [str(labels_path(ctx.paths))]


@query("reliability")
def _reliability(ctx: Ctx) -> pd.DataFrame | None:
    """Per expected-return decile (ranked within each date, pooled over dates): count, mean predicted
    and mean realized forward return, in the signals' unit (bps)."""
    base = _signals_with_labels(ctx)
    if base is None:
        return None
    sql, params = base
    return ctx.df(
        f"""
        with s as ({sql}),
        b as (select *, ntile(10) over (partition by date order by expected_return) as decile from s)
        select decile, count(*) as n, avg(expected_return) as predicted, avg(realized) as realized
        from b group by decile order by decile
        """,
        params,
    )


@query("coverage_monthly")
def _coverage_monthly(ctx: Ctx) -> pd.DataFrame | None:
    """Per month: share of realized returns inside [lower, upper], and the mean interval width."""
    base = _signals_with_labels(ctx)
    if base is None:
        return None
    sql, params = base
    return ctx.df(
        f"""
        with s as ({sql})
        select cast(date_trunc('month', date) as date) as month,
               avg(case when realized between lower and upper then 1.0 else 0.0 end) as coverage,
               avg(upper - lower) as mean_width, count(*) as n
        from s where lower is not null and upper is not null
        group by all order by month
        """,
        params,
    )


@query("track_record")
def _track_record(ctx: Ctx) -> pd.DataFrame | None:
    """Per date, the calibration's track-record scale applied to that day's expected returns (one value a
    date; `ml.calibration.track_record_scale`); None for a warehouse written before the column."""
    if not ctx.has(f"{ML}.signals") or "track_record_scale" not in ctx.columns(f"{ML}.signals"):
        return None
    return ctx.df(f"""select cast(date as date) as date, min(track_record_scale) as scale
                      from {ML}.signals where track_record_scale is not null group by all order by date""")


@query("signals_summary")
def _signals_summary(ctx: Ctx) -> pd.DataFrame | None:
    if not ctx.has(f"{ML}.signals"):
        return None
    return ctx.df(
        f"""select count(*) as n_rows, count(distinct date) as n_days, count(distinct symbol) as n_symbols,
                   min(date) as first_date, max(date) as last_date,
                   median(abs(upper - lower)) as median_width,
                   list(distinct ensemble_version) filter (where ensemble_version is not null) as versions
            from {ML}.signals"""
    )


@query("latest_signals")
def _latest_signals(ctx: Ctx) -> pd.DataFrame | None:
    """Signals and positions of the latest date (of signals, else of positions), full outer joined."""
    has_s, has_p = ctx.has(f"{ML}.signals"), ctx.has(f"{ML}.positions")
    if not (has_s or has_p):
        return None
    anchor = f"{ML}.signals" if has_s else f"{ML}.positions"
    latest = ctx.con.execute(f"select max(date) from {anchor}").fetchone()[0]
    if latest is None:
        return ctx.df(f"select * from {anchor} limit 0")
    if has_s and has_p:
        pcols = [c for c in ctx.columns(f"{ML}.positions") if c not in ("date", "symbol")]
        extra = "".join(f', p."{c}"' for c in pcols)
        return ctx.df(
            f"""select coalesce(s.date, p.date) as date, coalesce(s.symbol, p.symbol) as symbol,
                       s.* exclude (date, symbol){extra}
                from (select * from {ML}.signals where date = ?) s
                full outer join (select * from {ML}.positions where date = ?) p
                  on p.symbol = s.symbol
                order by symbol""",
            [latest, latest],
        )
    return ctx.df(f"select * from {anchor} where date = ? order by symbol", [latest])


@query("symbol_history")
def _symbol_history(ctx: Ctx) -> pd.DataFrame | None:
    """Signal and position history of one symbol (`params['symbol']`)."""
    symbol = ctx.params.get("symbol")
    if not symbol or not ctx.has(f"{ML}.signals"):
        return None
    if ctx.has(f"{ML}.positions"):
        return ctx.df(
            f"""select s.date, s.expected_return, s.lower, s.upper, s.uncertainty, p.target_weight
                from {ML}.signals s
                left join {ML}.positions p on p.date = s.date and p.symbol = s.symbol
                where s.symbol = ? order by s.date""",
            [symbol],
        )
    return ctx.df(
        f"select date, expected_return, lower, upper, uncertainty from {ML}.signals where symbol = ? order by date",
        [symbol],
    )


@query("position_reasons")
def _position_reasons(ctx: Ctx) -> pd.DataFrame | None:
    """How often each reason appears in `ml.positions` (reason, rows), most frequent first."""
    if not ctx.has(f"{ML}.positions") or "reason" not in ctx.columns(f"{ML}.positions"):
        return None
    return ctx.df(f"select reason, count(*) as rows from {ML}.positions group by reason order by rows desc, reason")


@query("policy_constants")
def _policy_constants(ctx: Ctx) -> pd.DataFrame | None:
    """`ml.policy_constants`: the policy's measured constants, long rows (date, constant, value, method),
    one value per decision date and constant (None when the table is absent or of another shape)."""
    found = f"{ML}.policy_constants"
    if not ctx.has(found):
        return None
    cols = set(ctx.columns(found))
    if not {"date", "constant", "value"} <= cols:
        return None
    method = "cast(method as varchar)" if "method" in cols else "cast(null as varchar)"
    return ctx.df(
        f"""select cast(date as date) as date, cast(constant as varchar) as constant,
                   cast(value as double) as value, {method} as method
            from {found} where date is not null and constant is not null
            order by date, constant"""
    )


@query("latest_dates")
def _latest_dates(ctx: Ctx) -> pd.DataFrame | None:
    """Latest date of each dated ml table."""
    rows = []
    for table in ("predictions", "signals", "positions", "backtest_daily"):
        name = f"{ML}.{table}"
        if ctx.has(name) and "date" in ctx.columns(name):
            latest, n = ctx.con.execute(f"select max(date), count(*) from {name}").fetchone()
            rows.append({"table": name, "latest_date": latest, "rows": n})
    return pd.DataFrame(rows, columns=["table", "latest_date", "rows"]) if rows else None


@query("gx_runs")
def _gx_runs(ctx: Ctx) -> pd.DataFrame | None:
    if not ctx.has("quality.gx_results"):
        return None
    return ctx.df(
        """select run_id, max(run_at) as run_at, count(*) as expectations,
                  count(*) filter (where not success) as failed,
                  count(*) filter (where not success and severity = 'critical') as failed_critical,
                  count(*) filter (where not success and severity = 'quarantine') as failed_quarantine,
                  count(distinct "view") as views
           from quality.gx_results group by run_id order by run_at desc limit 30"""
    )


@query("gx_latest")
def _gx_latest(ctx: Ctx) -> pd.DataFrame | None:
    if not ctx.has("quality.gx_results"):
        return None
    return ctx.df(
        """select * exclude (run_id) from quality.gx_results
           where run_id = (select run_id from quality.gx_results order by run_at desc limit 1)
           order by success, "view", rule"""
    )


@query("quarantine")
def _quarantine(ctx: Ctx) -> pd.DataFrame | None:
    """`quality.quarantine`: the latest accepted build's quarantined feature columns, with reasons."""
    if not ctx.has("quality.quarantine"):
        return None
    return ctx.df('''select "view", column_name, rule, reason, run_id, run_at from quality.quarantine
                     order by "view", column_name, rule''')
