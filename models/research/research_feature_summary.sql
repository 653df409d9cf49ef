-- One row per (view, feature, label): how well the feature ranks that label, over every research date.
-- ic_t is Newey-West's, with ceil(horizon / research_stride) lags, so a 21-day label scored every 5
-- days is not counted as four times the evidence it is. net_spread_ann is the annualized top-minus-
-- bottom decile return of a portfolio rebalanced every research date, less `research_cost_bps` per unit
-- traded on the deciles' measured turnover; it is given for the labels whose horizon equals the stride
-- (their windows tile the calendar), NULL for the others.

{%- set stride = var('research_stride') %}
{%- set labels = research_labels() %}

with daily as (
    select * from {{ ref('research_feature_daily') }}
),

long_ic as (
    {%- for label, h, neutral in labels %}
    select view_name, feature, date, '{{ label }}' as label, {{ h }} as horizon, {{ neutral }} as sector_neutral,
           ic_{{ label }} as ic, spread_{{ label }} as spread,
           spread_{{ label }} - 2 * {{ var('research_cost_bps') }} / 1e4 * (top_turnover + bottom_turnover) as net_spread
    from daily
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

ic_stats as (
    {{ newey_west_summary('long_ic', ['view_name', 'feature', 'label'], 'ic', 'date',
                          'ceil(horizon / ' ~ stride ~ ')::integer', ((var('label_horizons') | max) / stride) | round(0, 'ceil') | int) }}
),

per_label as (
    select
        view_name, feature, label,
        any_value(horizon) as horizon,
        any_value(sector_neutral) as sector_neutral,
        avg((ic > 0)::integer) filter (where ic is not null) as hit_rate,
        avg(spread) * 1e4 as spread_bps,
        case when any_value(horizon) = {{ stride }} then avg(net_spread) * 252 / {{ stride }} end as net_spread_ann
    from long_ic
    group by view_name, feature, label
),

per_feature as (
    select
        view_name, feature,
        avg(n_names) as mean_names,
        avg(coverage) as coverage,
        avg(rank_autocorr) as rank_autocorr,
        avg((top_turnover + bottom_turnover) / 2) as turnover
    from daily
    group by view_name, feature
)

select
    per_label.view_name,
    per_label.feature,
    per_label.label,
    per_label.horizon,
    per_label.sector_neutral,
    coalesce(ic_stats.n, 0) as n_dates,
    ic_stats.mean as mean_ic,
    ic_stats.sd as ic_sd,
    ic_stats.mean / nullif(ic_stats.sd, 0) as icir,
    ic_stats.nw_t as ic_t,
    per_label.hit_rate,
    per_feature.mean_names,
    per_feature.coverage,
    per_feature.rank_autocorr,
    per_feature.turnover,
    per_label.spread_bps,
    per_label.net_spread_ann
from per_label
inner join per_feature using (view_name, feature)
left join ic_stats using (view_name, feature, label)
order by per_label.view_name, per_label.feature, per_label.label
