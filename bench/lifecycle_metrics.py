"""The scenario bench's lifecycle columns (issue 12's measurement), from what the monitor wrote.

A pure function of the monitor's tables (`ml.lifecycle_events`, `ml.model_status_daily`, the
registry's view of each model, `ml.model_lineage` when the lifecycle writes one) and of the
market's truth from the generator's manifest (`oracle/meta.json`: the dying channel, its death
date, whether any alpha is planted):

- `share_active_end`: share of the zoo's model_ids live (active or promoted) on the last date;
- `retired_by_rule`: every 'retired' event counted by rule ("changepoint 5, view_decay 8");
- `false_retirements_per_20y`: retirements (rule other than never_activated) of healthy models,
  i.e. models neither in the dying channel's view(s) nor in the combined `all` view, per 20 of
  their live model-years (days active or promoted / 252); `false_retirements_all_per_20y` the
  same for the `all` view alone (it mixes in the dying channel). On a market without alpha no
  model is healthy: both are NaN (shown "—");
- `retired_after_percentile` (`retirements_after`): each retirement's percentile among the other
  models over the year after it, averaged; it needs no truth, so it judges real panels too;
- `dying_view_retired_within_3m`: "k/n", n the dying view's models live on the death date, k
  those retired within 63 trading days after it; `detection_lag_days_median` over those retired
  at any time after it (trading days of the monitor's calendar from the death date to the event);
  `dying_view_retired_early`: dying-view models retired on or before the death date.

The `generation` column (a retired spec's retrained successor is generation 2, ...) and
`ml.model_lineage` are optional: a model_id retired, retrained and retired again counts each
retirement, and its first retirement after the death is the one that detected it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LIVE = ("active", "promoted")
RETIRED = "retired"
NOT_A_DETECTION = ("never_activated", "not_requalified")  # a candidate that never went live: no false alarm
ALL_VIEW = "all"
YEAR_DAYS = 252
PER_YEARS = 20
WINDOW_DAYS = 63  # three months of trading days


# ---------------------------------------------------------------------------- the market's truth
def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    """The generator's manifest (`oracle/meta.json`), or None for a market without one (real data)."""
    meta = Path(data_dir) / "oracle" / "meta.json"
    return json.loads(meta.read_text()) if meta.exists() else None


def channel_views(channel: str) -> tuple[str, ...]:
    """The feature views a planted channel feeds: those built from the channel's inputs.

    `order_imbalance` reads prices.order_imbalance, which only `microstructure` needs; `iv_spread`
    reads options_iv, which feeds `alt_data`; a channel of prices alone feeds the price-only views.
    """
    from ml.data.market_config import CHANNEL_REQUIRES
    from ml.data.views import feature_views, view_requires

    needs = CHANNEL_REQUIRES.get(channel)
    if needs is None:
        return ()
    if not needs:
        return tuple(v for v, reqs in view_requires().items() if not reqs)
    views: set[str] = set()
    for need in needs:
        views |= {v for v, reqs in view_requires().items() if need in reqs}
    return tuple(v for v in feature_views() if v in views)


def market_truth(manifest: Mapping[str, Any] | None, scenario: str | None = None) -> dict[str, Any]:
    """What the manifest says the lifecycle should find: the dying channel, its view(s), its death
    date, and whether any alpha is planted (no manifest: a real market, taken to have alpha)."""
    manifest = manifest or {}
    weights = manifest.get("channel_weights") or {}
    no_alpha = (scenario == "no_alpha" or "zero_alpha" in manifest
                or (bool(manifest) and (not manifest.get("channels")
                                        or (weights and all(float(w) == 0.0 for w in weights.values())))))
    channel = manifest.get("dying_channel")
    death = manifest.get("decay_date")
    return {
        "dying_channel": channel,
        "dying_views": channel_views(channel) if channel else (),
        "death_date": pd.Timestamp(death) if channel and death else None,
        "has_alpha": not no_alpha,
    }


# -------------------------------------------------------------------------------------- metrics
def _frame(frame: pd.DataFrame | None, columns: tuple[str, ...]) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    out = frame.copy()
    if "date" in out.columns:
        out["date"] = pd.to_datetime(out["date"])
    return out


def _views(registry: pd.DataFrame | Mapping[str, str] | None) -> dict[str, str]:
    if registry is None:
        return {}
    if isinstance(registry, Mapping):
        return {str(k): str(v) for k, v in registry.items()}
    return {str(m): str(v) for m, v in zip(registry["model_id"], registry["view"], strict=True)}


def format_rules(retired: pd.DataFrame) -> str:
    """'changepoint 5, view_decay 8': the retirements counted by rule, most frequent first."""
    if retired.empty:
        return "none"
    counts = retired["rule"].fillna("?").astype(str).value_counts()
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{rule} {n}" for rule, n in items)


