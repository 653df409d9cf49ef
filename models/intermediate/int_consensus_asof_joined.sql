{{ config(tags=['needs:fundamentals', 'needs:estimates']) }}

-- Daily consensus for the next unreported fiscal period and its revisions. At (symbol, t) the front
-- period is the earliest period_end after the last period reported by t (as-of report_date) that has a
-- consensus published by t (as-of as_of_date); its consensus now, a month ago and three months ago
-- (falling back to its first published consensus when coverage is younger than that) come from
-- as-of joins on as_of_date.

with panel as (
    select symbol, date, close, period_end as last_reported_period_end
    from {{ ref('int_fundamentals_asof_joined') }}
),

estimates as (
    select symbol, period_end, as_of_date, consensus_eps, eps_std
    from {{ ref('stg_estimates') }}
),

periods as (
    select
        symbol,
        period_end,
        min(as_of_date) as first_as_of_date,
        arg_min(consensus_eps, as_of_date) as first_consensus_eps
    from estimates
    group by symbol, period_end
),

front_period as (
    select
        panel.symbol,
        panel.date,
        min(periods.period_end) as front_period_end
    from panel
    inner join periods
        on periods.symbol = panel.symbol
        and periods.first_as_of_date <= panel.date
        -- a period that ended more than ~6 months ago is reported (or abandoned); bounds the join too
        and periods.period_end > panel.date - 200
        and (panel.last_reported_period_end is null or periods.period_end > panel.last_reported_period_end)
    group by panel.symbol, panel.date
),

panel_with_front as (
    select panel.*, front_period.front_period_end
    from panel
    left join front_period on front_period.symbol = panel.symbol and front_period.date = panel.date
),

consensus as (
    select
        panel_with_front.symbol,
        panel_with_front.date,
        panel_with_front.close,
        panel_with_front.front_period_end,
        now_.consensus_eps as consensus_eps,
        now_.eps_std as eps_std,
        coalesce(month_ago.consensus_eps, periods.first_consensus_eps) as consensus_eps_1m_ago,
        coalesce(quarter_ago.consensus_eps, periods.first_consensus_eps) as consensus_eps_3m_ago
    from panel_with_front
    {{ asof_left_join('estimates', 'now_',
        ['panel_with_front.symbol', 'panel_with_front.front_period_end'], ['symbol', 'period_end'],
        'panel_with_front.date', 'as_of_date') }}
    {{ asof_left_join('estimates', 'month_ago',
        ['panel_with_front.symbol', 'panel_with_front.front_period_end'], ['symbol', 'period_end'],
        'panel_with_front.date - 30', 'as_of_date') }}
    {{ asof_left_join('estimates', 'quarter_ago',
        ['panel_with_front.symbol', 'panel_with_front.front_period_end'], ['symbol', 'period_end'],
        'panel_with_front.date - 91', 'as_of_date') }}
    left join periods
        on periods.symbol = panel_with_front.symbol
        and periods.period_end = panel_with_front.front_period_end
)

select * from consensus
