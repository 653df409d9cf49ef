-- The dates the research marts score: every `research_stride`-th trading date of the labels' calendar,
-- counted from its first date (so a later build keeps the earlier dates), with the sampled date before
-- each, its year and the market's volatility state known at that date. Scoring every 5th date of a
-- 5-day label keeps the primary label's windows from overlapping and the marts cheap at 800 names.
--
-- Volatility state: the market return's trailing `research_vol_window`-day standard deviation against
-- the median of that same series over all earlier dates (an expanding, point-in-time median):
-- `stressed` above it, `calm` at or below, `unknown` during the warm-up.

{%- set stride = var('research_stride') %}

with calendar as (
    select distinct date from {{ ref('labels') }}
),

market as (
    select date, any_value(market_ret) as market_ret
    from {{ ref('int_returns_benchmarked') }}
    group by date
),

volatility as (
    select
        calendar.date,
        case when count(market.market_ret) over vol_window = {{ var('research_vol_window') }}
            then stddev_samp(market.market_ret) over vol_window end as market_vol
    from calendar
    left join market using (date)
    window vol_window as (order by calendar.date rows between {{ var('research_vol_window') - 1 }} preceding and current row)
),

states as (
    select
        date,
        market_vol,
        median(market_vol) over (order by date rows between unbounded preceding and 1 preceding) as past_median_vol
    from volatility
),

numbered as (
    select *, row_number() over (order by date) - 1 as day_number
    from states
)

select
    date,
    lag(date) over (order by date) as prev_date,
    year(date) as year,
    case
        when market_vol is null or past_median_vol is null then 'unknown'
        when market_vol > past_median_vol then 'stressed'
        else 'calm'
    end as vol_state
from numbered
where day_number % {{ stride }} = 0
order by date
