-- sector_neutral: returns residualized on the market and the sector (rolling OLS in SQL), residual
-- momentum and reversal, industry vs stock momentum, sector rotation, and returns neutralized against
-- the panel-built market, size and value factors. Sector and market come from the ETFs when
-- etf_prices has them, else from the members (peers for the sector; see int_returns_benchmarked).
-- Then the families of macros/feature_families.sql: residual returns over a spread of windows with
-- their z-scores, and each name against its sector (sector mean, distance from it, rank within it) for
-- returns over several windows and 12-1 momentum.
-- Its contract (sector_neutral.yml) holds when fundamentals exist: without them beta_value is left out.

{{ config(contract={'enforced': has_raw('fundamentals')}) }}

{%- set residual_windows = var('residual_windows') %}
{%- set residual_z = family_columns('resid_ret', residual_windows) + ['resid_ret_21d'] %}
{%- set sector_family = ['ret_5d', 'ret_21d', 'ret_63d', 'mom_12_1'] %}

with residuals as (
    select * from {{ ref('int_returns_residualized') }}
),

securities as (
    select symbol, sector from {{ ref('stg_securities') }}
),

benchmarked as (
    select symbol, date, close, industry_mom_12_1, sector_ret_21d, sector_ret_126d, market_ret_21d
    from {{ ref('int_returns_benchmarked') }}
),

joined as (
    select
        residuals.*,
        benchmarked.close,
        benchmarked.industry_mom_12_1,
        benchmarked.sector_ret_126d,
        benchmarked.sector_ret_21d - benchmarked.market_ret_21d as sector_rel_ret_21d,
        securities.sector
    from residuals
    inner join benchmarked on benchmarked.symbol = residuals.symbol and benchmarked.date = residuals.date
    left join securities on securities.symbol = residuals.symbol
),

windowed as (
    select
        symbol,
        date,
        beta_market,
        beta_sector,
        beta_size,
        beta_value,
        resid_ret_1d,
        {{ rolling('sum', 'resid_ret_1d', 5) }} as resid_ret_5d,
        {{ rolling('sum', 'resid_ret_1d', 21) }} as resid_ret_21d,
        -- 12-1 residual momentum: the residuals from t-251 to t-21
        {{ rolling('sum', 'resid_ret_1d', 231, offset=21) }} as resid_mom_12_1,
        {{ rolling('stddev_samp', 'resid_ret_1d', 231, offset=21) }} as resid_vol_12_1,
        {{ rolling('sum', 'factor_resid_ret_1d', 5) }} as factor_resid_ret_5d,
        {{ rolling('sum', 'factor_resid_ret_1d', 21) }} as factor_resid_ret_21d,
        {{ simple_return('lag(close, 21) over by_symbol', 'lag(close, 252) over by_symbol') }} as stock_mom_12_1,
        industry_mom_12_1,
        sector_ret_126d,
        sector_rel_ret_21d,
        sector,
        {{ trailing_returns('close', 'ret', [5, 21, 63]) }},
        {{ trailing_sums('resid_ret_1d', 'resid_ret', residual_windows) }}
    from joined
    window by_symbol as (partition by symbol order by date)
),

winsorized as (
    select
        *,
        stock_mom_12_1 as mom_12_1,
        {{ cs_winsorize('resid_ret_5d') }} as resid_ret_5d_w,
        {{ cs_winsorized(residual_z) }}
    from windowed
),

features as (
    select
        symbol,
        date,
        beta_market,
        beta_sector,
        beta_size,
        {% if has_raw('fundamentals') -%}
        beta_value,  -- no book/price without fundamentals: then the column is left out, not faked
        {% endif -%}
        resid_ret_1d,
        resid_ret_5d,
        resid_ret_21d,
        resid_mom_12_1,
        {{ safe_divide('resid_mom_12_1', 'resid_vol_12_1 * sqrt(231)') }} as resid_mom_12_1_risk_adj,
        {{ cs_zscore('resid_ret_5d_w') }} as resid_ret_5d_z,
        industry_mom_12_1,
        stock_mom_12_1 - industry_mom_12_1 as stock_vs_industry_mom_12_1,
        sector_ret_126d as sector_mom_126d,
        sector_rel_ret_21d,
        factor_resid_ret_5d,
        factor_resid_ret_21d,
        {%- for c in family_columns('resid_ret', residual_windows) %}
        {{ c }},
        {%- endfor %}
        {{ cs_standardized(residual_z, ranks=false) }},
        {{ sector_relative(sector_family) }}
    from winsorized
)

select * from features
order by date, symbol
