{{ config(tags=['needs:fundamentals']) }}

-- One row per (symbol, report_date): the statement published that day with its trailing-four-quarter
-- sums and year-ago comparisons. History is ordered by report_date, so a row only draws on statements
-- published on or before its own report_date.

with fundamentals as (
    select * from {{ ref('stg_fundamentals') }}
),

latest_per_report_date as (
    -- when several periods are published the same day, the latest period is the news
    select *
    from fundamentals
    qualify row_number() over (partition by symbol, report_date order by period_end desc) = 1
),

history as (
    select
        *,
        {{ safe_divide('net_income', 'case when book_equity > 0 then book_equity end') }} as roe_quarter,
        lag(period_end, 3) over by_report as period_end_3q_ago,
        lag(period_end, 4) over by_report as period_end_4q_ago,
        lag(eps, 4) over by_report as eps_4q_ago,
        lag(revenue, 4) over by_report as revenue_4q_ago,
        count(eps) over last_4 as n_eps_4q,
        sum(eps) over last_4 as eps_4q_sum,
        count(net_income) over last_4 as n_net_income_4q,
        sum(net_income) over last_4 as net_income_4q_sum
    from latest_per_report_date
    window
        by_report as (partition by symbol order by report_date, period_end),
        last_4 as (partition by symbol order by report_date, period_end rows between 3 preceding and current row)
),

enriched as (
    select
        symbol,
        period_end,
        report_date,
        eps,
        revenue,
        net_income,
        operating_cash_flow,
        total_assets,
        total_liabilities,
        book_equity,
        shares_outstanding,
        roe_quarter,
        -- trailing sums only over four consecutive quarters (about 9 months from first to last period end)
        case when n_eps_4q = 4 and period_end - period_end_3q_ago between 240 and 300
            then eps_4q_sum end as eps_ttm,
        case when n_net_income_4q = 4 and period_end - period_end_3q_ago between 240 and 300
            then net_income_4q_sum end as net_income_ttm,
        -- year-ago comparisons only against the same fiscal quarter
        case when period_end - period_end_4q_ago between 340 and 390 then eps_4q_ago end as eps_year_ago,
        case when period_end - period_end_4q_ago between 340 and 390 then revenue_4q_ago end as revenue_year_ago,
        case when period_end - period_end_4q_ago between 340 and 390
            then lag(roe_quarter, 4) over by_report end as roe_quarter_year_ago
    from history
    window by_report as (partition by symbol order by report_date, period_end)
)

select * from enriched