def _rate(retired: pd.DataFrame, live_days: pd.Series, ids: set[str]) -> tuple[float, int, float]:
    """(retirements per 20 live model-years, retirements, live model-years) of the models `ids`."""
    n = int(retired["model_id"].isin(ids).sum())
    years = float(live_days[live_days.index.isin(ids)].sum()) / YEAR_DAYS
    return (n / years * PER_YEARS if years > 0 else float("nan")), n, years


def _successors(events: pd.DataFrame, lineage: pd.DataFrame | None) -> int | None:
    """Retrained successors (generation > 1) the lifecycle made, when it records generations."""
    source = lineage if lineage is not None and "generation" in lineage.columns else events
    if "generation" not in source.columns:
        return None
    gens = source[["model_id", "generation"]].dropna().drop_duplicates()
    return int((pd.to_numeric(gens["generation"]) > 1).sum())


def lifecycle_metrics(events: pd.DataFrame | None, status_daily: pd.DataFrame | None,
                      registry: pd.DataFrame | Mapping[str, str] | None,
                      dying_views: Collection[str] | str | None = None, death_date: Any = None,
                      has_alpha: bool = True, lineage: pd.DataFrame | None = None,
                      window: int = WINDOW_DAYS) -> dict[str, Any]:
    """The lifecycle columns of one scenario row (see the module's docstring for each)."""
    events = _frame(events, ("date", "model_id", "event", "rule"))
    status = _frame(status_daily, ("date", "model_id", "status"))
    views = _views(registry)
    if isinstance(dying_views, str):
        dying_views = (dying_views,)
    dying = set(dying_views or ())
    death = pd.Timestamp(death_date) if death_date is not None and dying else None

    out: dict[str, Any] = {}
    zoo = set(views) | set(status["model_id"].astype(str))
    last = status["date"].max() if len(status) else None
    live_end = set(status.loc[(status["date"] == last) & status["status"].isin(LIVE), "model_id"]) if last is not None \
        else set()
    out["models_live_end"] = f"{len(live_end)}/{len(zoo)}"
    out["share_active_end"] = len(live_end) / len(zoo) if zoo else float("nan")

    retired = events[events["event"] == RETIRED]
    out["retired_by_rule"] = format_rules(retired)
    out["retirements"] = int(len(retired))
    out["successors"] = _successors(events, lineage)

    # false retirements: healthy models (not the dying view's, not `all`), then `all` on its own
    detections = retired[~retired["rule"].isin(NOT_A_DETECTION)]
    live_days = status[status["status"].isin(LIVE)].groupby("model_id").size()
    healthy = {m for m, v in views.items() if v != ALL_VIEW and v not in dying}
    combined = {m for m, v in views.items() if v == ALL_VIEW}
    for key, ids in (("false_retirements_per_20y", healthy), ("false_retirements_all_per_20y", combined)):
        rate, n, years = _rate(detections, live_days, ids)
        suffix = key.removesuffix("_per_20y")
        out[key] = rate if has_alpha else float("nan")
        out[f"{suffix}_n"] = n
        out[f"{suffix}_live_years"] = round(years, 2)

    # issue 12's default-market target: at most 20% of the models outside the dying view retired (ever)
    outside = {m for m, v in views.items() if v not in dying}
    hit = set(detections["model_id"].astype(str)) & outside
    out["outside_dying_retired_share"] = len(hit) / len(outside) if outside and has_alpha else float("nan")
    no_all = {m for m in outside if views[m] != ALL_VIEW}
    out["outside_dying_retired_share_no_all"] = (len(hit & no_all) / len(no_all) if no_all and has_alpha
                                                 else float("nan"))

    # the dying view: retired within three months of its death, how late, and how many before it
    out.update({"dying_views": ",".join(sorted(dying)) or None, "dying_view_retired_within_3m": None,
                "detection_lag_days_median": float("nan"), "dying_view_retired_early": None,
                "dying_view_not_retired": None})
    if death is not None:
        calendar = pd.DatetimeIndex(sorted(set(status["date"]) | set(events["date"])))
        dying_ids = {m for m, v in views.items() if v in dying}
        before = calendar[calendar <= death]
        at_death = set()
        if len(before):
            on = status[(status["date"] == before[-1]) & status["model_id"].isin(dying_ids)]
            at_death = set(on.loc[on["status"].isin(LIVE), "model_id"])
        after = detections[(detections["date"] > death) & detections["model_id"].isin(at_death)]
        first = after.groupby("model_id")["date"].min()
        death_pos = calendar.searchsorted(death, side="right")
        lags = np.array([calendar.searchsorted(d, side="right") - death_pos for d in first], dtype=float)
        early = detections[(detections["date"] <= death) & detections["model_id"].isin(dying_ids)]
        out["dying_view_retired_within_3m"] = f"{int((lags <= window).sum())}/{len(at_death)}"
        out["detection_lag_days_median"] = float(np.median(lags)) if len(lags) else float("nan")
        out["dying_view_retired_early"] = int(early["model_id"].nunique())
        out["dying_view_not_retired"] = len(at_death) - len(first)
    return out


