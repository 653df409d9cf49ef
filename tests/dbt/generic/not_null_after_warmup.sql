{#-
    Fails with the rows where the column is NULL although the symbol already has more than
    `warmup_rows` earlier rows: trailing-window features may be NULL only while warming up after a
    listing. `max_null_fraction` tolerates a share of NULLs after warm-up (for inputs with gaps).
-#}
{% test not_null_after_warmup(model, column_name, warmup_rows, max_null_fraction=0, partition_by='symbol', order_by='date') %}

with numbered as (
    select
        {{ partition_by }},
        {{ order_by }},
        {{ column_name }} as value,
        row_number() over (partition by {{ partition_by }} order by {{ order_by }}) as row_in_history
    from {{ model }}
),

warmed_up as (
    select * from numbered where row_in_history > {{ warmup_rows }}
),

stats as (
    select count(*) as n_rows, count(*) - count(value) as n_null from warmed_up
)

select warmed_up.*
from warmed_up
cross join stats
where warmed_up.value is null
  and stats.n_null > {{ max_null_fraction }} * stats.n_rows

{% endtest %}
