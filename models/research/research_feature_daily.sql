-- One row per (view, feature, research date): the feature's rank IC against every label, the decile
-- spread of every label (mean label of the top decile minus the bottom decile's), how many names hold
-- the feature and what share of the date's labelled names that is, its rank autocorrelation with the
-- previous research date, and the share of the top and bottom deciles that changed since then (those
-- two from int_feature_persistence_computed).

with ranks as (
    select * from {{ ref('int_feature_ranks_computed') }}
),

labelled_names as (
    select date, count(*) as n_labelled
    from {{ ref('int_label_ranks_computed') }}
    group by date
),

persistence as (
    select view_name, feature, date::date as date, rank_autocorr, top_turnover, bottom_turnover
    from {{ ref('int_feature_persistence_computed') }}
),

joined as (
    select
        ranks.*,
        {%- for label, h, neutral in research_labels() %}
        labels.{{ label }},
        labels.{{ label }}_rank{{ ',' if not loop.last }}
        {%- endfor %}
    from ranks
    left join {{ ref('int_label_ranks_computed') }} as labels using (date, symbol)
),

per_date as (
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
        any_value(labelled_names.n_labelled) as n_labelled
    from joined
    left join labelled_names using (date)
    group by view_name, feature, date
)

select
    per_date.* exclude (n_labelled),
    persistence.rank_autocorr,
    persistence.top_turnover,
    persistence.bottom_turnover
from per_date
left join persistence using (view_name, feature, date)