def retirements_after(events: pd.DataFrame | None, daily: pd.DataFrame, window: int = YEAR_DAYS,
                      min_days: int = YEAR_DAYS // 2) -> dict[str, Any]:
    """Were the retirements right? For each retirement of a live model (rules other than
    NOT_A_DETECTION) with at least `min_days` dates after it, the retired model's mean daily IC over the
    `window` dates after, against every other model's over the same dates: its percentile among them
    (0.5: as good as its peers; a rule that finds decaying models scores well below). Needs no truth, so
    it judges retirements on real panels too. `daily`: model_id, date, ic (the models' own label); a
    retired model without ICs there (another label group) is left out. A model's out-of-sample scores go
    on after it is retired, so its year after is measurable."""
    out = {"retired_after_n": 0, "retired_after_percentile": float("nan"), "retired_after_ic": float("nan"),
           "retired_after_peers_ic": float("nan")}
    events = _frame(events, ("date", "model_id", "event", "rule"))
    gone = events[(events["event"] == RETIRED) & ~events["rule"].isin(NOT_A_DETECTION)]
    if gone.empty or daily.empty:
        return out
    wide = daily.assign(date=pd.to_datetime(daily["date"])).pivot_table(index="date", columns="model_id",
                                                                          values="ic").sort_index()
    dates = wide.index
    pct, own, peers = [], [], []
    for date, model in zip(gone["date"], gone["model_id"].astype(str), strict=True):
        if model not in wide.columns:
            continue
        i = int(dates.searchsorted(pd.Timestamp(date)))
        after = wide.iloc[i:i + int(window)]
        if after[model].notna().sum() < int(min_days):
            continue
        means = after.mean(axis=0)
        others = means.drop(index=model).dropna()
        if others.empty:
            continue
        pct.append(float((others < means[model]).mean()))
        own.append(float(means[model]))
        peers.append(float(others.median()))
    if pct:
        out.update(retired_after_n=len(pct), retired_after_percentile=float(np.mean(pct)),
                   retired_after_ic=float(np.mean(own)), retired_after_peers_ic=float(np.mean(peers)))
    return out


def at_least(value: float, reference: float) -> str | None:
    """'yes' when value >= reference, 'no' when not, None when either is missing."""
    try:
        a, b = float(value), float(reference)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    return "yes" if a >= b else "no"


# ---------------------------------------------------------------------------- from the warehouse
def read_lifecycle_tables(con) -> dict[str, pd.DataFrame | None]:
    """The monitor's tables from an open DuckDB connection (a missing table reads as None)."""
    import duckdb

    queries = {
        "events": "select * from ml.lifecycle_events",
        "status_daily": "select date, model_id, status from ml.model_status_daily",
        "registry": "select model_id, \"view\" from ml.model_registry",
        "lineage": "select * from ml.model_lineage",
    }
    tables: dict[str, pd.DataFrame | None] = {}
    for name, query in queries.items():
        try:
            tables[name] = con.execute(query).df()
        except duckdb.Error:
            tables[name] = None
    return tables


def _retirements_after_in(con, events: pd.DataFrame | None) -> dict[str, Any]:
    """`retirements_after` of the models judged on the lifecycle's primary label, from `ml.model_ic_daily`
    (what the lifecycle judged); empty columns when the monitor did not store it."""
    import duckdb

    from ml.monitoring.config import load_config

    try:
        daily = con.execute("select model_id, date, ic from ml.model_ic_daily where label = ?",
                            [load_config()["label"]]).df()
    except duckdb.Error:
        daily = pd.DataFrame(columns=["model_id", "date", "ic"])
    return retirements_after(events, daily)


def scenario_lifecycle(con, data_dir: Path, scenario: str | None = None) -> dict[str, Any]:
    """The lifecycle columns of a finished run: its warehouse (open as `con`) and its manifest."""
    truth = market_truth(read_manifest(data_dir), scenario)
    tables = read_lifecycle_tables(con)
    out = lifecycle_metrics(tables["events"], tables["status_daily"], tables["registry"],
                            dying_views=truth["dying_views"], death_date=truth["death_date"],
                            has_alpha=truth["has_alpha"], lineage=tables["lineage"])
    out.update(_retirements_after_in(con, tables["events"]))
    out["dying_channel"] = truth["dying_channel"]
    out["death_date"] = str(truth["death_date"].date()) if truth["death_date"] is not None else None
    out["has_alpha"] = truth["has_alpha"]
    return out
