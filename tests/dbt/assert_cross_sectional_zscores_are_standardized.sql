-- Every date's cross-sectional z-scores (cs_zscore over cs_winsorize) have mean 0 and standard
-- deviation 1 across the names that have one. Fails with the offending (date, feature) pairs.

with z as (
    select date, 'ret_5d_z' as feature, ret_5d_z as value from {{ ref('price_momentum') }}
    union all
    select date, 'ret_21d_z', ret_21d_z from {{ ref('price_momentum') }}
    union all
    select date, 'mom_12_1_z', mom_12_1_z from {{ ref('price_momentum') }}
    union all
    select date, 'resid_ret_5d_z', resid_ret_5d_z from {{ ref('sector_neutral') }}
),

per_date as (
    select date, feature, count(value) as n, avg(value) as mean, stddev_samp(value) as sd
    from z
    group by date, feature
)

select *
from per_date
where n >= 3 and (abs(mean) > 1e-9 or abs(sd - 1) > 1e-9)
