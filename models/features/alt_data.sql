{{ config(tags=['needs:etf_flows', 'needs:short_interest', 'needs:options_iv', 'needs:insider_trades', 'needs:estimates']) }}

-- alt_data: sector-ETF flow pressure, short interest (as-of publish_date), call-put implied-volatility
-- spread, insider buying (as-of filing_date) and analyst sentiment change (as-of as_of_date).
-- Trailing counts over calendar windows are differences of two as-of lookups into running totals.
-- Event families (macros/feature_families.sql): insider filings (net count and net shares, the latter
-- over the name's ADV) and short-interest publications (the change in shares short), summed in event
-- time with half-lives of var('event_half_lives') calendar days from the filing or publication date.

{%- set half_lives = var('event_half_lives') %}

with panel as (
    select
        symbol,
        date,
        {{ rolling('avg', 'volume', 63, min_periods=21) }} as avg_volume_63d
    from {{ ref('int_returns_computed') }}
),

securities as (
    select symbol, etf from {{ ref('stg_securities') }}
),

etf_flows as (
    select * from {{ ref('int_etf_flows_scaled') }}
),

short_interest as (
    select * from {{ ref('int_short_interest_enriched') }}
),

options_iv as (
    select
        symbol,
        date,
        iv_call_30d - iv_put_30d as cp_iv_spread,
        iv_call_30d - iv_put_30d
            - lag(iv_call_30d - iv_put_30d, 5) over (partition by symbol order by date) as cp_iv_spread_chg_5d
    from {{ ref('stg_options_iv') }}
),

insider as (
    select * from {{ ref('int_insider_trades_accumulated') }}
),

insider_events as (
    -- one row per (symbol, filing date): the day's net count and net shares, from the running totals
    select
        symbol,
        filing_date as event_date,
        (cum_buys - cum_sells) - coalesce(lag(cum_buys - cum_sells) over by_filing, 0) as net_buys,
        (cum_buy_shares - cum_sell_shares) - coalesce(lag(cum_buy_shares - cum_sell_shares) over by_filing, 0)
            as net_shares
    from insider
    window by_filing as (partition by symbol order by filing_date)
),

short_events as (
    select symbol, publish_date as event_date, short_interest_change
    from short_interest
),

{{ decayed_event_ctes('insider_decay', 'insider_events', ['net_buys', 'net_shares'], half_lives) }},

{{ decayed_event_ctes('short_decay', 'short_events', ['short_interest_change'], half_lives) }},

revisions as (
    select * from {{ ref('int_estimate_revisions_accumulated') }}
),

joined as (
    select
        panel.symbol,
        panel.date,
        panel.avg_volume_63d,
        etf_flows.flow_pressure_5d,
        etf_flows.flow_pressure_21d,
        etf_flows.flow_pressure_63d,
        short_interest.days_to_cover,
        short_interest.short_interest_change,
        options_iv.cp_iv_spread,
        options_iv.cp_iv_spread_chg_5d,
        coalesce(insider_now.cum_buys, 0) - coalesce(insider_30d.cum_buys, 0) as insider_buys_30d,
        coalesce(insider_now.cum_buys, 0) - coalesce(insider_90d.cum_buys, 0) as insider_buys_90d,
        coalesce(insider_now.cum_sells, 0) - coalesce(insider_90d.cum_sells, 0) as insider_sells_90d,
        coalesce(insider_now.cum_buy_shares, 0) - coalesce(insider_90d.cum_buy_shares, 0)
            - coalesce(insider_now.cum_sell_shares, 0) + coalesce(insider_90d.cum_sell_shares, 0)
            as insider_net_shares_90d,
        coalesce(revisions_now.cum_up, 0) - coalesce(revisions_90d.cum_up, 0) as revisions_up_90d,
        coalesce(revisions_now.cum_down, 0) - coalesce(revisions_90d.cum_down, 0) as revisions_down_90d,
        coalesce(revisions_now.cum_revisions, 0) - coalesce(revisions_90d.cum_revisions, 0) as revisions_90d,
        revisions_now.eps_std_front as eps_std_now,
        revisions_90d.eps_std_front as eps_std_90d_ago,
        {{ decayed_event_columns('insider_decay', ['net_buys', 'net_shares'], half_lives, 'panel.date', 'insider') }},
        {{ decayed_event_columns('short_decay', ['short_interest_change'], half_lives, 'panel.date', 'short') }}
    from panel
    left join securities on securities.symbol = panel.symbol
    left join etf_flows on etf_flows.etf = securities.etf and etf_flows.date = panel.date
    left join options_iv on options_iv.symbol = panel.symbol and options_iv.date = panel.date
    {{ asof_left_join('short_interest', 'short_interest', ['panel.symbol'], ['symbol'], 'panel.date', 'publish_date') }}
    {{ asof_left_join('insider', 'insider_now', ['panel.symbol'], ['symbol'], 'panel.date', 'filing_date') }}
    {{ asof_left_join('insider', 'insider_30d', ['panel.symbol'], ['symbol'], 'panel.date - 30', 'filing_date') }}
    {{ asof_left_join('insider', 'insider_90d', ['panel.symbol'], ['symbol'], 'panel.date - 90', 'filing_date') }}
    {{ asof_left_join('revisions', 'revisions_now', ['panel.symbol'], ['symbol'], 'panel.date', 'as_of_date') }}
    {{ asof_left_join('revisions', 'revisions_90d', ['panel.symbol'], ['symbol'], 'panel.date - 90', 'as_of_date') }}
    {{ decayed_event_joins('insider_decay', 'panel.symbol', 'panel.date', half_lives) }}
    {{ decayed_event_joins('short_decay', 'panel.symbol', 'panel.date', half_lives) }}
),

features as (
    select
        symbol,
        date,
        flow_pressure_5d as etf_flow_pressure_5d,
        flow_pressure_21d as etf_flow_pressure_21d,
        flow_pressure_63d as etf_flow_pressure_63d,
        short_interest_change,
        days_to_cover as short_days_to_cover,
        cp_iv_spread,
        cp_iv_spread_chg_5d,
        cast(insider_buys_30d as bigint) as insider_buys_30d,
        cast(insider_buys_90d as bigint) as insider_buys_90d,
        {{ safe_divide('insider_net_shares_90d', 'avg_volume_63d') }} as insider_net_shares_90d_adv,
        cast(case when insider_buys_30d >= {{ var('insider_cluster_min_buys') }} then 1 else 0 end as integer)
            as insider_cluster_buy,
        {{ safe_divide('insider_buys_90d - insider_sells_90d', 'insider_buys_90d + insider_sells_90d') }}
            as insider_net_buy_ratio_90d,
        {{ safe_divide('revisions_up_90d - revisions_down_90d', 'revisions_90d') }} as revision_breadth_90d,
        {{ safe_ln(safe_divide('eps_std_now', 'eps_std_90d_ago')) }} as analyst_dispersion_change_90d,
        {%- for h in half_lives %}
        insider_net_buys_hl{{ h }},
        {{ safe_divide('insider_net_shares_hl' ~ h, 'avg_volume_63d') }} as insider_net_shares_adv_hl{{ h }},
        {%- endfor %}
        {%- for c in decayed_event_names(['short_interest_change'], half_lives, 'short') %}
        {{ c }}{{ ',' if not loop.last }}
        {%- endfor %}
    from joined
)

select * from features
order by date, symbol
