-- price_momentum: the commodity baseline. Returns over a spread of windows (the price family of
-- macros/feature_families.sql), 12-1 momentum, realized volatility and its term structure, distance
-- from the 52-week high, the dollar-volume trend, and cross-sectional z-scores (per date, of winsorized
-- values). Trailing windows only; a feature is NULL until its window is full.

{%- set short_windows = var('price_windows') %}
{%- set z_columns = ['ret_5d', 'ret_21d', 'mom_12_1']
    + family_columns('ret', short_windows) + family_columns('ret', [63, 126, 252]) %}

with returns as (
    select symbol, date, close, ret_1d, dollar_volume
    from {{ ref('int_returns_computed') }}
),

windowed as (
    select
        symbol,
        date,
        ret_1d,
        {{ trailing_returns('close', 'ret', [5, 21, 63, 126, 252]) }},
        {{ simple_return('lag(close, 21) over by_symbol', 'lag(close, 252) over by_symbol') }} as mom_12_1,
        {{ rolling('stddev_samp', 'ret_1d', 21) }} * sqrt(252) as vol_21d,
        {{ rolling('stddev_samp', 'ret_1d', 63) }} * sqrt(252) as vol_63d,
        {{ simple_return('close', rolling('max', 'close', 252)) }} as dist_52w_high,
        {{ trailing_returns('close', 'ret', short_windows) }},
        {{ trailing_log_ratios('dollar_volume', 'dollar_volume_trend', var('volume_trend_windows'), 252) }}
    from returns
    window by_symbol as (partition by symbol order by date)
),

winsorized as (
    select
        *,
        {{ safe_divide('vol_21d', 'vol_63d') }} as vol_ratio_21_63,
        {{ cs_winsorized(z_columns) }}
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
        {{ cs_standardized(['ret_5d', 'ret_21d', 'mom_12_1'], ranks=false) }},
        {{ cs_rank('mom_12_1') }} as mom_12_1_rank,
        {%- for c in family_columns('ret', short_windows) %}
        {{ c }},
        {%- endfor %}
        {{ cs_standardized(family_columns('ret', short_windows) + family_columns('ret', [63, 126, 252]), ranks=false) }},
        {%- for c in family_columns('dollar_volume_trend', var('volume_trend_windows')) %}
        {{ c }}{{ ',' if not loop.last }}
        {%- endfor %}
    from winsorized
)

select * from features
order by date, symbol
