-- Benchmark return series at (date, series, key) grain: equal-weighted member returns per sector,
-- per industry and across all names ("market", key 'all'), plus one series per ETF when etf_prices
-- exists. Member series also carry the day's sum and count of member returns, so a stock can take its
-- peers' average (leaving itself out). Trailing returns are computed per series, so a newly listed
-- stock still sees its benchmark's full history.

with returns as (
    select symbol, date, ret_1d
    from {{ ref('int_returns_computed') }}
    where ret_1d is not null
),

securities as (
    select symbol, sector, industry from {{ ref('stg_securities') }}
),

members as (
    select
        returns.symbol,
        returns.date,
        returns.ret_1d,
        securities.sector,
        securities.industry
    from returns
    inner join securities on returns.symbol = securities.symbol
),

{%- set by_sector = '(partition by date, sector order by symbol rows between unbounded preceding and unbounded following)' %}
{%- set by_industry = '(partition by date, industry order by symbol rows between unbounded preceding and unbounded following)' %}
{%- set by_date = '(partition by date order by symbol rows between unbounded preceding and unbounded following)' %}

member_totals as (
    -- whole-partition sums in a fixed (symbol) order: identical bits whatever the input order
    select
        date,
        sector,
        industry,
        sum(ret_1d) over {{ by_sector }} as sector_sum,
        count(ret_1d) over {{ by_sector }} as sector_count,
        sum(ret_1d) over {{ by_industry }} as industry_sum,
        count(ret_1d) over {{ by_industry }} as industry_count,
        sum(ret_1d) over {{ by_date }} as market_sum,
        count(ret_1d) over {{ by_date }} as market_count
    from members
),

member_series as (
    select distinct date, 'sector' as series, sector as key, sector_sum as member_sum, sector_count as member_count
    from member_totals
    where sector is not null
    union all
    select distinct date, 'industry' as series, industry as key, industry_sum, industry_count
    from member_totals
    where industry is not null
    union all
    select distinct date, 'market' as series, 'all' as key, market_sum, market_count
    from member_totals
),

{% if has_raw('etf_prices') %}
etf_prices as (
    select * from {{ ref('stg_etf_prices') }}
),

etf_series as (
    select
        date,
        'etf' as series,
        etf as key,
        {{ simple_return('close', 'lag(close) over (partition by etf order by date)') }} as ret_1d,
        cast(null as double) as member_sum,
        cast(null as bigint) as member_count
    from etf_prices
),
{% endif %}

series as (
    select date, series, key, member_sum / member_count as ret_1d, member_sum, member_count
    from member_series
    {% if has_raw('etf_prices') -%}
    union all
    select * from etf_series where ret_1d is not null
    {%- endif %}
),

windowed as (
    select
        date,
        series,
        key,
        ret_1d,
        member_sum,
        member_count,
        {{ rolling_compound('ret_1d', 21, partition_by='series, key') }} as ret_21d,
        {{ rolling_compound('ret_1d', 126, partition_by='series, key') }} as ret_126d,
        {{ rolling_compound('ret_1d', 231, offset=21, partition_by='series, key') }} as mom_12_1
    from series
)

select * from windowed
