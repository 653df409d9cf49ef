-- One row per (view, feature, label, split, period): the feature's mean rank IC within each calendar year
-- (split = 'year') and within each market volatility state known at the date (split = 'vol_state':
-- calm / stressed, int_research_dates_sampled), so an edge that lives in one year or one regime shows.

with daily as (
    select daily.*, dates.year, dates.vol_state
    from {{ ref('research_feature_daily') }} as daily
    inner join {{ ref('int_research_dates_sampled') }} as dates using (date)
),

long_ic as (
    {%- for label, h, neutral in research_labels() %}
    select view_name, feature, '{{ label }}' as label, year::varchar as year, vol_state, ic_{{ label }} as ic
    from daily
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

splits as (
    select view_name, feature, label, 'year' as split, year as period, ic from long_ic
    union all
    select view_name, feature, label, 'vol_state' as split, vol_state as period, ic from long_ic
)

select
    view_name,
    feature,
    label,
    split,
    period,
    count(ic) as n_dates,
    avg(ic) as mean_ic,
    stddev_samp(ic) as ic_sd,
    avg((ic > 0)::integer) as hit_rate
from splits
group by view_name, feature, label, split, period
order by view_name, feature, label, split, period
