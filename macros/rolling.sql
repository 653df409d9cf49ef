{#-
    Trailing (time-series) windows per symbol. Every frame ends at the current row or before it
    (`rows between N preceding and current row`), never after: a value at t only sees rows up to t.
-#}

{% macro trailing_frame(n, offset=0, partition_by='symbol', order_by='date') -%}
    {#- the n rows ending `offset` rows before the current one (offset 0: ending at the current row) -#}
    (partition by {{ partition_by }} order by {{ order_by }}
     rows between {{ n - 1 + offset }} preceding and {{ 'current row' if offset == 0 else offset ~ ' preceding' }})
{%- endmacro %}


{% macro rolling(agg, expr, n, min_periods=none, offset=0, partition_by='symbol', order_by='date') -%}
    {#- agg(expr) over the trailing window; NULL until the window holds min_periods (default n) values -#}
    {%- set frame = trailing_frame(n, offset, partition_by, order_by) -%}
    (case when count({{ expr }}) over {{ frame }} >= {{ min_periods if min_periods is not none else n }}
        then {{ agg }}({{ expr }}) over {{ frame }} end)
{%- endmacro %}


{% macro last_known(expr, partition_by='symbol', order_by='date') -%}
    {#- the latest non-null value of expr at or before the current row (forward fill); NULL if none yet -#}
    last_value({{ expr }} ignore nulls) over
        (partition by {{ partition_by }} order by {{ order_by }} rows between unbounded preceding and current row)
{%- endmacro %}


{% macro rolling_compound(ret, n, min_periods=none, offset=0, partition_by='symbol', order_by='date') -%}
    {#- compounded return prod(1 + r) - 1 over the trailing window; NULL until it holds min_periods returns -#}
    {%- set frame = trailing_frame(n, offset, partition_by, order_by) -%}
    (case when count({{ ret }}) over {{ frame }} >= {{ min_periods if min_periods is not none else n }}
        then product(1 + {{ ret }}) over {{ frame }} - 1 end)
{%- endmacro %}


{% macro rolling_beta(y, x, n=none, min_obs=none, partition_by='symbol', order_by='date') -%}
    {#- OLS slope of y on x (with intercept) over the trailing n rows; NULL below min_obs complete pairs -#}
    {{ return(adapter.dispatch('rolling_beta')(
        y, x,
        n if n is not none else var('beta_window'),
        min_obs if min_obs is not none else var('beta_min_obs'),
        partition_by, order_by)) }}
{%- endmacro %}

{% macro default__rolling_beta(y, x, n, min_obs, partition_by, order_by) -%}
    {%- set frame = trailing_frame(n, 0, partition_by, order_by) -%}
    (case when count(case when ({{ y }}) is not null then {{ x }} end) over {{ frame }} >= {{ min_obs }} then
        covar_pop({{ y }}, {{ x }}) over {{ frame }}
        / nullif(var_pop(case when ({{ y }}) is not null then {{ x }} end) over {{ frame }}, 0)
    end)
{%- endmacro %}

{% macro duckdb__rolling_beta(y, x, n, min_obs, partition_by, order_by) -%}
    {%- set frame = trailing_frame(n, 0, partition_by, order_by) -%}
    (case when regr_count({{ y }}, {{ x }}) over {{ frame }} >= {{ min_obs }}
        then regr_slope({{ y }}, {{ x }}) over {{ frame }} end)
{%- endmacro %}


{#-
    Multi-factor rolling OLS in two steps (window functions cannot nest):
      1. rolling_ols_moments(y, xs, prefix) in one CTE: the trailing covariances of the complete rows,
      2. rolling_ols_betas(xs, prefix) in the next: the slopes by Cramer's rule on the normal equations
         (cov(X) b = cov(X, y)), one expression per regressor, NULL below min_obs rows or when singular.
    The caller passes y and xs already NULLed together on incomplete rows (see all_not_null), so that
    every moment is taken over the same rows.
-#}

{% macro rolling_ols_moments(y, xs, prefix, n=none, partition_by='symbol', order_by='date') -%}
    {%- set frame = trailing_frame(n if n is not none else var('beta_window'), 0, partition_by, order_by) -%}
    count({{ y }}) over {{ frame }} as {{ prefix }}_n
    {%- for i in range(xs | length) %},
    covar_pop({{ y }}, {{ xs[i] }}) over {{ frame }} as {{ prefix }}_xy_{{ i }}
        {%- for j in range(i, xs | length) %},
    covar_pop({{ xs[i] }}, {{ xs[j] }}) over {{ frame }} as {{ prefix }}_xx_{{ i }}_{{ j }}
        {%- endfor %}
    {%- endfor %}
{%- endmacro %}


{% macro _determinant(m) -%}
    {#- Laplace expansion of a small square matrix of SQL expressions -#}
    {%- if m | length == 1 -%}
        {{ m[0][0] }}
    {%- else -%}
        ({%- for j in range(m | length) -%}
            {%- set minor = [] -%}
            {%- for row in m[1:] -%}{%- do minor.append(row[:j] + row[j + 1:]) -%}{%- endfor -%}
            {{ ' - ' if j % 2 == 1 else (' + ' if j > 0 else '') }}{{ m[0][j] }} * {{ _determinant(minor) }}
        {%- endfor -%})
    {%- endif -%}
{%- endmacro %}


{% macro rolling_ols_betas(xs, prefix, min_obs=none) -%}
    {%- set k = xs | length -%}
    {%- set min_obs = min_obs if min_obs is not none else var('beta_min_obs') -%}
    {%- set a = [] -%}
    {%- for i in range(k) -%}
        {%- set row = [] -%}
        {%- for j in range(k) -%}
            {%- do row.append(prefix ~ '_xx_' ~ ([i, j] | min) ~ '_' ~ ([i, j] | max)) -%}
        {%- endfor -%}
        {%- do a.append(row) -%}
    {%- endfor -%}
    {%- set det = _determinant(a) -%}
    {%- set betas = [] -%}
    {%- for c in range(k) -%}
        {%- set a_c = [] -%}
        {%- for i in range(k) -%}
            {%- do a_c.append(a[i][:c] + [prefix ~ '_xy_' ~ i] + a[i][c + 1:]) -%}
        {%- endfor -%}
        {%- do betas.append('(case when ' ~ prefix ~ '_n >= ' ~ min_obs ~ ' then '
            ~ _determinant(a_c) ~ ' / nullif(' ~ det ~ ', 0) end)') -%}
    {%- endfor -%}
    {{ return(betas) }}
{%- endmacro %}


{% macro rolling_corr(y, x, n, min_obs=none, partition_by='symbol', order_by='date') -%}
    {#- Pearson correlation of y and x over the trailing n rows; NULL below min_obs (default n) pairs -#}
    {%- set frame = trailing_frame(n, 0, partition_by, order_by) -%}
    (case when regr_count({{ y }}, {{ x }}) over {{ frame }} >= {{ min_obs if min_obs is not none else n }}
        then corr({{ y }}, {{ x }}) over {{ frame }} end)
{%- endmacro %}
