-- The labels on the research dates, each with its cross-sectional percentile rank (rank_pct) among the
-- names holding it that date: ranked once here, read by every feature's IC.

with labels as (
    select labels.*
    from {{ ref('labels') }} as labels
    inner join {{ ref('int_research_dates_sampled') }} using (date)
)

select
    date,
    symbol,
    {%- for label, h, neutral in research_labels() %}
    {{ label }},
    {{ rank_pct(label, 'date') }} as {{ label }}_rank{{ ',' if not loop.last }}
    {%- endfor %}
from labels
