{#-
    Feature families: one macro call writes a whole family of columns, so a view states which series
    and which windows or decays it wants, not one recipe per effect. Window functions cannot nest, so a
    family that needs a cross-sectional step after a time-series one comes in two macros, used in two
    CTEs (e.g. `trailing_returns` in one, `cs_standardized` over its columns in the next).

    Every family is point in time: time-series windows end at the current row (macros/rolling.sql),
    cross-sectional steps use the same date only (macros/cross_sectional.sql), and event families
    read events whose publication date is on or before the row's date.
-#}

{% macro window_suffix(w) -%}{{ w }}d{%- endmacro %}


{% macro trailing_returns(close, prefix, windows) -%}
    {#- simple return over each trailing window of rows: `<prefix>_<w>d` = close_t / close_{t-w} - 1 -#}
    {%- for w in windows %}
    {{ simple_return(close, 'lag(' ~ close ~ ', ' ~ w ~ ') over (partition by symbol order by date)') }}
        as {{ prefix }}_{{ window_suffix(w) }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{% macro trailing_sums(expr, prefix, windows) -%}
    {#- sum of a daily series over each trailing window (NULL until the window is full): `<prefix>_<w>d` -#}
    {%- for w in windows %}
    {{ rolling('sum', expr, w) }} as {{ prefix }}_{{ window_suffix(w) }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{% macro trailing_means(expr, prefix, windows, min_fraction=0.7) -%}
    {#- mean of a daily series over each trailing window, needing min_fraction of it: `<prefix>_<w>d` -#}
    {%- for w in windows %}
    {{ rolling('avg', expr, w, min_periods=[(w * min_fraction) | round(0, 'ceil') | int, 1] | max) }}
        as {{ prefix }}_{{ window_suffix(w) }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{% macro trailing_log_ratios(expr, prefix, windows, base) -%}
    {#- ln(mean over w / mean over `base` rows ending the day before): a level against its own history,
        e.g. volume trend; `<prefix>_<w>d` -#}
    {%- set reference = rolling('avg', expr, base, min_periods=(base // 2), offset=1) -%}
    {%- for w in windows %}
    {{ safe_ln(safe_divide(rolling('avg', expr, w), reference)) }}
        as {{ prefix }}_{{ window_suffix(w) }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{% macro family_columns(prefix, windows) -%}
    {#- the column names a windowed family wrote, for the next CTE's macros -#}
    {%- set names = [] -%}
    {%- for w in windows -%}{%- do names.append(prefix ~ '_' ~ window_suffix(w)) -%}{%- endfor -%}
    {{ return(names) }}
{%- endmacro %}


{% macro cs_winsorized(columns) -%}
    {#- step 1 of cs_standardized: `<c>_w`, each column clipped to its date's winsorization quantiles -#}
    {%- for c in columns %}
    {{ cs_winsorize(c) }} as {{ c }}_w{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{% macro cs_standardized(columns, ranks=true, zscores=true) -%}
    {#- step 2 (a CTE after cs_winsorized): `<c>_rank` (percentile in [0, 1] on the date) and `<c>_z`
        (z-score of the winsorized value on the date) -#}
    {%- set out = [] -%}
    {%- for c in columns -%}
        {%- if ranks %}{%- do out.append(cs_rank(c) ~ ' as ' ~ c ~ '_rank') -%}{%- endif -%}
        {%- if zscores %}{%- do out.append(cs_zscore(c ~ '_w') ~ ' as ' ~ c ~ '_z') -%}{%- endif -%}
    {%- endfor -%}
    {{ out | join(',\n    ') }}
{%- endmacro %}


{% macro sector_relative(columns, group='sector') -%}
    {#- each name against its sector on the same date: `sector_<c>` (the sector mean, the name included),
        `<c>_vs_sector` (the name minus that mean) and `<c>_sector_rank` (percentile within the sector) -#}
    {%- set out = [] -%}
    {%- for c in columns -%}
        {%- do out.append(cs_mean(c, partition_by='date, ' ~ group) ~ ' as ' ~ group ~ '_' ~ c) -%}
        {%- do out.append('(' ~ c ~ ') - ' ~ cs_mean(c, partition_by='date, ' ~ group) ~ ' as ' ~ c ~ '_vs_' ~ group) -%}
        {%- do out.append(cs_rank(c, partition_by='date, ' ~ group) ~ ' as ' ~ c ~ '_' ~ group ~ '_rank') -%}
    {%- endfor -%}
    {{ out | join(',\n    ') }}
{%- endmacro %}


{#-
    Events in event time. An event relation has one row per (symbol, event date) - the date it was
    published - and one column per event size (a surprise, a revision, shares traded / ADV). Its
    decayed sum at date t, with half-life h calendar days, is the truncated exponential kernel

        D_h(t) = sum over events e published in (t - c h, t] of size_e * 2^(-(t - t_e) / h)

    which is the size of the latest event fading with its age when events are rare (earnings), and a
    recency-weighted flow when they are frequent (filings, revisions). The cut at c = 4 half-lives
    (weights below 1/16) makes the value exactly 0 once every event is old: without it a quarterly
    event's fast decay would sink by a factor 2^(-60/5) between reports, and its magnitude would swing
    with the reporting season rather than with the events (the quality gate's scale rules read that as
    a unit change). NULL before a symbol's first event.

    Computed in O(rows), not by a range join. With the untruncated sum U_h(t), the truncated one is
    U_h(t) - 2^-c U_h(t - c h) (the events up to t - c h, aged c h more), and exactly 0 when the latest
    event is older than c h. Within an epoch of E = 400 x the shortest half-life days (anchor
    a_k = k E days after 1970-01-01), the running sum S_k = sum size_e 2^((t_e - a_k) / h) has exponents
    of at most 400, and U_h(t) = S_k(last event) 2^((a_k - t) / h) plus the previous epoch's total
    2^((a_(k-1) - t) / h). Events two or more epochs back weigh at most 2^-400 and are left out.

      1. `decayed_event_ctes(name, relation, sizes, half_lives)`: three CTEs `<name>_epoched`,
         `<name>_running`, `<name>_epochs` (place it inside `with ...,`, followed by a comma);
      2. `decayed_event_joins(name, symbol, date, half_lives)`: the as-of joins (after the panel's
         `from`);
      3. `decayed_event_columns(name, sizes, half_lives, date, prefix)`: `<prefix>_<size>_hl<h>`.
-#}

{% macro _epoch_days(half_lives) -%}{{ 400 * (half_lives | min) }}{%- endmacro %}

{% macro _event_cut() -%}4{%- endmacro %}

{% macro _day_number(date) -%}(cast({{ date }} as date) - date '1970-01-01'){%- endmacro %}


{% macro decayed_event_ctes(name, relation, sizes, half_lives, event_date='event_date') -%}
    {%- set e = _epoch_days(half_lives) -%}
{{ name }}_epoched as (
    select
        symbol,
        {{ event_date }} as event_date,
        floor({{ _day_number(event_date) }} / {{ e }}) as epoch,
        {%- for s in sizes %}
        coalesce({{ s }}, 0) as {{ s }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation }}
),

{{ name }}_running as (
    select
        symbol,
        event_date,
        epoch
        {%- for s in sizes %}{%- for h in half_lives %},
        sum({{ s }} * pow(2, ({{ _day_number('event_date') }} - epoch * {{ e }}) / {{ h }})) over (
            partition by symbol, epoch order by event_date rows between unbounded preceding and current row
        ) as {{ s }}_s{{ h }}
        {%- endfor %}{%- endfor %}
    from {{ name }}_epoched
),

{{ name }}_epochs as (
    select
        symbol,
        epoch
        {%- for s in sizes %}{%- for h in half_lives %},
        -- ordered: a parallel hash aggregate adds floats in any order, and the same data must give the same bits
        sum({{ s }} * pow(2, ({{ _day_number('event_date') }} - epoch * {{ e }}) / {{ h }}) order by event_date)
            as {{ s }}_s{{ h }}
        {%- endfor %}{%- endfor %}
    from {{ name }}_epoched
    group by symbol, epoch
)
{%- endmacro %}


{% macro _lookup_joins(name, alias, symbol, date) -%}
    {{ asof_left_join(name ~ '_running', alias, [symbol], ['symbol'], date, 'event_date') }}
    left join {{ name }}_epochs as {{ alias }}_prev
        on {{ alias }}_prev.symbol = {{ symbol }} and {{ alias }}_prev.epoch = {{ alias }}.epoch - 1
{%- endmacro %}


{% macro decayed_event_joins(name, symbol, date, half_lives) -%}
    {{ _lookup_joins(name, name ~ '_last', symbol, date) }}
    {%- for h in half_lives %}
    {{ _lookup_joins(name, name ~ '_cut' ~ h, symbol, '(' ~ date ~ ' - ' ~ (_event_cut() | int) * h ~ ')') }}
    {%- endfor %}
{%- endmacro %}


{% macro _untruncated(alias, s, h, e, day) -%}
    ({{ alias }}.{{ s }}_s{{ h }} * pow(2, ({{ alias }}.epoch * {{ e }} - {{ day }}) / {{ h }})
     + coalesce({{ alias }}_prev.{{ s }}_s{{ h }} * pow(2, (({{ alias }}.epoch - 1) * {{ e }} - {{ day }}) / {{ h }}), 0))
{%- endmacro %}


{% macro decayed_event_columns(name, sizes, half_lives, date, prefix) -%}
    {%- set e = _epoch_days(half_lives) -%}
    {%- set c = _event_cut() | int -%}
    {%- set day = _day_number(date) -%}
    {%- set out = [] -%}
    {%- for s in sizes -%}{%- for h in half_lives -%}
        {%- set last = name ~ '_last' -%}
        {%- set cut = name ~ '_cut' ~ h -%}
        {%- do out.append(
            '(case when ' ~ last ~ '.event_date is null then null'
            ~ ' when ' ~ last ~ '.event_date <= ' ~ date ~ ' - ' ~ c * h ~ ' then 0.0'
            ~ ' else ' ~ _untruncated(last, s, h, e, day)
            ~ ' - coalesce(' ~ _untruncated(cut, s, h, e, day) ~ ', 0) end) as '
            ~ prefix ~ '_' ~ s ~ '_hl' ~ h) -%}
    {%- endfor -%}{%- endfor -%}
    {{ out | join(',\n        ') }}
{%- endmacro %}


{% macro decayed_event_names(sizes, half_lives, prefix) -%}
    {%- set names = [] -%}
    {%- for s in sizes -%}{%- for h in half_lives -%}{%- do names.append(prefix ~ '_' ~ s ~ '_hl' ~ h) -%}{%- endfor -%}{%- endfor -%}
    {{ return(names) }}
{%- endmacro %}
