-- Rolling betas and residual returns per stock (trailing `beta_window` rows, ending at t).
--   beta_market, beta_sector: univariate OLS slopes on the market and on the sector benchmark
--   resid_ret_1d: return net of a two-factor fit on the market and the sector's excess over the market
--   beta_size, beta_value and factor_resid_ret_1d: the same against the panel-built market, size and
--       value factors (market and size only when there are no fundamentals)

{%- set sector_xs = ['s_x_market', 's_x_sector'] %}
{%- set factor_xs = ['f_x_market', 'f_x_size'] + (['f_x_value'] if has_raw('fundamentals') else []) %}

with returns as (
    select symbol, date, ret_1d, sector_ret, market_ret
    from {{ ref('int_returns_benchmarked') }}
),

factors as (
    select date, mkt_ret, smb_ret, hml_ret
    from {{ ref('int_factor_returns_built') }}
),

inputs as (
    -- regression inputs NULLed together on incomplete rows, so all moments use the same rows
    select
        returns.symbol,
        returns.date,
        returns.ret_1d,
        returns.sector_ret,
        returns.market_ret,
        factors.mkt_ret,
        factors.smb_ret,
        factors.hml_ret,
        {%- set sector_complete = all_not_null(['returns.ret_1d', 'returns.market_ret', 'returns.sector_ret']) %}
        case when {{ sector_complete }} then returns.ret_1d end as s_y,
        case when {{ sector_complete }} then returns.market_ret end as s_x_market,
        case when {{ sector_complete }} then returns.sector_ret - returns.market_ret end as s_x_sector,
        {%- set factor_columns = ['returns.ret_1d', 'factors.mkt_ret', 'factors.smb_ret']
            + (['factors.hml_ret'] if has_raw('fundamentals') else []) %}
        {%- set factor_complete = all_not_null(factor_columns) %}
        case when {{ factor_complete }} then returns.ret_1d end as f_y,
        case when {{ factor_complete }} then factors.mkt_ret end as f_x_market,
        case when {{ factor_complete }} then factors.smb_ret end as f_x_size,
        case when {{ factor_complete }} then factors.hml_ret end as f_x_value
    from returns
    left join factors on factors.date = returns.date
),

moments as (
    select
        *,
        {{ rolling_beta('ret_1d', 'market_ret') }} as beta_market,
        {{ rolling_beta('ret_1d', 'sector_ret') }} as beta_sector,
        {{ rolling_ols_moments('s_y', sector_xs, 's') }},
        {{ rolling_ols_moments('f_y', factor_xs, 'f') }}
    from inputs
),

{%- set s_betas = rolling_ols_betas(sector_xs, 's') %}
{%- set f_betas = rolling_ols_betas(factor_xs, 'f') %}

betas as (
    select
        symbol,
        date,
        ret_1d,
        sector_ret,
        market_ret,
        mkt_ret,
        smb_ret,
        hml_ret,
        beta_market,
        beta_sector,
        {{ s_betas[0] }} as s_beta_market,
        {{ s_betas[1] }} as s_beta_sector,
        {{ f_betas[0] }} as f_beta_market,
        {{ f_betas[1] }} as beta_size,
        {{ f_betas[2] if has_raw('fundamentals') else 'cast(null as double)' }} as beta_value
    from moments
),

residuals as (
    select
        symbol,
        date,
        beta_market,
        beta_sector,
        beta_size,
        beta_value,
        -- when the sector adds nothing beyond the market over the window (the fit is singular, e.g. a
        -- stock without sector peers), the residual is the market-model one
        coalesce(
            ret_1d - s_beta_market * market_ret - s_beta_sector * (sector_ret - market_ret),
            ret_1d - beta_market * market_ret
        ) as resid_ret_1d,
        ret_1d - f_beta_market * mkt_ret - beta_size * smb_ret
            {%- if has_raw('fundamentals') %} - beta_value * hml_ret{% endif %} as factor_resid_ret_1d
    from betas
)

select * from residuals
