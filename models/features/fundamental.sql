{{ config(tags=['needs:fundamentals', 'needs:estimates']) }}

-- fundamental: earnings surprise, analyst revisions, accruals, leverage, profitability and its trend,
-- value and growth. Statements enter as-of report_date and consensus as-of as_of_date (see the
-- intermediate models), so the row for (symbol, t) only uses what was published by t.
-- Event families (macros/feature_families.sql): each earnings surprise, its change from the previous
-- report, and each consensus revision (in units of forecast dispersion), summed in event time with
-- half-lives of var('event_half_lives') calendar days from publication; and the sector's mean revision
-- with each name's distance from it and rank within it.

{%- set half_lives = var('event_half_lives') %}

with fundamentals as (
    select * from {{ ref('int_fundamentals_asof_joined') }}
),

surprises as (
    select symbol, period_end, report_date, sue
    from {{ ref('int_earnings_surprise_computed') }}
),

sue_events as (
    -- one row per (symbol, report date): the surprise and its change from the previous report
    select symbol, report_date as event_date, sum(sue) as sue, sum(sue_change) as sue_change
    from (
        select symbol, report_date, sue, sue - lag(sue) over (partition by symbol order by report_date, period_end) as sue_change
        from surprises
    ) as reports
    group by symbol, report_date
),

revision_events as (
    -- one row per (symbol, consensus date): the day's consensus changes over all fiscal periods, each in
    -- units of that period's dispersion
    -- (summed in period order: the same data gives the same bits, whatever order the threads add in)
    select symbol, as_of_date as event_date, sum(revision_std order by period_end) as revision_std
    from (
        select
            symbol,
            as_of_date,
            period_end,
            {{ safe_divide('consensus_eps - lag(consensus_eps) over (partition by symbol, period_end order by as_of_date)',
                'eps_std') }} as revision_std
        from {{ ref('stg_estimates') }}
    ) as revisions
    group by symbol, as_of_date
),

{{ decayed_event_ctes('earnings', 'sue_events', ['sue', 'sue_change'], half_lives) }},

{{ decayed_event_ctes('analyst', 'revision_events', ['revision_std'], half_lives) }},

securities as (
    select symbol, sector from {{ ref('stg_securities') }}
),

consensus as (
    select symbol, date, consensus_eps, eps_std, consensus_eps_1m_ago, consensus_eps_3m_ago
    from {{ ref('int_consensus_asof_joined') }}
),

joined as (
    select
        fundamentals.*,
        surprises.sue,
        consensus.consensus_eps,
        consensus.eps_std,
        consensus.consensus_eps_1m_ago,
        consensus.consensus_eps_3m_ago,
        securities.sector,
        {{ decayed_event_columns('earnings', ['sue', 'sue_change'], half_lives, 'fundamentals.date', 'earnings') }},
        {{ decayed_event_columns('analyst', ['revision_std'], half_lives, 'fundamentals.date', 'analyst') }},
        case when fundamentals.close > 0 and fundamentals.shares_outstanding > 0
            then fundamentals.close * fundamentals.shares_outstanding end as market_cap
    from fundamentals
    left join surprises
        on surprises.symbol = fundamentals.symbol
        and surprises.period_end = fundamentals.period_end
        and surprises.report_date = fundamentals.report_date
    left join consensus
        on consensus.symbol = fundamentals.symbol
        and consensus.date = fundamentals.date
    left join securities on securities.symbol = fundamentals.symbol
    {{ decayed_event_joins('earnings', 'fundamentals.symbol', 'fundamentals.date', half_lives) }}
    {{ decayed_event_joins('analyst', 'fundamentals.symbol', 'fundamentals.date', half_lives) }}
),

features as (
    select
        symbol,
        date,
        sue,
        cast(date - report_date as integer) as days_since_report,
        {{ safe_divide('consensus_eps - consensus_eps_1m_ago', 'close') }} as eps_revision_1m,
        {{ safe_divide('consensus_eps - consensus_eps_3m_ago', 'close') }} as eps_revision_3m,
        {{ safe_divide('consensus_eps - consensus_eps_3m_ago', 'eps_std') }} as eps_revision_3m_std,
        {{ safe_divide('net_income - operating_cash_flow', 'total_assets') }} as accruals,
        {{ safe_divide('total_liabilities', 'total_assets') }} as leverage,
        {{ safe_divide('net_income_ttm', 'case when book_equity > 0 then book_equity end') }} as roe,
        {{ safe_divide('net_income_ttm', 'total_assets') }} as roa,
        roe_quarter - roe_quarter_year_ago as roe_change_yoy,
        {{ safe_divide('book_equity', 'market_cap') }} as book_to_price,
        {{ safe_divide('eps_ttm', 'close') }} as earnings_to_price,
        {{ simple_return('revenue', 'revenue_year_ago') }} as revenue_growth_yoy,
        {{ safe_divide('eps - eps_year_ago', 'close') }} as eps_growth_yoy,
        {%- for c in decayed_event_names(['sue', 'sue_change'], half_lives, 'earnings')
            + decayed_event_names(['revision_std'], half_lives, 'analyst') %}
        {{ c }},
        {%- endfor %}
        {{ sector_relative(['analyst_revision_std_hl' ~ half_lives[(half_lives | length) // 2]]) }}
    from joined
)

select * from features
order by date, symbol
