{{ config(tags=['needs:insider_trades']) }}

with source as (
    select * from {{ source('raw', 'insider_trades') }}
),

renamed as (
    select
        cast(symbol as varchar) as symbol,
        cast(trade_date as date) as trade_date,
        cast(filing_date as date) as filing_date,
        cast(shares as double) as shares,
        cast(price as double) as price,
        upper(cast(side as varchar)) as side
    from source
)

select * from renamed
