-- Every feature of every view (the dbt var `feature_views`, which the runner fills with the views it
-- built), in long form on the research dates: one row per (view, feature, date, symbol) holding a value,
-- with its cross-sectional percentile rank and decile (0 = lowest, 9 = highest). UNPIVOT reads the
-- views' columns when the model runs, so a column added to a view needs no edit here.

{%- set views = var('feature_views') %}

with unpivoted as (
    {%- for view in views %}
    select '{{ view }}' as view_name, feature, date, symbol, value
    from (
        unpivot (
            select date, symbol, try_cast(columns(lambda c: c not in ('date', 'symbol')) as double)
            from {{ ref(view) }}
            where date in (select date from {{ ref('int_research_dates_sampled') }})
        )
        on columns(lambda c: c not in ('date', 'symbol'))
        into name feature value value
    )
    where isfinite(value)
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- if not views %}
    select null::varchar as view_name, null::varchar as feature, null::date as date, null::varchar as symbol,
           null::double as value
    where false
    {%- endif %}
),

ranked as (
    select
        view_name,
        feature,
        date,
        symbol,
        {{ rank_pct('value', 'view_name, feature, date') }} as rank_pct
    from unpivoted
)

select *, least(9, floor(rank_pct * 10))::integer as decile
from ranked
