-- labels: forward returns from the close of t to the close of t+h (h = 1, 5, 21 trading days), raw and
-- sector-neutral (minus the stock's sector benchmark compounded over the same days, the benchmark of
-- int_returns_benchmarked: sector ETF, else sector peers, else market). The only model allowed to look
-- forward: every `lead` and `following` window of the project lives here.

{%- set horizons = var('label_horizons') %}

with returns as (
    select symbol, date, close, sector_ret
    from {{ ref('int_returns_benchmarked') }}
),

forward as (
    select
        symbol,
        date,
        {%- for h in horizons %}
        {%- set ahead = '(partition by symbol order by date rows between 1 following and ' ~ h ~ ' following)' %}
        {{ simple_return('lead(close, ' ~ h ~ ') over (partition by symbol order by date)', 'close') }}
            as fwd_ret_{{ h }}d,
        case when count(sector_ret) over {{ ahead }} = {{ h }}
            then product(1 + sector_ret) over {{ ahead }} - 1 end as sector_fwd_ret_{{ h }}d
        {{- ',' if not loop.last }}
        {%- endfor %}
    from returns
),

labelled as (
    select
        symbol,
        date,
        {%- for h in horizons %}
        fwd_ret_{{ h }}d,
        {%- endfor %}
        {%- for h in horizons %}
        fwd_ret_{{ h }}d - sector_fwd_ret_{{ h }}d as fwd_ret_sn_{{ h }}d{{ ',' if not loop.last }}
        {%- endfor %}
    from forward
)

select * from labelled
order by date, symbol
