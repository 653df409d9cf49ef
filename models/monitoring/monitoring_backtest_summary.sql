-- monitoring_backtest_summary: the cost-aware policy's backtest by calendar month. Returns compound
-- within the month; the NAV and its drawdown are rebuilt from the daily net returns, so this needs
-- nothing of ml.backtest_daily but its return, cost, exposure and turnover columns.

with daily as (
    select
        cast(date as date) as date,
        gross_return,
        net_return,
        cost,
        turnover,
        gross_exposure,
        net_exposure
    from {{ source('ml', 'backtest_daily') }}
),

with_nav as (
    select
        *,
        exp(sum(ln(1 + net_return)) over (order by date rows between unbounded preceding and current row)) as nav
    from daily
),

with_drawdown as (
    select
        *,
        nav / max(nav) over (order by date rows between unbounded preceding and current row) - 1 as drawdown
    from with_nav
),

monthly as (
    select
        cast(date_trunc('month', date) as date) as month,
        count(*) as n_days,
        product(1 + gross_return) - 1 as gross_return,
        product(1 + net_return) - 1 as net_return,
        sum(cost) as cost,
        avg(gross_return) / nullif(stddev_samp(gross_return), 0) * sqrt(252) as sharpe_gross_annualized,
        avg(net_return) / nullif(stddev_samp(net_return), 0) * sqrt(252) as sharpe_net_annualized,
        sum(turnover) as turnover,
        avg(gross_exposure) as avg_gross_exposure,
        avg(net_exposure) as avg_net_exposure,
        arg_max(nav, date) as nav_end,
        min(drawdown) as max_drawdown
    from with_drawdown
    group by 1
)

select * from monthly
order by month
