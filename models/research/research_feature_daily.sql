-- One row per (view, feature, research date): the feature's rank IC against every label, the decile
-- spread of every label (mean label of the top decile minus the bottom decile's), how many names hold
-- the feature and what share of the date's labelled names that is, its rank autocorrelation with the
-- previous research date, and the share of the top and bottom deciles that changed since then.

with ranks as (
    select * from {{ ref('int_feature_ranks_computed') }}
),

dates as (
    select date, prev_date from {{ ref('int_research_dates_sampled') }}
),

labelled_names as (
    select date, count(*) as n_labelled
    from {{ ref('int_label_ranks_computed') }}
    group by date
),

joined as (
    select
        ranks.*,
        previous.rank_pct as prev_rank_pct,
        previous.decile as prev_decile,
        {%- for label, h, neutral in research_labels() %}
        labels.{{ label }},
        labels.{{ label }}_rank{{ ',' if not loop.last }}
        {%- endfor %}
    from ranks
    inner join dates using (date)
    left join {{ ref('int_label_ranks_computed') }} as labels using (date, symbol)
    left join ranks as previous
        on previous.view_name = ranks.view_name
        and previous.feature = ranks.feature
        and previous.symbol = ranks.symbol
        and previous.date = dates.prev_date
)

select
    view_name,
    feature,
    date,
    count(*) as n_names,
    count(*) / any_value(labelled_names.n_labelled) as coverage,
    {%- for label, h, neutral in research_labels() %}
    {{ rank_ic('rank_pct', label ~ '_rank') }} as ic_{{ label }},
    avg({{ label }}) filter (where decile = 9) - avg({{ label }}) filter (where decile = 0) as spread_{{ label }},
    {%- endfor %}
    {{ rank_ic('rank_pct', 'prev_rank_pct') }} as rank_autocorr,
    case when count(prev_decile) filter (where decile = 9) > 0 then
        count(*) filter (where decile = 9 and prev_decile is distinct from 9)
        / count(*) filter (where decile = 9) end as top_turnover,
    case when count(prev_decile) filter (where decile = 0) > 0 then
        count(*) filter (where decile = 0 and prev_decile is distinct from 0)
        / count(*) filter (where decile = 0) end as bottom_turnover
from joined
left join labelled_names using (date)
group by view_name, feature, date
