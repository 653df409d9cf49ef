{{ config(tags=['needs:etf_prices']) }}

with source as (
    select * from {{ source('raw', 'etf_prices') }}
),

renamed as (
    select
        cast(etf as varchar) as etf,
        cast(date as date) as date,
        cast(close as double) as close,
        cast(volume as double) as volume
    from source
)

select * from renamed
