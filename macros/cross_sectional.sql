{#-
    Cross-sectional transforms, one date at a time (partition by date): they only ever use same-day rows,
    so they are point-in-time safe. Each returns an expression; nest them through CTEs (window functions
    cannot nest), e.g. winsorize in one CTE and z-score the winsorized column in the next.

    The full-partition aggregates are ordered by a unique key (`order_by`, default symbol) with an explicit
    whole-partition frame, so floating-point sums run in the same order whatever the input row order:
    rebuilding with more (later) data gives bit-identical values for earlier dates.
-#}

{% macro _cs_window(partition_by, order_by) -%}
    (partition by {{ partition_by }} order by {{ order_by }} rows between unbounded preceding and unbounded following)
{%- endmacro %}


{% macro cs_mean(expr, partition_by='date', order_by='symbol') -%}
    {{ return(adapter.dispatch('cs_mean')(expr, partition_by, order_by)) }}
{%- endmacro %}

{% macro default__cs_mean(expr, partition_by, order_by) -%}
    avg({{ expr }}) over {{ _cs_window(partition_by, order_by) }}
{%- endmacro %}

{% macro duckdb__cs_mean(expr, partition_by, order_by) -%}
    {#- favg: compensated (Kahan) summation -#}
    favg({{ expr }}) over {{ _cs_window(partition_by, order_by) }}
{%- endmacro %}


{% macro cs_zscore(expr, partition_by='date', order_by='symbol') -%}
    {#- (x - mean) / sd over the names of the same date; NULL where x is NULL or the date has no dispersion -#}
    (({{ expr }}) - {{ cs_mean(expr, partition_by, order_by) }})
        / nullif(stddev_samp({{ expr }}) over {{ _cs_window(partition_by, order_by) }}, 0)
{%- endmacro %}


{% macro cs_rank(expr, partition_by='date') -%}
    {#- percentile rank in [0, 1] among the non-null values of the same date (ties share the lower rank) -#}
    (case when ({{ expr }}) is not null then
        (rank() over (partition by {{ partition_by }} order by {{ expr }} asc nulls last) - 1)::double
        / nullif(count({{ expr }}) over (partition by {{ partition_by }}) - 1, 0)
    end)
{%- endmacro %}


{% macro cs_winsorize(expr, lower=none, upper=none, partition_by='date') -%}
    {{ return(adapter.dispatch('cs_winsorize')(
        expr,
        lower if lower is not none else var('winsor_lower'),
        upper if upper is not none else var('winsor_upper'),
        partition_by)) }}
{%- endmacro %}

{% macro default__cs_winsorize(expr, lower, upper, partition_by) -%}
    {#- clip to the date's [lower, upper] quantiles; NULL stays NULL -#}
    (case when ({{ expr }}) is not null then
        least(
            greatest({{ expr }}, percentile_cont({{ lower }}) within group (order by {{ expr }}) over (partition by {{ partition_by }})),
            percentile_cont({{ upper }}) within group (order by {{ expr }}) over (partition by {{ partition_by }})
        )
    end)
{%- endmacro %}

{% macro duckdb__cs_winsorize(expr, lower, upper, partition_by) -%}
    (case when ({{ expr }}) is not null then
        least(
            greatest({{ expr }}, quantile_cont({{ expr }}, {{ lower }}) over (partition by {{ partition_by }})),
            quantile_cont({{ expr }}, {{ upper }}) over (partition by {{ partition_by }})
        )
    end)
{%- endmacro %}

{#- Long-short return of a tercile sort: `sorted_relation` has (date, symbol, ret_1d, bucket in 1..3);
    the equal-weighted mean return of bucket `long_bucket` minus that of `short_bucket`, on dates where
    all three buckets have at least `min_names` names. -#}
{% macro tercile_spread(sorted_relation, long_bucket, short_bucket, column, min_names=2) -%}
    select
        date,
        max(case when bucket = {{ long_bucket }} then leg_ret end)
            - max(case when bucket = {{ short_bucket }} then leg_ret end) as {{ column }}
    from (
        select
            date,
            bucket,
            {{ cs_mean('ret_1d', partition_by='date, bucket') }} as leg_ret,
            count(*) over (partition by date, bucket) as leg_names
        from {{ sorted_relation }}
    ) as legs
    group by date
    having min(leg_names) >= {{ min_names }} and count(distinct bucket) = 3
{%- endmacro %}
