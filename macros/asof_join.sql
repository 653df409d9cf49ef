{#-
    Point-in-time ("as-of") left join: for each left row, the one right row with the same keys and the
    latest right_time at or before left_time (strictly before when strict=true); NULLs when none.

        from prices as p
        {{ asof_left_join('fundamentals', 'f', ['p.symbol'], ['symbol'], 'p.date', 'report_date') }}

    The right relation must have at most one row per (keys, right_time).
-#}

{% macro asof_left_join(relation, alias, left_keys, right_keys, left_time, right_time, strict=false) -%}
    {{ return(adapter.dispatch('asof_left_join')(relation, alias, left_keys, right_keys, left_time, right_time, strict)) }}
{%- endmacro %}

{% macro duckdb__asof_left_join(relation, alias, left_keys, right_keys, left_time, right_time, strict) -%}
    asof left join {{ relation }} as {{ alias }}
        on {% for i in range(left_keys | length) -%}
            {{ left_keys[i] }} = {{ alias }}.{{ right_keys[i] }} and {% endfor -%}
        {{ left_time }} {{ '>' if strict else '>=' }} {{ alias }}.{{ right_time }}
{%- endmacro %}

{% macro default__asof_left_join(relation, alias, left_keys, right_keys, left_time, right_time, strict) -%}
    {#- portable fallback for adapters without ASOF JOIN (a correlated lateral top-1) -#}
    left join lateral (
        select * from {{ relation }} as asof_candidates
        where {% for i in range(left_keys | length) -%}
            asof_candidates.{{ right_keys[i] }} = {{ left_keys[i] }} and {% endfor -%}
            asof_candidates.{{ right_time }} {{ '<' if strict else '<=' }} {{ left_time }}
        order by asof_candidates.{{ right_time }} desc
        limit 1
    ) as {{ alias }} on true
{%- endmacro %}
