{#-
    The benchmark series (see int_benchmark_returns_aggregated) that stands for the market: the market
    ETF's when etf_prices exists, the equal-weighted average of all names otherwise.
-#}

{% macro market_benchmark() -%}
    {#- (series, key) of the market benchmark -#}
    {%- if has_raw('etf_prices') -%}
        {{ return(('etf', var('market_etf'))) }}
    {%- else -%}
        {{ return(('market', 'all')) }}
    {%- endif -%}
{%- endmacro %}
