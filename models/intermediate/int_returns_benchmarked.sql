-- Each stock's daily return beside its benchmarks of the same date:
--   sector: its sector ETF when etf_prices has it that day, else the average of its sector peers
--       (the other members; leaving the stock out keeps small sectors meaningful), else the market
--   market: the market ETF when etf_prices has it that day, else the average of all names
--   industry: 12-1 momentum of its industry (members)
-- Each fallback is per date, so it only ever uses that day's data.

{%- set market_series, market_key = market_benchmark() %}

with returns as (
    select symbol, date, close, ret_1d
    from {{ ref('int_returns_computed') }}
),

securities as (
    select symbol, sector, industry, etf from {{ ref('stg_securities') }}
),

benchmarks as (
    select * from {{ ref('int_benchmark_returns_aggregated') }}
),

joined as (
    select
        returns.symbol,
        returns.date,
        returns.close,
        returns.ret_1d,
        case
            when returns.ret_1d is null then peers.member_sum / peers.member_count
            when peers.member_count > 1 then (peers.member_sum - returns.ret_1d) / (peers.member_count - 1)
        end as peers_ret,
        peers.ret_21d as members_sector_ret_21d,
        peers.ret_126d as members_sector_ret_126d,
        members_market.ret_1d as members_market_ret,
        members_market.ret_21d as members_market_ret_21d,
        {% if has_raw('etf_prices') -%}
        etf_sector.ret_1d as etf_sector_ret,
        etf_sector.ret_21d as etf_sector_ret_21d,
        etf_sector.ret_126d as etf_sector_ret_126d,
        etf_market.ret_1d as etf_market_ret,
        etf_market.ret_21d as etf_market_ret_21d,
        {%- else -%}
        cast(null as double) as etf_sector_ret,
        cast(null as double) as etf_sector_ret_21d,
        cast(null as double) as etf_sector_ret_126d,
        cast(null as double) as etf_market_ret,
        cast(null as double) as etf_market_ret_21d,
        {%- endif %}
        industry.mom_12_1 as industry_mom_12_1
    from returns
    left join securities on securities.symbol = returns.symbol
    left join benchmarks as peers
        on peers.series = 'sector' and peers.key = securities.sector and peers.date = returns.date
    left join benchmarks as members_market
        on members_market.series = 'market' and members_market.key = 'all' and members_market.date = returns.date
    left join benchmarks as industry
        on industry.series = 'industry' and industry.key = securities.industry and industry.date = returns.date
    {% if has_raw('etf_prices') -%}
    left join benchmarks as etf_sector
        on etf_sector.series = 'etf' and etf_sector.key = securities.etf and etf_sector.date = returns.date
    left join benchmarks as etf_market
        on etf_market.series = '{{ market_series }}' and etf_market.key = '{{ market_key }}'
        and etf_market.date = returns.date
    {%- endif %}
),

benchmarked as (
    select
        symbol,
        date,
        close,
        ret_1d,
        coalesce(etf_sector_ret, peers_ret, etf_market_ret, members_market_ret) as sector_ret,
        coalesce(etf_market_ret, members_market_ret) as market_ret,
        coalesce(etf_sector_ret_21d, members_sector_ret_21d) as sector_ret_21d,
        coalesce(etf_sector_ret_126d, members_sector_ret_126d) as sector_ret_126d,
        coalesce(etf_market_ret_21d, members_market_ret_21d) as market_ret_21d,
        industry_mom_12_1
    from joined
)

select * from benchmarked
