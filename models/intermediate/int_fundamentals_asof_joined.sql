{{ config(tags=['needs:fundamentals']) }}

-- The daily panel with the latest statement published on or before each date (as-of report_date).

with prices as (
    select symbol, date, close
    from {{ ref('int_returns_computed') }}
),

fundamentals as (
    select * from {{ ref('int_fundamentals_enriched') }}
),

joined as (
    select
        prices.symbol,
        prices.date,
        prices.close,
        fundamentals.period_end,
        fundamentals.report_date,
        fundamentals.eps,
        fundamentals.revenue,
        fundamentals.net_income,
        fundamentals.operating_cash_flow,
        fundamentals.total_assets,
        fundamentals.total_liabilities,
        fundamentals.book_equity,
        fundamentals.shares_outstanding,
        fundamentals.roe_quarter,
        fundamentals.eps_ttm,
        fundamentals.net_income_ttm,
        fundamentals.eps_year_ago,
        fundamentals.revenue_year_ago,
        fundamentals.roe_quarter_year_ago
    from prices
    {{ asof_left_join('fundamentals', 'fundamentals', ['prices.symbol'], ['symbol'], 'prices.date', 'report_date') }}
)

select * from joined
