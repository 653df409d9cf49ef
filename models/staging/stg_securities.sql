with source as (
    select * from {{ source('raw', 'securities') }}
),

renamed as (
    select
        cast(symbol as varchar) as symbol,
        cast(sector as varchar) as sector,
        cast(industry as varchar) as industry,
        cast(etf as varchar) as etf,
        cast(listed_date as date) as listed_date
    from source
)

select * from renamed
