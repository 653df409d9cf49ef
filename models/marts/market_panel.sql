-- market_panel: the market as the policy and the backtest see it, one row per (symbol, date) of the
-- price panel. Prices and the one definition of daily returns (int_returns_computed), tradability, the
-- last known quoted spread, trailing ADV and volatility, and the configured market beta
-- (int_returns_residualized: `beta_window` rows against the market benchmark). Every window is strictly
-- trailing: a value at t uses rows up to t only. Python lays it on a dates x symbols grid
-- (ml.backtest.market_panel_from_mart) and never recomputes these statistics.

with bars as (
    select symbol, date, high, low, close, volume, spread_bps, dollar_volume, ret_1d
    from {{ ref('int_returns_computed') }}
),

betas as (
    select symbol, date, beta_market
    from {{ ref('int_returns_residualized') }}
),

securities as (
    select symbol, sector from {{ ref('stg_securities') }}
),

windowed as (
    select
        symbol,
        date,
        close,
        high,
        low,
        volume,
        ret_1d,
        close is not null and coalesce(volume > 0, true) as tradable,
        {{ last_known('spread_bps') }} as spread_bps,
        {{ rolling('avg', 'dollar_volume', var('panel_adv_window'), min_periods=var('panel_adv_min_obs')) }}
            as adv_value,
        {{ rolling('stddev_samp', 'ret_1d', var('panel_vol_window'), min_periods=var('panel_vol_min_obs')) }}
            as sigma
    from bars
),

panel as (
    select
        windowed.symbol,
        windowed.date,
        securities.sector,
        windowed.close,
        windowed.high,
        windowed.low,
        windowed.volume,
        windowed.ret_1d,
        windowed.tradable,
        windowed.spread_bps,
        windowed.adv_value,
        windowed.sigma,
        betas.beta_market as beta
    from windowed
    left join betas on betas.symbol = windowed.symbol and betas.date = windowed.date
    left join securities on securities.symbol = windowed.symbol
)

select * from panel
order by date, symbol
