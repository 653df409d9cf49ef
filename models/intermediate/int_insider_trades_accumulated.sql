{{ config(tags=['needs:insider_trades']) }}

-- Running totals of insider filings per symbol, by filing_date (the day they became public):
-- trailing counts over any window are differences of two as-of lookups into these totals.

with trades as (
    select * from {{ ref('stg_insider_trades') }}
),

daily as (
    -- float sums in a fixed order, so a day's totals are the same bits on every run
    select
        symbol,
        filing_date,
        count(*) filter (where side = 'B') as n_buys,
        count(*) filter (where side = 'S') as n_sells,
        coalesce(sum(shares order by trade_date, shares) filter (where side = 'B'), 0) as buy_shares,
        coalesce(sum(shares order by trade_date, shares) filter (where side = 'S'), 0) as sell_shares
    from trades
    group by symbol, filing_date
),

accumulated as (
    select
        symbol,
        filing_date,
        sum(n_buys) over to_date as cum_buys,
        sum(n_sells) over to_date as cum_sells,
        sum(buy_shares) over to_date as cum_buy_shares,
        sum(sell_shares) over to_date as cum_sell_shares
    from daily
    window to_date as (partition by symbol order by filing_date rows between unbounded preceding and current row)
)

select * from accumulated
