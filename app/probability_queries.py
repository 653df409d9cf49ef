"""The app's named query for `prob_up` (ml/probability.py): the reliability of the probability that a
name beats its sector over the horizon, from `ml.signals` joined with `features/labels.parquet`.
Registered in app.data's QUERIES on import (app.data imports this module at its end)."""

from __future__ import annotations

import pandas as pd

from app.data import ML, Ctx, label_column, labels_path, query

N_BINS = 10


def _demeaned() -> bool:
    """Whether the pipeline's label is taken relative to the day's mean (`config/ensemble.yaml`
    `label.demean`, default true): the outcome prob_up predicts is that label above zero."""
    try:
        from ml.ensemble import load_config

        return bool((load_config().get("label") or {}).get("demean", True))
    except Exception:  # an unreadable config must not break the page: the pipeline's default
        return True


@query("prob_reliability")
def _prob_reliability(ctx: Ctx) -> pd.DataFrame | None:
    """Per decile of prob_up (pooled over dates): count n, mean predicted probability, observed share of
    ups (label > 0) and the bin's summed squared error `sse` (the Brier score is sum(sse) / sum(n)).
    None without signals, labels or a prob_up column (a warehouse from before it existed)."""
    label = label_column(ctx.paths)
    if label is None or not ctx.has(f"{ML}.signals") or "prob_up" not in ctx.columns(f"{ML}.signals"):
        return None
    centre = f' - avg("{label}") over (partition by cast(date as date))' if _demeaned() else ""
    return ctx.df(
        f"""
        with l as (
            select symbol, cast(date as date) as date, "{label}"{centre} as y
            from read_parquet(?) where "{label}" is not null
        ),
        s as (
            select s.prob_up as p, case when l.y > 0 then 1.0 else 0.0 end as up
            from {ML}.signals s join l on l.symbol = s.symbol and l.date = cast(s.date as date)
            where s.prob_up is not null
        ),
        b as (select *, ntile({N_BINS}) over (order by p) as bin from s)
        select bin, count(*) as n, avg(p) as predicted, avg(up) as observed, sum((p - up) * (p - up)) as sse
        from b group by bin order by bin
        """,
        [str(labels_path(ctx.paths))],
    )
