{{ config(tags=['needs:prices.vwap', 'needs:prices.spread_bps', 'needs:prices.order_imbalance']) }}

-- microstructure: VWAP deviation, quoted spread level and change, realized-volatility clustering,
-- order imbalance, Amihud illiquidity and volume surprise, from the daily bars (trailing windows only).

with bars as (
    select * from {{ ref('int_returns_computed') }}
),

daily as (
    select
        symbol,
        date,
        ret_1d,
        volume,
        spread_bps,
        order_imbalance,
        {{ simple_return('close', 'vwap') }} as vwap_deviation,
        abs(ret_1d) as abs_ret,
        lag(abs(ret_1d)) over (partition by symbol order by date) as abs_ret_prev,
        {{ safe_divide('abs(ret_1d)', 'dollar_volume') }} as amihud_daily,
        case when high > 0 and low > 0 then pow(ln(high / low), 2) end as hl_log_range_sq
    from bars
),

windowed as (
    select
        symbol,
        date,
        vwap_deviation,
        {{ rolling('avg', 'vwap_deviation', 5) }} as vwap_deviation_5d,
        {{ rolling('avg', 'spread_bps', 21) }} as spread_bps_21d,
        {{ safe_ln(safe_divide(rolling('avg', 'spread_bps', 5), rolling('avg', 'spread_bps', 63))) }}
            as spread_change_5d_63d,
        {{ safe_divide(rolling('stddev_samp', 'ret_1d', 5), rolling('stddev_samp', 'ret_1d', 63)) }}
            as rv_ratio_5d_63d,
        {{ rolling_corr('abs_ret', 'abs_ret_prev', 63) }}
            as abs_ret_autocorr_63d,
        sqrt({{ rolling('avg', 'hl_log_range_sq', 21) }} / (4 * ln(2))) * sqrt(252) as parkinson_vol_21d,
        order_imbalance,
        {{ rolling('avg', 'order_imbalance', 5) }} as order_imbalance_5d,
        {{ safe_ln(rolling('avg', 'amihud_daily', 21, min_periods=15)) }} as amihud_illiq_21d,
        {{ safe_ln('(volume + 1) / (' ~ rolling('avg', 'volume', 63, min_periods=21, offset=1) ~ ' + 1)') }}
            as volume_surprise
    from daily
)

select * from windowed
order by date, symbol
