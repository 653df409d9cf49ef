-- One row per (view, feature): the feature's rank IC against the primary label (`research_primary_label`)
-- as it stands, and after neutralizing it to the baseline view (`research_baseline_view`, the commodity
-- price_momentum view; int_feature_ranks_neutralized). orthogonal_share is the neutralized IC over the
-- raw one: near 1, the feature says something the baseline does not; near 0, it restates the baseline.
-- The baseline's own features have is_baseline = true and no neutralized IC.

{%- set primary = var('research_primary_label') %}
{%- set stride = var('research_stride') %}
{%- set horizon = namespace(days=none) %}
{%- for label, h, neutral in research_labels() if label == primary %}{% set horizon.days = h %}{% endfor %}

with neutralized as (
    select view_name::varchar as view_name, feature::varchar as feature, date::date as date,
           symbol::varchar as symbol, resid
    from {{ ref('int_feature_ranks_neutralized') }}
),

ranked as (
    select view_name, feature, date, symbol,
        {{ rank_pct('resid', 'view_name, feature, date') }} as resid_rank
    from neutralized
),

daily as (
    select view_name, feature, date,
        {{ rank_ic('resid_rank', 'labels.' ~ primary ~ '_rank') }} as ic,
        {{ horizon.days }} as horizon
    from ranked
    inner join {{ ref('int_label_ranks_computed') }} as labels using (date, symbol)
    group by view_name, feature, date
),

orthogonal as (
    {{ newey_west_summary('daily', ['view_name', 'feature'], 'ic', 'date',
                          'ceil(horizon / ' ~ stride ~ ')::integer',
                          ((var('label_horizons') | max) / stride) | round(0, 'ceil') | int) }}
),

raw as (
    select view_name, feature, mean_ic, ic_t
    from {{ ref('research_feature_summary') }}
    where label = '{{ primary }}'
)

select
    raw.view_name,
    raw.feature,
    '{{ primary }}' as label,
    raw.view_name = '{{ var('research_baseline_view') }}' as is_baseline,
    raw.mean_ic,
    raw.ic_t,
    orthogonal.mean as orthogonal_ic,
    orthogonal.nw_t as orthogonal_ic_t,
    orthogonal.mean / nullif(raw.mean_ic, 0) as orthogonal_share
from raw
left join orthogonal using (view_name, feature)
order by raw.view_name, raw.feature
