{{ config(tags=['needs:fundamentals', 'needs:estimates']) }}

-- fundamental: earnings surprise, analyst revisions, accruals, leverage, profitability and its trend,
-- value and growth. Statements enter as-of report_date and consensus as-of as_of_date (see the
-- intermediate models), so the row for (symbol, t) only uses what was published by t.

with fundamentals as (
    select * from {{ ref('int_fundamentals_asof_joined') }}
),

surprises as (
    select symbol, period_end, report_date, sue
    from {{ ref('int_earnings_surprise_computed') }}
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
        {{ safe_divide('eps - eps_year_ago', 'close') }} as eps_growth_yoy
    from joined
)

select * from features
order by date, symbol
