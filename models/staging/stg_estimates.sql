{{ config(tags=['needs:estimates']) }}

with source as (
    select * from {{ source('raw', 'estimates') }}
),

renamed as (
    select
        cast(symbol as varchar) as symbol,
        cast(period_end as date) as period_end,
        cast(as_of_date as date) as as_of_date,
        cast(consensus_eps as double) as consensus_eps,
        cast(eps_std as double) as eps_std,
        cast(n_analysts as integer) as n_analysts
    from source
)

select * from renamed
