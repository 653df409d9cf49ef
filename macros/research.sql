{#-
    Feature research (models/research/): the shared definitions every research mart reads.

    A rank IC here is the Pearson correlation, over the names of one date, of two cross-sectional
    percentile ranks (`rank_pct`: average rank of ties, scaled to [0, 1]), each ranked among the names
    that hold the value that date. With full coverage it is exactly the Spearman rank IC of
    ml.metrics.daily_ic; where a feature covers fewer names than the label, the label is ranked over
    all of that date's names rather than re-ranked inside the feature's subset, which moves the IC by
    about 1e-3 (tests/test_research_marts.py measures both cases). Ranking once per value instead of
    once per (feature, label) pair is what keeps the marts a small part of the feature build.
-#}

{% macro rank_pct(expr, partition_by) -%}
    {#- average rank of ties, scaled to [0, 1] among the partition's non-null values; 0.5 for a lone value.
        rank() is the lowest rank of a tie, cume_dist() * count(*) its highest (NULLs sort last) -#}
    (case when ({{ expr }}) is not null then
        coalesce(
            ((rank() over (partition by {{ partition_by }} order by {{ expr }} nulls last)
              + cume_dist() over (partition by {{ partition_by }} order by {{ expr }} nulls last)
                * count(*) over (partition by {{ partition_by }})) / 2.0 - 1.0)
            / nullif(count({{ expr }}) over (partition by {{ partition_by }}) - 1, 0),
            0.5)
    end)
{%- endmacro %}


{% macro rank_ic(x_rank, y_rank, min_names=10) -%}
    {#- the rank IC aggregate of one date: NULL below `min_names` pairs (as ml.metrics.daily_ic) or when
        either side is constant; clamped to [-1, 1] against rounding -#}
    (case when count(({{ x_rank }}) + ({{ y_rank }})) >= {{ min_names }}
               and var_pop({{ x_rank }}) filter (where {{ y_rank }} is not null) > 1e-12
               and var_pop({{ y_rank }}) filter (where {{ x_rank }} is not null) > 1e-12
          then greatest(-1.0, least(1.0, corr({{ x_rank }}, {{ y_rank }}))) end)
{%- endmacro %}


{% macro research_labels() -%}
    {#- [(column, horizon, sector_neutral)] of every label the research marts score against -#}
    {%- set out = [] -%}
    {%- for neutral in [false, true] -%}
        {%- for h in var('label_horizons') -%}
            {%- do out.append(('fwd_ret_' ~ ('sn_' if neutral else '') ~ h ~ 'd', h, neutral)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}


{% macro newey_west_summary(source, group_by, value, order_by, lags_expr, max_lags) -%}
    {#-
        Per group of `source`: n, mean, sd, and the Newey-West t-statistic of `value`'s mean (Bartlett
        weights up to `lags_expr` lags, an expression of the group's columns, at most `max_lags`): the
        same estimator as ml.monitoring.ic.nw_t_stat, so overlapping labels are not counted as
        independent evidence. Rows with a NULL `value` are left out before lagging.
    -#}
    with nw_base as (
        select {{ group_by | join(', ') }}, {{ order_by }} as nw_order, {{ value }} as nw_x,
               {{ lags_expr }} as nw_lags
        from {{ source }}
        where {{ value }} is not null
    ),
    nw_demeaned as (
        select *, nw_x - avg(nw_x) over (partition by {{ group_by | join(', ') }}) as nw_d,
               count(*) over (partition by {{ group_by | join(', ') }}) as nw_n
        from nw_base
    ),
    nw_lagged as (
        select *,
            {%- for lag in range(1, max_lags + 1) %}
            nw_d * lag(nw_d, {{ lag }}) over (partition by {{ group_by | join(', ') }} order by nw_order)
                * (1.0 - {{ lag }} / (nw_lags + 1.0))
                * ({{ lag }} <= least(nw_lags, nw_n - 1))::int as nw_g{{ lag }}{{ ',' if not loop.last }}
            {%- endfor %}
        from nw_demeaned
    ),
    nw_summary as (
        select {{ group_by | join(', ') }},
            count(*) as n,
            avg(nw_x) as mean,
            stddev_samp(nw_x) as sd,
            (sum(nw_d * nw_d)
             {%- for lag in range(1, max_lags + 1) %} + 2 * coalesce(sum(nw_g{{ lag }}), 0){% endfor %})
                / count(*) as nw_var
        from nw_lagged
        group by {{ group_by | join(', ') }}
    )
    select {{ group_by | join(', ') }}, n, mean, sd,
        case when n >= 3 and nw_var > 0 then mean / sqrt(nw_var / n) end as nw_t
    from nw_summary
{%- endmacro %}
