-- price_momentum: the commodity baseline. Multi-horizon returns, 12-1 momentum, realized volatility
-- and its term structure, distance from the 52-week high, and cross-sectional z-scores (per date, of
-- winsorized values). Trailing windows only; a feature is NULL until its window is full.

with returns as (
    select symbol, date, close, ret_1d
    from {{ ref('int_returns_computed') }}
),

windowed as (
    select
        symbol,
        date,
        ret_1d,
        {{ simple_return('close', 'lag(close, 5) over by_symbol') }} as ret_5d,
        {{ simple_return('close', 'lag(close, 21) over by_symbol') }} as ret_21d,
        {{ simple_return('close', 'lag(close, 63) over by_symbol') }} as ret_63d,
        {{ simple_return('close', 'lag(close, 126) over by_symbol') }} as ret_126d,
        {{ simple_return('close', 'lag(close, 252) over by_symbol') }} as ret_252d,
        {{ simple_return('lag(close, 21) over by_symbol', 'lag(close, 252) over by_symbol') }} as mom_12_1,
        {{ rolling('stddev_samp', 'ret_1d', 21) }} * sqrt(252) as vol_21d,
        {{ rolling('stddev_samp', 'ret_1d', 63) }} * sqrt(252) as vol_63d,
        {{ simple_return('close', rolling('max', 'close', 252)) }} as dist_52w_high
    from returns
    window by_symbol as (partition by symbol order by date)
),

winsorized as (
    select
        *,
        {{ safe_divide('vol_21d', 'vol_63d') }} as vol_ratio_21_63,
        {{ cs_winsorize('ret_5d') }} as ret_5d_w,
        {{ cs_winsorize('ret_21d') }} as ret_21d_w,
        {{ cs_winsorize('mom_12_1') }} as mom_12_1_w
    from windowed
),

features as (
    select
        symbol,
        date,
        ret_1d,
        ret_5d,
        ret_21d,
        ret_63d,
        ret_126d,
        ret_252d,
        mom_12_1,
        vol_21d,
        vol_63d,
        vol_ratio_21_63,
        dist_52w_high,
        {{ cs_zscore('ret_5d_w') }} as ret_5d_z,
        {{ cs_zscore('ret_21d_w') }} as ret_21d_z,
        {{ cs_zscore('mom_12_1_w') }} as mom_12_1_z,
        {{ cs_rank('mom_12_1') }} as mom_12_1_rank
    from winsorized
)

select * from features
order by date, symbol
