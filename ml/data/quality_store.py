"""Storage of the data-quality gate in the warehouse (schema `quality`), one transaction per run.

- `quality.gx_results`: every rule's outcome of every run, appended (`ml.quality.RESULT_COLUMNS`);
- `quality.quarantine`: the latest accepted build's quarantined columns (`ml.data.quarantine`); a run
  replaces the rows of the views it validated;
- `quality.reference_profile`: the profile of the last accepted build per view
  (`ml.data.quality_profile.PROFILE_COLUMNS` plus run_id, built_at and the raw data's fingerprint);
  a quarantined column keeps its previous reference rows.
"""

from __future__ import annotations

import pandas as pd

from ml.data import quarantine
from ml.paths import DataPaths
from ml.tables import transaction

RESULTS_TABLE = "quality.gx_results"
PROFILE_TABLE = "quality.reference_profile"
RESULT_COLUMNS = (
    "run_id",
    "run_at",
    "view",
    "rule",
    "severity",
    "expectation",
    "column_name",
    "success",
    "observed_value",
    "details",
)


def write_results(paths: DataPaths, results: pd.DataFrame, quarantined: pd.DataFrame | None = None,
                  profile: pd.DataFrame | None = None, fingerprint: str | None = None) -> None:
    """Append `results` to `quality.gx_results`; with `quarantined` replace `quality.quarantine`;
    with `profile` replace its views' rows of the reference profile. One transaction."""
    import duckdb

    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    frame = results[list(RESULT_COLUMNS)].copy()
    frame["run_at"] = pd.to_datetime(frame["run_at"])
    frame["success"] = frame["success"].astype(bool)
    with duckdb.connect(str(paths.warehouse)) as con:
        with transaction(con):
            con.execute("create schema if not exists quality")
            con.execute(
                f"""create table if not exists {RESULTS_TABLE} (
                    run_id varchar, run_at timestamp, "view" varchar, rule varchar, severity varchar,
                    expectation varchar, column_name varchar, success boolean, observed_value varchar,
                    details varchar)"""
            )
            have = {
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'quality' and table_name = 'gx_results'"
                ).fetchall()
            }
            for col in [c for c in RESULT_COLUMNS if c not in have]:  # a table from an older version
                con.execute(f'alter table {RESULTS_TABLE} add column "{col}" varchar')
            con.register("gx_results_new", frame)
            con.execute(f"insert into {RESULTS_TABLE} by name select * from gx_results_new")
            con.unregister("gx_results_new")
            if quarantined is not None:
                quarantine.write(con, quarantined, views=set(results["view"]))
            if profile is not None and len(profile):
                _write_profile(con, profile, results, quarantined, fingerprint)


def _write_profile(con, profile: pd.DataFrame, results: pd.DataFrame, quarantined: pd.DataFrame | None,
                   fingerprint: str | None) -> None:
    new = profile.assign(run_id=results["run_id"].iloc[0], built_at=pd.to_datetime(results["run_at"].iloc[0]),
                         fingerprint=fingerprint or "")
    new["first_date"] = pd.to_datetime(new["first_date"])
    new["last_date"] = pd.to_datetime(new["last_date"])
    con.execute(
        f"""create table if not exists {PROFILE_TABLE} (
            "view" varchar, column_name varchar, period varchar, first_date date, last_date date,
            n_rows bigint, n_values bigint, n_nonzero bigint, null_rate double, mag_q50 double,
            mag_q90 double, bins varchar, run_id varchar, built_at timestamp, fingerprint varchar)"""
    )
    keep = set()
    if quarantined is not None and len(quarantined):  # keep their old reference: they stay quarantined
        keep = set(zip(quarantined["view"], quarantined["column_name"], strict=True))
        new = new[[(v, c) not in keep for v, c in zip(new["view"], new["column_name"], strict=True)]]
    con.register("profile_views", pd.DataFrame({"view": sorted(set(profile["view"]))}))
    con.register("profile_keep", pd.DataFrame(sorted(keep), columns=["view", "column_name"]).astype(str))
    con.execute(
        f"""delete from {PROFILE_TABLE} p where "view" in (select "view" from profile_views)
            and not exists (select 1 from profile_keep k where k."view" = p."view"
                            and k.column_name = p.column_name and p.fingerprint = ?)""",
        [fingerprint or ""],
    )
    con.register("profile_new", new)
    con.execute(f"insert into {PROFILE_TABLE} by name select * from profile_new")
    for name in ("profile_views", "profile_keep", "profile_new"):
        con.unregister(name)


def read_reference(paths: DataPaths, fingerprint: str | None = None) -> pd.DataFrame | None:
    """The persisted reference profile (None when there is none, or when it belongs to other raw
    data than `fingerprint`)."""
    import duckdb

    if not paths.warehouse.exists():
        return None
    try:
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            ref = con.execute(f"select * from {PROFILE_TABLE}").df()
    except duckdb.CatalogException:
        return None
    if fingerprint is not None:
        ref = ref[ref["fingerprint"] == fingerprint]
    return ref if len(ref) else None
