-- monitoring_model_status: one row per model with its registry record, its lifecycle status and
-- ensemble weight multiplier on the latest date, the last lifecycle event and why, and the latest
-- known monthly IC with its trailing ICIR. Models the lifecycle tracks but the registry does not
-- (e.g. registered elsewhere) still appear, with NULL registry columns.

with registry as (
    select
        model_id,
        family,
        view,
        status as registry_status,
        cast(oos_start as date) as oos_start,
        cast(oos_end as date) as oos_end,
        updated_at as registry_updated_at
    from {{ source('ml', 'model_registry') }}
),

status_daily as (
    select cast(date as date) as date, model_id, generation, status, multiplier
    from {{ source('ml', 'model_status_daily') }}
),

events as (
    select cast(date as date) as date, model_id, generation, event, rule, reason, event_seq
    from {{ source('ml', 'lifecycle_events') }}
),

metrics_monthly as (
    select cast(month as date) as month, model_id, ic, trailing_icir, negative_run, known_at
    from {{ source('ml', 'model_metrics_monthly') }}
),

latest_status as (
    select
        model_id,
        date as status_date,
        generation,
        status as lifecycle_status,
        multiplier
    from status_daily
    where date = (select max(date) from status_daily)
),

last_event as (
    select
        model_id,
        date as last_event_date,
        event as last_event,
        rule as last_event_rule,
        reason as last_event_reason
    from events
    qualify row_number() over (partition by model_id order by date desc, event_seq desc) = 1
),

-- a retired model stays retired; its spec's retrained successor is the next generation
retirement as (
    select model_id, generation, min(date) as retired_on
    from events
    where event = 'retired'
    group by model_id, generation
),

retirements as (
    select model_id, count(*) as n_retirements
    from events
    where event = 'retired'
    group by model_id
),

latest_month as (
    select
        model_id,
        month as last_known_month,
        ic as last_monthly_ic,
        trailing_icir,
        negative_run as negative_months
    from metrics_monthly
    where known_at is not null
    qualify row_number() over (partition by model_id order by month desc) = 1
),

models as (
    select model_id from registry
    union
    select model_id from latest_status
),

final as (
    select
        models.model_id,
        registry.family,
        registry.view,
        registry.registry_status,
        latest_status.lifecycle_status,
        latest_status.generation,
        coalesce(latest_status.multiplier, 0) as multiplier,
        latest_status.status_date,
        retirement.retired_on,
        coalesce(retirements.n_retirements, 0) as n_retirements,
        last_event.last_event_date,
        last_event.last_event,
        last_event.last_event_rule,
        last_event.last_event_reason,
        latest_month.last_known_month,
        latest_month.last_monthly_ic,
        latest_month.trailing_icir,
        latest_month.negative_months,
        registry.oos_start,
        registry.oos_end,
        registry.registry_updated_at
    from models
    left join registry on models.model_id = registry.model_id
    left join latest_status on models.model_id = latest_status.model_id
    left join last_event on models.model_id = last_event.model_id
    left join retirement
        on models.model_id = retirement.model_id and latest_status.generation = retirement.generation
    left join retirements on models.model_id = retirements.model_id
    left join latest_month on models.model_id = latest_month.model_id
)

select * from final
order by model_id
