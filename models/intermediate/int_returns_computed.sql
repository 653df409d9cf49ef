-- Daily returns per symbol: the one place the price panel gets its lags, shared by every view.

with prices as (
    select * from {{ ref('stg_prices') }}
),

returns as (
    select
        symbol,
        date,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        spread_bps,
        order_imbalance,
        close * volume as dollar_volume,
        {{ simple_return('close', 'lag(close) over by_symbol') }} as ret_1d
    from prices
    window by_symbol as (partition by symbol order by date)
)

select * from returns
