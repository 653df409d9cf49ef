{{ config(tags=['needs:estimates']) }}

-- Analyst revisions per symbol by as_of_date: each consensus snapshot compared with the previous one
-- for the same fiscal period (up / down), accumulated over time, plus the day's dispersion (eps_std of
-- the nearest period snapshotted that day).

with estimates as (
    select * from {{ ref('stg_estimates') }}
),

revisions as (
    select
        symbol,
        period_end,
        as_of_date,
        eps_std,
        consensus_eps - lag(consensus_eps) over (partition by symbol, period_end order by as_of_date) as revision
    from estimates
),

daily as (
    select
        symbol,
        as_of_date,
        count(*) filter (where revision > 0) as n_up,
        count(*) filter (where revision < 0) as n_down,
        count(revision) as n_revisions,
        arg_min(eps_std, period_end) as eps_std_front
    from revisions
    group by symbol, as_of_date
),

accumulated as (
    select
        symbol,
        as_of_date,
        eps_std_front,
        sum(n_up) over to_date as cum_up,
        sum(n_down) over to_date as cum_down,
        sum(n_revisions) over to_date as cum_revisions
    from daily
    window to_date as (partition by symbol order by as_of_date rows between unbounded preceding and current row)
)

select * from accumulated
