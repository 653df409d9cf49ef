{#- Fails with the rows where the boolean SQL expression is false (NULL counts as passing). -#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
