-- One row per feature view: how many features it has, how many rank the primary label with a Newey-West
-- |t| of at least 2, its best feature, the mean |IC|, how much of that survives neutralizing to the
-- baseline view (orthogonal_share: sum of |neutralized IC| over sum of |IC|, its non-baseline features),
-- and how correlated its features are with each other and with the other views' features.

with features as (
    select * from {{ ref('research_feature_orthogonality') }}
),

best as (
    select view_name, arg_max(feature, abs(ic_t)) as best_feature, arg_max(mean_ic, abs(ic_t)) as best_ic,
           max(abs(ic_t)) as best_ic_t
    from features
    where ic_t is not null
    group by view_name
),

correlation as (
    select
        view_a as view_name,
        avg(abs(corr)) filter (where same_view) as mean_abs_corr_within,
        avg(abs(corr)) filter (where not same_view) as mean_abs_corr_across,
        max(abs(corr)) filter (where view_b = '{{ var('research_baseline_view') }}' and not same_view)
            as max_abs_corr_baseline
    from {{ ref('research_feature_correlation') }}
    group by view_a
)

select
    features.view_name,
    count(*) as n_features,
    count(*) filter (where abs(ic_t) >= 2) as n_significant,
    avg(abs(mean_ic)) as mean_abs_ic,
    any_value(best.best_feature) as best_feature,
    any_value(best.best_ic) as best_ic,
    any_value(best.best_ic_t) as best_ic_t,
    bool_or(is_baseline) as is_baseline,
    avg(abs(orthogonal_ic)) as mean_abs_orthogonal_ic,
    sum(abs(orthogonal_ic)) / nullif(sum(abs(mean_ic)) filter (where orthogonal_ic is not null), 0)
        as orthogonal_share,
    any_value(correlation.mean_abs_corr_within) as mean_abs_corr_within,
    any_value(correlation.mean_abs_corr_across) as mean_abs_corr_across,
    any_value(correlation.max_abs_corr_baseline) as max_abs_corr_baseline
from features
left join best using (view_name)
left join correlation using (view_name)
group by features.view_name
order by features.view_name
