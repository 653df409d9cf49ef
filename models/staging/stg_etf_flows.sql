{{ config(tags=['needs:etf_flows']) }}

with source as (
    select * from {{ source('raw', 'etf_flows') }}
),

renamed as (
    select
        cast(etf as varchar) as etf,
        cast(date as date) as date,
        cast(net_flow_usd as double) as net_flow_usd
    from source
)

select * from renamed
