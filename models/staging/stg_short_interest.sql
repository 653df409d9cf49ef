{{ config(tags=['needs:short_interest']) }}

with source as (
    select * from {{ source('raw', 'short_interest') }}
),

renamed as (
    select
        cast(symbol as varchar) as symbol,
        cast(settlement_date as date) as settlement_date,
        cast(publish_date as date) as publish_date,
        cast(shares_short as double) as shares_short,
        cast(avg_daily_volume as double) as avg_daily_volume
    from source
)

select * from renamed
