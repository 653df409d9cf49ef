{{ config(tags=['needs:fundamentals', 'needs:estimates']) }}

-- Standardized unexpected earnings per report: (reported EPS - the last consensus for that period
-- published strictly before the report) / that consensus' dispersion.

with fundamentals as (
    select symbol, period_end, report_date, eps
    from {{ ref('int_fundamentals_enriched') }}
),

estimates as (
    select symbol, period_end, as_of_date, consensus_eps, eps_std
    from {{ ref('stg_estimates') }}
),

surprises as (
    select
        fundamentals.symbol,
        fundamentals.period_end,
        fundamentals.report_date,
        fundamentals.eps,
        estimates.as_of_date as consensus_as_of_date,
        estimates.consensus_eps,
        estimates.eps_std,
        {{ safe_divide('fundamentals.eps - estimates.consensus_eps', 'estimates.eps_std') }} as sue
    from fundamentals
    {{ asof_left_join('estimates', 'estimates',
        ['fundamentals.symbol', 'fundamentals.period_end'], ['symbol', 'period_end'],
        'fundamentals.report_date', 'as_of_date', strict=true) }}
)

select * from surprises
