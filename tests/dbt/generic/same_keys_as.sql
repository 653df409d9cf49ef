{#-
    Fails with the keys present in only one of the two relations: a feature mart has exactly one row
    per (symbol, date) of the price panel (no future-dated rows, none dropped), so Feast joins line up.
-#}
{% test same_keys_as(model, compare_model, columns) %}

with model_keys as (
    select distinct {{ columns | join(', ') }} from {{ model }}
),

compare_keys as (
    select distinct {{ columns | join(', ') }} from {{ compare_model }}
),

only_in_model as (
    select 'only in model' as problem, * from (select * from model_keys except select * from compare_keys)
),

only_in_compare as (
    select 'missing from model' as problem, * from (select * from compare_keys except select * from model_keys)
)

select * from only_in_model
union all
select * from only_in_compare

{% endtest %}
