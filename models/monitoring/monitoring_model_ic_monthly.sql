-- monitoring_model_ic_monthly: the monthly out-of-sample rank IC of every model in ml.predictions
-- against the forward 5-day sector-neutral return of the labels mart. Daily IC = Spearman correlation
-- across names (average ranks for ties, dates with at least `monitoring_min_names` names), averaged
-- per calendar month. A month is complete once every prediction date in it has a realized label.

{%- set label = var('monitoring_label', 'fwd_ret_sn_5d') %}
{%- set min_names = var('monitoring_min_names', 10) %}

with predictions as (
    select cast(date as date) as date, symbol, model_id, score
    from {{ source('ml', 'predictions') }}
),

labels as (
    select cast(date as date) as date, symbol, {{ label }} as label
    from {{ ref('labels') }}
),

scored as (
    select
        predictions.model_id,
        predictions.date,
        predictions.score,
        labels.label
    from predictions
    inner join labels
        on predictions.date = labels.date
        and predictions.symbol = labels.symbol
    where predictions.score is not null
      and labels.label is not null
      and isfinite(predictions.score)
      and isfinite(labels.label)
),

ranked as (
    select
        model_id,
        date,
        (rank() over (partition by model_id, date order by score)
         + count(*) over (partition by model_id, date) + 1
         - rank() over (partition by model_id, date order by score desc)) / 2.0 as score_rank,
        (rank() over (partition by model_id, date order by label)
         + count(*) over (partition by model_id, date) + 1
         - rank() over (partition by model_id, date order by label desc)) / 2.0 as label_rank
    from scored
),

daily_ic as (
    select
        model_id,
        date,
        corr(score_rank, label_rank) as ic,
        count(*) as n_names
    from ranked
    group by model_id, date
    having count(*) >= {{ min_names }} and isfinite(corr(score_rank, label_rank))
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
        count(distinct date) as n_labelled_days
    from scored
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
