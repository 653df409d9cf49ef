{{ config(tags=['needs:options_iv']) }}

with source as (
    select * from {{ source('raw', 'options_iv') }}
),

renamed as (
    select
        cast(symbol as varchar) as symbol,
        cast(date as date) as date,
        cast(iv_call_30d as double) as iv_call_30d,
        cast(iv_put_30d as double) as iv_put_30d
    from source
)

select * from renamed
