{{ config(tags=['needs:etf_flows']) }}

-- ETF flow pressure per (etf, date): net flow summed over the last 5, 21 and 63 days, in units of
-- the ETF's own daily-flow volatility over the trailing year (at least 63 days of history).

with flows as (
    select * from {{ ref('stg_etf_flows') }}
),

windowed as (
    select
        etf,
        date,
        net_flow_usd,
        {{ rolling('sum', 'net_flow_usd', 5, partition_by='etf') }} as flow_5d,
        {{ rolling('sum', 'net_flow_usd', 21, partition_by='etf') }} as flow_21d,
        {{ rolling('sum', 'net_flow_usd', 63, partition_by='etf') }} as flow_63d,
        {{ rolling('stddev_samp', 'net_flow_usd', 252, min_periods=63, partition_by='etf') }} as flow_sd_1y
    from flows
),

scaled as (
    select
        etf,
        date,
        {{ safe_divide('flow_5d', 'flow_sd_1y * sqrt(5)') }} as flow_pressure_5d,
        {{ safe_divide('flow_21d', 'flow_sd_1y * sqrt(21)') }} as flow_pressure_21d,
        {{ safe_divide('flow_63d', 'flow_sd_1y * sqrt(63)') }} as flow_pressure_63d
    from windowed
)

select * from scaled
