{{ config(tags=['needs:etf_flows', 'needs:short_interest', 'needs:options_iv', 'needs:insider_trades', 'needs:estimates']) }}

-- alt_data: sector-ETF flow pressure, short interest (as-of publish_date), call-put implied-volatility
-- spread, insider buying (as-of filing_date) and analyst sentiment change (as-of as_of_date).
-- Trailing counts over calendar windows are differences of two as-of lookups into running totals.

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
        revisions_90d.eps_std_front as eps_std_90d_ago
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
        {{ safe_ln(safe_divide('eps_std_now', 'eps_std_90d_ago')) }} as analyst_dispersion_change_90d
    from joined
)

select * from features
order by date, symbol
