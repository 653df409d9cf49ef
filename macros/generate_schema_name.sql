{#-
    Custom schemas are used as named (e.g. `+schema: monitoring` builds into `monitoring`, not
    `main_monitoring`); models without one stay in the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
