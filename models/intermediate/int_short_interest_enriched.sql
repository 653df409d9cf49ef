{{ config(tags=['needs:short_interest']) }}

-- One row per (symbol, publish_date): the latest settlement published that day, its days to cover and
-- the log change in shares short against the previously published settlement.

with short_interest as (
    select * from {{ ref('stg_short_interest') }}
),

latest_per_publish_date as (
    select *
    from short_interest
    qualify row_number() over (partition by symbol, publish_date order by settlement_date desc) = 1
),

enriched as (
    select
        symbol,
        publish_date,
        settlement_date,
        shares_short,
        {{ safe_divide('shares_short', 'avg_daily_volume') }} as days_to_cover,
        {{ safe_ln(safe_divide('shares_short',
            'lag(shares_short) over (partition by symbol order by publish_date, settlement_date)')) }}
            as short_interest_change
    from latest_per_publish_date
)

select * from enriched
