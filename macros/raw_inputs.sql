{#-
    What the raw directory holds, as told by the runner through vars (`raw_tables`, `price_columns`).
    Models switch between input paths with these (e.g. sector returns from ETFs or from members), and the
    runner excludes models tagged `needs:<input>` when <input> is missing.
-#}

{% macro has_raw(name) -%}
    {#- has_raw('fundamentals') -> is the optional table there; has_raw('prices.vwap') -> is the column there -#}
    {%- if name.startswith('prices.') -%}
        {{ return(name.split('.', 1)[1] in var('price_columns')) }}
    {%- else -%}
        {{ return(name in var('raw_tables')) }}
    {%- endif -%}
{%- endmacro %}


{% macro optional_column(column, table, data_type='double') -%}
    {#- the column cast to its type when the raw table has it, a typed NULL otherwise -#}
    {%- if has_raw(table ~ '.' ~ column) -%}
        cast({{ column }} as {{ data_type }}) as {{ column }}
    {%- else -%}
        cast(null as {{ data_type }}) as {{ column }}
    {%- endif -%}
{%- endmacro %}
