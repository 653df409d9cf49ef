{#-
    Fails with the rows where any floating-point column holds NaN or +-inf: features are NULL when
    undefined, never a non-finite number. One test per model instead of one per column.
-#}
{% test all_columns_finite(model) %}

{%- set float_columns = [] -%}
{%- for column in adapter.get_columns_in_relation(model) -%}
    {%- if column.dtype | lower in ('double', 'float', 'real', 'float8', 'float4') -%}
        {%- do float_columns.append(column.name) -%}
    {%- endif -%}
{%- endfor %}

select *
from {{ model }}
where {% for c in float_columns -%}
    not isfinite({{ adapter.quote(c) }}){% if not loop.last %} or {% endif %}
{%- else -%}
    false
{%- endfor %}

{% endtest %}
