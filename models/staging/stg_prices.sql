with source as (
    select * from {{ source('raw', 'prices') }}
),

renamed as (
    select
        cast(symbol as varchar) as symbol,
        cast(date as date) as date,
        cast(open as double) as open,
        cast(high as double) as high,
        cast(low as double) as low,
        cast(close as double) as close,
        cast(volume as double) as volume,
        {{ optional_column('vwap', 'prices') }},
        {{ optional_column('spread_bps', 'prices') }},
        {{ optional_column('order_imbalance', 'prices') }}
    from source
)

select * from renamed
