-- monitoring_model_ic_monthly: the monthly out-of-sample rank IC of every model in ml.predictions
-- against the forward sector-neutral return it was trained on (the registry's target label: a 21-day
-- model against 21-day returns; `monitoring_label`, the 5-day one, when the registry has none), as the
-- lifecycle judges it. The daily ICs are the lifecycle's own (ml.model_ic_daily: the project's one
-- rank-IC definition, ml.metrics.daily_rank_ic, on dates with enough names), averaged per calendar
-- month here; nothing is ranked twice. A month is complete once every prediction date in it has a
-- realized label.

{%- set label = var('monitoring_label', 'fwd_ret_sn_5d') %}

with predictions as (
    select cast(date as date) as date, symbol, model_id, score
    from {{ source('ml', 'predictions') }}
),

model_labels as (
    select model_id, coalesce(json_extract_string(target, '$.label'), '{{ label }}') as label_name
    from {{ source('ml', 'model_registry') }}
),

labels as (
    unpivot (
        select cast(date as date) as date, symbol, columns('^fwd_ret_sn_\d+d$')
        from {{ ref('labels') }}
    )
    on columns('^fwd_ret_sn_\d+d$')
    into name label_name value label
),

predicted as (
    select
        predictions.*,
        coalesce(model_labels.label_name, '{{ label }}') as label_name
    from predictions
    left join model_labels
        on predictions.model_id = model_labels.model_id
),

scored_days as (
    select
        predicted.model_id,
        predicted.date,
        count(*) as n_names
    from predicted
    inner join labels
        on predicted.date = labels.date
        and predicted.symbol = labels.symbol
        and predicted.label_name = labels.label_name
    where predicted.score is not null
      and labels.label is not null
      and isfinite(predicted.score)
      and isfinite(labels.label)
    group by 1, 2
),

daily_ic as (
    select
        model_ic.model_id,
        cast(model_ic.date as date) as date,
        model_ic.ic,
        scored_days.n_names
    from {{ source('ml', 'model_ic_daily') }} as model_ic
    inner join scored_days
        on model_ic.model_id = scored_days.model_id
        and cast(model_ic.date as date) = scored_days.date
    where isfinite(model_ic.ic)
),

prediction_months as (
    select
        model_id,
        cast(date_trunc('month', date) as date) as month,
        count(distinct date) as n_prediction_days
    from predictions
    group by 1, 2
),

labelled_months as (
    select
        model_id,
        cast(date_trunc('month', date) as date) as month,
        count(*) as n_labelled_days
    from scored_days
    group by 1, 2
),

monthly as (
    select
        model_id,
        cast(date_trunc('month', date) as date) as month,
        count(*) as n_days,
        avg(ic) as ic_mean,
        stddev_samp(ic) as ic_sd,
        avg(case when ic > 0 then 1.0 else 0.0 end) as hit_rate,
        avg(n_names) as avg_names
    from daily_ic
    group by 1, 2
),

final as (
    select
        monthly.model_id,
        monthly.month,
        monthly.n_days,
        prediction_months.n_prediction_days,
        coalesce(labelled_months.n_labelled_days, 0) = prediction_months.n_prediction_days as is_complete,
        monthly.ic_mean,
        monthly.ic_sd,
        monthly.ic_mean / nullif(monthly.ic_sd, 0) as daily_icir,
        monthly.hit_rate,
        monthly.avg_names
    from monthly
    inner join prediction_months
        on monthly.model_id = prediction_months.model_id
        and monthly.month = prediction_months.month
    left join labelled_months
        on monthly.model_id = labelled_months.model_id
        and monthly.month = labelled_months.month
)

select * from final
order by model_id, month
