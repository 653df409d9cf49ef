-- monitoring_latest_signals_by_sector: today's book at a glance. The calibrated signals of the latest
-- date in ml.signals, summarized per sector (names missing from securities fall under 'Unknown'),
-- with the sector's strongest and weakest name.

with signals as (
    select
        cast(date as date) as date,
        symbol,
        expected_return,
        lower,
        upper,
        uncertainty,
        ensemble_version
    from {{ source('ml', 'signals') }}
),

securities as (
    select symbol, sector
    from {{ ref('stg_securities') }}
),

latest_signals as (
    select *
    from signals
    where date = (select max(date) from signals)
      and expected_return is not null
),

with_sector as (
    select
        latest_signals.*,
        coalesce(securities.sector, 'Unknown') as sector
    from latest_signals
    left join securities
        on latest_signals.symbol = securities.symbol
),

ranked as (
    select
        *,
        row_number() over (partition by sector order by expected_return desc, symbol) as rank_from_top,
        row_number() over (partition by sector order by expected_return asc, symbol) as rank_from_bottom
    from with_sector
),

by_sector as (
    select
        date,
        sector,
        count(*) as n_names,
        avg(expected_return) as mean_expected_return,
        median(expected_return) as median_expected_return,
        avg(case when expected_return > 0 then 1.0 else 0.0 end) as share_positive,
        avg(uncertainty) as mean_uncertainty,
        avg(upper - lower) as mean_interval_width,
        max(case when rank_from_top = 1 then symbol end) as top_symbol,
        max(case when rank_from_top = 1 then expected_return end) as top_expected_return,
        max(case when rank_from_bottom = 1 then symbol end) as bottom_symbol,
        max(case when rank_from_bottom = 1 then expected_return end) as bottom_expected_return,
        min(ensemble_version) as ensemble_version
    from ranked
    group by date, sector
)

select * from by_sector
order by sector
