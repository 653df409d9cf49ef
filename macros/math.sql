{#- Small null-safe arithmetic helpers: a feature is NULL when it is undefined, never inf or NaN. -#}

{% macro safe_divide(numerator, denominator) -%}
    (({{ numerator }}) / nullif({{ denominator }}, 0))
{%- endmacro %}


{% macro safe_ln(expr) -%}
    (case when ({{ expr }}) > 0 then ln({{ expr }}) end)
{%- endmacro %}


{% macro simple_return(price_now, price_then) -%}
    {#- price_now / price_then - 1, NULL unless both prices are positive -#}
    (case when ({{ price_then }}) > 0 and ({{ price_now }}) > 0 then ({{ price_now }}) / ({{ price_then }}) - 1 end)
{%- endmacro %}


{% macro all_not_null(columns) -%}
    ({% for c in columns %}{{ c }} is not null{% if not loop.last %} and {% endif %}{% endfor %})
{%- endmacro %}
