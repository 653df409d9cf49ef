{{ config(tags=['needs:fundamentals']) }}

with source as (
    select * from {{ source('raw', 'fundamentals') }}
),

renamed as (
    select
        cast(symbol as varchar) as symbol,
        cast(period_end as date) as period_end,
        cast(report_date as date) as report_date,
        cast(eps as double) as eps,
        cast(revenue as double) as revenue,
        cast(net_income as double) as net_income,
        cast(operating_cash_flow as double) as operating_cash_flow,
        cast(total_assets as double) as total_assets,
        cast(total_liabilities as double) as total_liabilities,
        cast(book_equity as double) as book_equity,
        cast(shares_outstanding as double) as shares_outstanding
    from source
)

select * from renamed
