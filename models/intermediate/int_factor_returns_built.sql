-- Daily market, size and value factor returns built from the panel.
--   market: the market ETF (per date, else the equal-weighted average of all names)
--   size (small minus big): bottom minus top tercile by the previous day's market cap
--       (close x shares_outstanding as-of report_date) when fundamentals exist, else by 63-day average
--       dollar volume
--   value (high minus low): top minus bottom tercile by the previous day's book/price; NULL without
--       fundamentals
-- Legs are equal-weighted; a factor needs at least 2 names per leg that day.

{%- set market_series, market_key = market_benchmark() %}

with returns as (
    select symbol, date, close, ret_1d, dollar_volume
    from {{ ref('int_returns_computed') }}
),

benchmarks as (
    select date, series, key, ret_1d
    from {{ ref('int_benchmark_returns_aggregated') }}
),

market as (
    -- the market ETF when it has the day, else the average of all names (as in int_returns_benchmarked)
    select
        members.date,
        coalesce(etf.ret_1d, members.ret_1d) as market_ret
    from benchmarks as members
    left join benchmarks as etf
        on etf.series = '{{ market_series }}' and etf.key = '{{ market_key }}' and etf.date = members.date
    where members.series = 'market' and members.key = 'all'
),

{% if has_raw('fundamentals') %}
fundamentals as (
    select symbol, date, shares_outstanding, book_equity
    from {{ ref('int_fundamentals_asof_joined') }}
),
{% endif %}

characteristics as (
    select
        returns.symbol,
        returns.date,
        returns.ret_1d,
        {% if has_raw('fundamentals') -%}
        case when fundamentals.shares_outstanding > 0
            then returns.close * fundamentals.shares_outstanding end as size,
        {{ safe_divide('fundamentals.book_equity', 'returns.close * fundamentals.shares_outstanding') }}
            as book_to_price
        {%- else -%}
        {{ rolling('avg', 'returns.dollar_volume', 63, min_periods=21) }} as size,
        cast(null as double) as book_to_price
        {%- endif %}
    from returns
    {% if has_raw('fundamentals') -%}
    left join fundamentals on fundamentals.symbol = returns.symbol and fundamentals.date = returns.date
    {%- endif %}
),

formed as (
    -- sort on what was known at the previous close
    select
        symbol,
        date,
        ret_1d,
        lag(size) over (partition by symbol order by date) as size_prev,
        lag(book_to_price) over (partition by symbol order by date) as book_to_price_prev
    from characteristics
),

size_sorted as (
    select
        date,
        symbol,
        ret_1d,
        ntile(3) over (partition by date order by size_prev, symbol) as bucket
    from formed
    where ret_1d is not null and size_prev > 0
),

value_sorted as (
    select
        date,
        symbol,
        ret_1d,
        ntile(3) over (partition by date order by book_to_price_prev, symbol) as bucket
    from formed
    where ret_1d is not null and book_to_price_prev is not null
),

size_factor as (
    {{ tercile_spread('size_sorted', long_bucket=1, short_bucket=3, column='smb_ret') }}
),

value_factor as (
    {{ tercile_spread('value_sorted', long_bucket=3, short_bucket=1, column='hml_ret') }}
),

factors as (
    select
        market.date,
        market.market_ret as mkt_ret,
        size_factor.smb_ret,
        value_factor.hml_ret
    from market
    left join size_factor on size_factor.date = market.date
    left join value_factor on value_factor.date = market.date
)

select * from factors
