"""Model lifecycle: walk-forward statuses, retirements, promotions, feature drift and market regimes.

Everything here is decided *walk-forward*: the state of a model at date t uses only out-of-sample ICs
whose labels were realized by t. The IC of a score dated s (rank correlation with the forward return
over s+1..s+h, `h` = `horizon`) is known at the close of s+h; to match the ensemble (`ml.ensemble`) a
decision in force at date t uses dates s <= t - `known_lag` (default h + 1 trading days). A month's IC
is known `known_lag` trading days after the month's last trading day.

Statuses: candidate -> active <-> promoted, and any of them -> retired (terminal). Ensembles use only
active (multiplier 1) and promoted (multiplier `promotion.multiplier`) models; candidates and retired
models weigh 0.

Rules (config `config/lifecycle.yaml`, defaults in `DEFAULTS`):
* activation (monthly review): a candidate with at least `activation.min_days` known IC days whose
  mean IC > `min_ic` and overlap-corrected t-stat >= `min_t` becomes active; one that has not after
  `max_days` known days is retired.
* retirement (active and promoted models; candidates are judged by activation), rule 1 (monthly):
  the monthly IC (mean daily rank IC of the month) < `threshold` for `negative_months` consecutive
  known months. A retirement that would leave fewer than `retirement.min_active` active models is
  deferred (event `retirement_deferred`) until other models are active, so the ensemble always has
  something to trade (0 turns this off).
* retirement, rule 2 (change point, daily): a one-sided lower CUSUM (Page 1954) on the model's IC.
  By default it watches the IC on the 1-day sector-neutral return (`changepoint.label`): known four
  days sooner than the 5-day IC and free of the overlap that makes 5-day daily ICs autocorrelated,
  so consecutive values are close to independent (set `block` > 1 to average blocks of days when
  they are not). The model's own first `reference_days` known IC values give the in-control mean
  mu0 and sd s (`reference: expanding` instead uses every value known at least `guard_days`
  before). Each later block adds z = clip((IC - mu0) / s, +-clip_z) (daily ICs are fat-tailed:
  a few extreme days must not decide) and S_b = max(0, S_{b-1} - z_b - k); the model is retired
  when S_b > h. k = `allowance` * mu0 / s, clipped to [k_min, k_max]: a block may lose
  `allowance` of the reference edge without counting against the model (an edge that halves in a
  stressed regime should not retire it), a model whose edge is gone accumulates (1 - allowance)
  * mu0 / s per block. h is solved per model from Siegmund's approximation of the in-control
  average run length, ARL0(h) = (exp(2 k b) - 2 k b - 1) / (2 k^2) with b = h + 1.166, set to
  `arl0_blocks`, so every model gets the same nominal false-alarm rate whatever its IC level.
  Calibration on the synthetic market (healthy models: false alarms; dying-channel models:
  retirement lag) is recorded in config/lifecycle.yaml.
* retirement, rule 3 (view decay, at each decision date): when at least `view_decay.min_retired`
  models of one feature view, and at least `min_share` of that view's live models, were retired by
  the change point within the last `window_days` trading days, the view's alpha is taken as gone
  and its remaining live models are retired too. The change point sees a death fastest in the
  view's strongest models; a weaker model of the same view (same inputs, smaller edge) would need
  far longer to show it on its own IC, and keeps trading a dead signal meanwhile. A view's models
  come from the registry (`view`), else from the zoo model id (`<family>-<view>-<digest>`). Views in
  `exclude` (default the combined `all` view, which mixes every source) are left to rules 1 and 2.
* promotion (monthly review): among active and promoted models, the top `top_fraction` (rounded) by
  trailing ICIR (mean / sd of the last `window_months` known monthly ICs, at least `min_months`, and
  > 0) are promoted (weight x `multiplier`); the others are (or are demoted to) active. Optional
  hysteresis: with `keep_fraction` set, a promoted model also keeps its place while it ranks within
  the top `keep_fraction` (less churn between models of nearly equal ICIR, at the price of
  sometimes more than `top_fraction` promoted).

Drift: PSI of each feature of each view (`features/<view>.parquet`), each month against a reference
window (the first `reference_months` of the file, or the trailing ones), on decile bins of the
reference. Regimes: a point-in-time volatility regime of the market return (market ETF, else the
equal-weighted panel): EWMA volatility against trailing quantiles of its own history (with hysteresis),
plus a z-score of cross-sectional dispersion against its trailing history.

`run_monitor_stage` reads `ml.predictions`, labels, features and raw prices, writes
`ml.model_metrics_monthly`, `ml.model_status_daily`, `ml.model_cusum`, `ml.lifecycle_events`,
`ml.feature_drift` and `ml.regimes` and the lifecycle's rows of `ml.model_events`, in one transaction,
then moves registry statuses with `ml.registry.transition`.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from ml.paths import DataPaths

Log = Callable[[str], None]
SCHEMA = "ml"
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "lifecycle.yaml"
STATUSES = ("candidate", "active", "promoted", "retired")
LIVE = ("active", "promoted")  # the statuses an ensemble uses
REGISTRY_STATUS = {"candidate": "candidate", "active": "active", "promoted": "active", "retired": "retired"}
EVENT_PREFIX = "[lifecycle] "
# the tables the stage writes (schema `ml`), with their column types
TABLE_SCHEMAS: dict[str, dict[str, str]] = {
    "model_metrics_monthly": {
        "model_id": "varchar", "month": "date", "month_end": "date", "known_at": "date", "ic": "double",
        "ic_sd": "double", "n_days": "integer", "hit_rate": "double", "valid": "boolean", "negative_run": "integer",
        "trailing_ic": "double", "trailing_icir": "double", "status": "varchar", "multiplier": "double"},
    "model_status_daily": {"date": "date", "model_id": "varchar", "status": "varchar", "multiplier": "double"},
    "model_cusum": {
        "model_id": "varchar", "block_end": "date", "known_at": "date", "block_ic": "double", "z": "double",
        "cusum": "double", "threshold": "double", "k": "double", "reference_ic": "double", "reference_sd": "double",
        "alarm": "boolean"},
    "lifecycle_events": {
        "event_seq": "integer", "date": "date", "model_id": "varchar", "event": "varchar", "from_status": "varchar",
        "to_status": "varchar", "rule": "varchar", "reason": "varchar", "monthly_ic": "double",
        "trailing_icir": "double", "cusum": "double", "cusum_threshold": "double", "reference_ic": "double",
        "negative_months": "integer", "metrics": "varchar"},
    "feature_drift": {
        "view": "varchar", "feature": "varchar", "month": "date", "psi": "double", "null_share": "double",
        "n_rows": "integer", "level": "varchar", "reference_start": "date", "reference_end": "date"},
    "regimes": {
        "date": "date", "market_ret": "double", "market_vol": "double", "vol_enter": "double", "vol_exit": "double",
        "regime": "varchar", "dispersion": "double", "dispersion_z": "double", "dispersion_regime": "varchar",
        "source": "varchar"},
}
TABLES = tuple(TABLE_SCHEMAS)

DEFAULTS: dict[str, Any] = {
    "label": "fwd_ret_sn_5d",       # labels.parquet column the models predict
    "horizon": 5,                   # trading days that label spans
    "known_lag": None,              # trading days until a date's IC may be used; None -> horizon + 1
    "min_names": 10,                # names a date needs for its cross-sectional IC
    "activation": {"min_days": 126, "min_ic": 0.0, "min_t": 0.0, "max_days": 504},
    "retirement": {"negative_months": 3, "threshold": 0.0, "min_days_month": 10, "min_active": 1},
    "changepoint": {
        "enabled": True,
        "label": "fwd_ret_sn_1d",   # None -> `label`
        "horizon": None,            # the detector label's horizon; None -> `horizon` (or 1 for *_1d)
        "block": 1,                 # IC days per block; None -> the detector label's horizon
        "reference_days": 252,      # first known IC days of each model: in-control mean and block sd
        "reference": "first",       # first | expanding (every block ended >= guard_days earlier)
        "guard_days": 126,
        "allowance": 0.6,           # share of the reference IC a block may lose without counting against it
        "k_min": 0.5,
        "k_max": 3.0,
        "arl0_blocks": 20000,       # in-control average run length (blocks) before a false alarm
        "clip_z": 2.0,              # winsorize standardized blocks (daily ICs are fat-tailed); null: off
    },
    "view_decay": {"enabled": True, "min_share": 0.5, "min_retired": 2, "window_days": 63, "exclude": ["all"]},
    "promotion": {"top_fraction": 0.2, "keep_fraction": None, "multiplier": 2.0, "window_months": 12,
                  "min_months": 6},
    "drift": {"reference": "first", "reference_months": 12, "bins": 10, "min_rows": 200,
              "moderate": 0.1, "significant": 0.25, "views": None},
    "regime": {"vol_halflife": 4, "history_days": 756, "min_history": 252, "enter_quantile": 0.9,
               "exit_quantile": 0.8, "dispersion_halflife": 10, "dispersion_z": 2.0},
}


class LifecycleError(RuntimeError):
    """The lifecycle cannot run (missing inputs, bad configuration)."""


# ================================================================================ configuration
def _merge(base: Mapping, over: Mapping) -> dict:
    out = deepcopy(dict(base))
    for key, value in (over or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = deepcopy(value)
    return out


def load_config(config: str | Path | Mapping | None = None) -> dict[str, Any]:
    """Defaults overlaid with a YAML file (default `config/lifecycle.yaml`) or a dict; derived fields
    (`known_lag`, the detector's label/horizon/block) filled in."""
    if config is None:
        config = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else {}
    if isinstance(config, str | Path):
        config = yaml.safe_load(Path(config).read_text()) or {}
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise LifecycleError(f"unknown lifecycle config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = _merge(DEFAULTS, config)
    cfg["horizon"] = int(cfg["horizon"])
    if cfg["known_lag"] is None:
        cfg["known_lag"] = cfg["horizon"] + 1
    cp = cfg["changepoint"]
    if cp["label"] is None:
        cp["label"] = cfg["label"]
    if cp["horizon"] is None:
        cp["horizon"] = cfg["horizon"] if cp["label"] == cfg["label"] else _label_horizon(cp["label"], cfg["horizon"])
    if cp["block"] is None:
        cp["block"] = max(int(cp["horizon"]), 1)
    cp["known_lag"] = int(cp["horizon"]) + 1
    if not 0 < float(cfg["promotion"]["top_fraction"]) <= 1:
        raise LifecycleError("promotion.top_fraction must be in (0, 1]")
    if int(cfg["retirement"]["negative_months"]) < 1:
        raise LifecycleError("retirement.negative_months must be >= 1")
    if cfg["drift"]["reference"] not in ("first", "trailing"):
        raise LifecycleError("drift.reference must be first | trailing")
    return cfg


def _label_horizon(label: str, default: int) -> int:
    """The horizon in a label name like fwd_ret_sn_1d (default when there is none)."""
    tail = str(label).rsplit("_", 1)[-1]
    return int(tail[:-1]) if tail.endswith("d") and tail[:-1].isdigit() else int(default)


# ================================================================================ calendar helpers
def known_dates(dates: pd.Series | pd.DatetimeIndex, calendar: pd.DatetimeIndex, lag: int) -> np.ndarray:
    """For each date, the calendar date `lag` trading days later (NaT past the calendar's end)."""
    values = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    pos = calendar.searchsorted(values) + int(lag)
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = pos < len(calendar)
    out[ok] = calendar.values[pos[ok]]
    return out


# ================================================================================ daily IC
_IC_SQL = """
with joined as (
    select cast(p.model_id as varchar) as model_id, cast(p.date as date) as date,
           cast(p.score as double) as score, cast(l."{label}" as double) as y
    from {predictions} as p
    join {labels} as l on cast(l.date as date) = cast(p.date as date) and cast(l.symbol as varchar) = cast(p.symbol as varchar)
    where p.score is not null and isfinite(p.score) and l."{label}" is not null and isfinite(l."{label}")
),
ranked as (
    select model_id, date,
        (rank() over (partition by model_id, date order by score)
         + count(*) over (partition by model_id, date) + 1
         - rank() over (partition by model_id, date order by score desc)) / 2.0 as rx,
        (rank() over (partition by model_id, date order by y)
         + count(*) over (partition by model_id, date) + 1
         - rank() over (partition by model_id, date order by y desc)) / 2.0 as ry
    from joined
)
select model_id, date, corr(rx, ry) as ic, count(*) as n_names
from ranked
group by model_id, date
having count(*) >= {min_names} and isfinite(corr(rx, ry))
order by model_id, date
"""


def daily_ic_sql(predictions: str, labels: str, label: str, min_names: int = 10) -> str:
    """DuckDB SQL for the per-(model, date) rank IC (Spearman, average ranks for ties) of
    `predictions` (date, symbol, model_id, score) against `labels`.`label`."""
    return _IC_SQL.format(predictions=predictions, labels=labels, label=label, min_names=int(min_names))


def daily_ic(predictions: pd.DataFrame, labels: pd.DataFrame, label: str = "fwd_ret_sn_5d",
             min_names: int = 10) -> pd.DataFrame:
    """Per (model_id, date) cross-sectional rank IC of the scores against `label`: columns model_id,
    date, ic, n_names. Dates whose label is not realized (NaN) drop out."""
    con = duckdb.connect()
    try:
        con.register("_predictions", predictions[["date", "symbol", "model_id", "score"]])
        con.register("_labels", labels[["date", "symbol", label]])
        out = con.execute(daily_ic_sql("_predictions", "_labels", label, min_names)).df()
    finally:
        con.close()
    out["date"] = pd.to_datetime(out["date"])
    return out


# ================================================================================ monthly IC
def monthly_ic(daily: pd.DataFrame, calendar: pd.DatetimeIndex, known_lag: int,
               min_days_month: int = 10, threshold: float = 0.0, window_months: int = 12,
               min_months: int = 6) -> pd.DataFrame:
    """Monthly IC per model from daily ICs, with when each month is known and the walk-forward
    statistics as of then: columns model_id, month (first day), month_end (the month's last calendar
    day), known_at (NaT: not yet known), ic (mean daily IC), ic_sd, n_days, hit_rate, valid (n_days >=
    min_days_month), negative_run (consecutive valid months with ic < threshold, this one included),
    trailing_ic, trailing_icir (last `window_months` valid months, at least `min_months`)."""
    cols = ["model_id", "month", "month_end", "known_at", "ic", "ic_sd", "n_days", "hit_rate", "valid",
            "negative_run", "trailing_ic", "trailing_icir"]
    if daily.empty:
        return pd.DataFrame(columns=cols)
    frame = daily.assign(month=pd.to_datetime(daily["date"]).dt.to_period("M"))
    frame["positive"] = (frame["ic"] > 0).astype(float)
    g = frame.groupby(["model_id", "month"], sort=True)
    out = pd.DataFrame({"ic": g["ic"].mean(), "ic_sd": g["ic"].std(ddof=1), "n_days": g["ic"].size(),
                        "hit_rate": g["positive"].mean()}).reset_index()
    cal = pd.Series(calendar, index=calendar.to_period("M"))
    month_end = cal.groupby(level=0).max()
    out["month_end"] = out["month"].map(month_end)
    out["known_at"] = known_dates(out["month_end"], calendar, known_lag)
    out["valid"] = out["n_days"] >= int(min_days_month)
    runs, t_ic, t_icir = [], [], []
    for _, grp in out.groupby("model_id", sort=False):
        run, prev = 0, None
        hist: list[float] = []
        for month, ic, valid in zip(grp["month"], grp["ic"], grp["valid"], strict=True):
            if prev is not None and (month - prev).n != 1:
                run = 0
            run = run + 1 if (valid and ic < threshold) else 0
            prev = month
            runs.append(run)
            if valid:
                hist.append(float(ic))
            window = np.asarray(hist[-int(window_months):])
            if len(window) >= max(int(min_months), 2):
                sd = window.std(ddof=1)
                t_ic.append(float(window.mean()))
                t_icir.append(float(window.mean() / sd) if sd > 0 else np.nan)
            else:
                t_ic.append(np.nan)
                t_icir.append(np.nan)
    out = out.sort_values(["model_id", "month"]).reset_index(drop=True)
    out["negative_run"], out["trailing_ic"], out["trailing_icir"] = runs, t_ic, t_icir
    out["month"] = out["month"].dt.to_timestamp()
    return out[cols]


# ================================================================================ change point
def cusum_threshold(k: float, arl0: float) -> float:
    """Threshold h of a one-sided CUSUM on unit-variance normal increments with reference value k whose
    in-control average run length is `arl0` (Siegmund's approximation, solved by bisection)."""
    k = float(k)

    def arl(h: float) -> float:
        b = h + 1.166
        if k < 1e-9:
            return b * b
        x = 2 * k * b
        return (math.expm1(x) - x) / (2 * k * k)

    lo, hi = 0.0, 1.0
    while arl(hi) < arl0:
        hi *= 2
        if hi > 1e6:
            break
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if arl(mid) < arl0 else (lo, mid)
    return hi


def cusum_lower(z: np.ndarray, k: float | np.ndarray) -> np.ndarray:
    """One-sided lower CUSUM path S_b = max(0, S_{b-1} - z_b - k_b) of standardized values z (k a
    scalar or one value per block)."""
    z = np.asarray(z, dtype=float)
    kk = np.broadcast_to(np.asarray(k, dtype=float), z.shape)
    out = np.empty(len(z))
    s = 0.0
    for i in range(len(z)):
        s = max(0.0, s - z[i] - kk[i])
        out[i] = s
    return out


def cusum_blocks(ic: np.ndarray, block: int, reference_days: int, allowance: float = 0.6,
                 k_min: float = 0.5, k_max: float = 3.0, arl0_blocks: float = 20000.0,
                 reference: str = "first", guard_days: int = 126, clip_z: float | None = 2.0) -> dict[str, Any]:
    """The change-point detector on one model's daily IC series (oldest first), see the module
    docstring. The series is cut into blocks of `block` days from its start; monitoring starts after
    the first `reference_days`. Reference `first`: mu0 and the block sd from the first
    `reference_days`; `expanding`: from every block that ended at least `guard_days` before the
    monitored block (never fewer than the first `reference_days`), so the reference averages over
    more regimes while a recent decay cannot leak into it. Returns per-block arrays (end index into
    `ic`, block mean, reference mean and sd, k, threshold h, z, statistic); empty when the history
    is shorter than the reference."""
    ic = np.asarray(ic, dtype=float)
    block = max(int(block), 1)
    keys = ("end", "mean", "mu0", "sd", "k", "h", "z", "stat")
    n_ref_blocks = int(reference_days) // block
    nb = len(ic) // block
    if n_ref_blocks < 4 or nb <= n_ref_blocks:
        return {k: np.zeros(0) for k in keys}
    means = ic[: nb * block].reshape(nb, block).mean(axis=1)
    c1 = np.concatenate([[0.0], np.cumsum(means)])
    c2 = np.concatenate([[0.0], np.cumsum(means * means)])
    j = np.arange(n_ref_blocks, nb)
    if reference == "expanding":
        r = np.maximum(n_ref_blocks, j - int(guard_days) // block)
    elif reference == "first":
        r = np.full(len(j), n_ref_blocks)
    else:
        raise LifecycleError(f"changepoint.reference must be first | expanding, got {reference!r}")
    mu0 = c1[r] / r
    var = np.maximum((c2[r] - r * mu0 * mu0) / (r - 1), 0.0)
    sd = np.sqrt(var)
    sd = np.where(sd > 0, sd, 1e-6)
    k = np.clip(allowance * mu0 / sd, k_min, k_max)
    h = np.array([_threshold_cached(round(float(x), 3), float(arl0_blocks)) for x in k])
    z = (means[j] - mu0) / sd
    if clip_z:
        z = np.clip(z, -float(clip_z), float(clip_z))
    stat = cusum_lower(z, k)
    return {"end": (j + 1) * block - 1, "mean": means[j], "mu0": mu0, "sd": sd, "k": k, "h": h, "z": z, "stat": stat}


@functools.lru_cache(maxsize=4096)
def _threshold_cached(k: float, arl0: float) -> float:
    return cusum_threshold(k, arl0)


def changepoint_table(daily: pd.DataFrame, calendar: pd.DatetimeIndex, cp: Mapping[str, Any]) -> pd.DataFrame:
    """The detector's block path of every model: model_id, block_end, known_at, block_ic, z, cusum,
    threshold, k, reference_ic, reference_sd, alarm."""
    rows = []
    for model_id, grp in daily.sort_values(["model_id", "date"]).groupby("model_id", sort=True):
        res = cusum_blocks(grp["ic"].to_numpy(), cp["block"], cp["reference_days"], cp["allowance"],
                           cp["k_min"], cp["k_max"], cp["arl0_blocks"], cp["reference"], cp["guard_days"],
                           cp["clip_z"])
        if not len(res["end"]):
            continue
        ends = pd.DatetimeIndex(grp["date"].to_numpy()[res["end"]])
        rows.append(pd.DataFrame({
            "model_id": model_id, "block_end": ends, "known_at": known_dates(ends, calendar, cp["known_lag"]),
            "block_ic": res["mean"], "z": res["z"], "cusum": res["stat"], "threshold": res["h"], "k": res["k"],
            "reference_ic": res["mu0"], "reference_sd": res["sd"],
        }))
    cols = ["model_id", "block_end", "known_at", "block_ic", "z", "cusum", "threshold", "k", "reference_ic",
            "reference_sd", "alarm"]
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.concat(rows, ignore_index=True)
    out["alarm"] = out["cusum"] > out["threshold"]
    return out[cols]


# ================================================================================ walk-forward statuses
@dataclass
class LifecycleResult:
    """What the walk-forward lifecycle decided: events, statuses over time and the evidence."""

    events: pd.DataFrame          # date, model_id, event, from_status, to_status, rule, reason, metrics...
    status_daily: pd.DataFrame    # date, model_id, status, multiplier
    monthly: pd.DataFrame         # monthly_ic() plus status and multiplier in force at known_at
    cusum: pd.DataFrame           # changepoint_table()
    final: dict[str, str]         # model_id -> status at the last calendar date

    def weights_asof(self, date) -> dict[str, float]:
        return weights_asof(self.status_daily, date)


EVENT_COLUMNS = ["event_seq", "date", "model_id", "event", "from_status", "to_status", "rule", "reason", "monthly_ic",
                 "trailing_icir", "cusum", "cusum_threshold", "reference_ic", "negative_months", "metrics"]


def _round(x: Any, nd: int = 4) -> Any:
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), nd)


def model_view(model_id: str) -> str | None:
    """The feature view in a zoo model id (`<family>-<view>-<digest>`), else None."""
    parts = str(model_id).split("-")
    return parts[1] if len(parts) == 3 else None


def run_lifecycle(daily: pd.DataFrame, calendar: pd.DatetimeIndex, config: Mapping | None = None,
                  detector_daily: pd.DataFrame | None = None, first_dates: Mapping[str, Any] | None = None,
                  views: Mapping[str, str] | None = None) -> LifecycleResult:
    """Walk the calendar and decide every model's status from what is known at each date.

    `daily`: per (model_id, date) IC on the models' label (`daily_ic`); `detector_daily`: the same on
    the change-point label when it differs (default: `daily`); `first_dates`: each model's first
    prediction date (status candidate from then; default its first IC date); `views`: each model's
    feature view, for the view-decay rule (default: parsed from zoo model ids)."""
    cfg = load_config(config)
    act, ret, prom, cp = cfg["activation"], cfg["retirement"], cfg["promotion"], cfg["changepoint"]
    vd = cfg["view_decay"]
    lag = int(cfg["known_lag"])
    calendar = pd.DatetimeIndex(calendar).sort_values()
    daily = daily.assign(date=pd.to_datetime(daily["date"])).sort_values(["model_id", "date"])
    models = sorted(set(daily["model_id"]) | set(first_dates or {}))
    monthly = monthly_ic(daily, calendar, lag, ret["min_days_month"], ret["threshold"],
                         prom["window_months"], prom["min_months"])
    det = daily if detector_daily is None else detector_daily.assign(date=pd.to_datetime(detector_daily["date"]))
    cusum = changepoint_table(det, calendar, cp) if cp.get("enabled", True) else changepoint_table(
        det.iloc[:0], calendar, cp)

    # per model: cumulative known IC stats for activation (sorted by known date)
    ic_known: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for m, grp in daily.groupby("model_id", sort=False):
        kd = known_dates(grp["date"], calendar, lag)
        x = grp["ic"].to_numpy(dtype=float)
        ic_known[m] = (kd, np.cumsum(x), np.cumsum(x * x))
    first = {m: pd.Timestamp((first_dates or {}).get(m) or daily.loc[daily["model_id"] == m, "date"].min())
             for m in models}
    # every alarm block by the date it is known (a model is retired at the first one while active)
    alarms_at: dict[pd.Timestamp, list[tuple[str, pd.Series]]] = {}
    if len(cusum):
        alarms = cusum[cusum["alarm"] & cusum["known_at"].notna()].sort_values(["known_at", "model_id"])
        for _, row in alarms.iterrows():
            alarms_at.setdefault(pd.Timestamp(row["known_at"]), []).append((row["model_id"], row))
    known_months = monthly[monthly["known_at"].notna()]
    by_review = {pd.Timestamp(t): grp for t, grp in known_months.groupby("known_at", sort=True)}
    review_dates = set(by_review)
    alarm_dates = set(alarms_at)
    decision_dates = sorted(review_dates | alarm_dates)

    status: dict[str, str] = {}
    changes: list[tuple[pd.Timestamp, str, str]] = []
    events: list[dict[str, Any]] = []
    last_month: dict[str, pd.Series] = {}

    def move(t, m, to, event, rule, reason, **metrics):
        frm = status[m]
        status[m] = to
        changes.append((t, m, to))
        lm = last_month.get(m)
        events.append({
            "event_seq": len(events) + 1, "date": t, "model_id": m, "event": event, "from_status": frm, "to_status": to, "rule": rule,
            "reason": reason,
            "monthly_ic": metrics.pop("monthly_ic", None if lm is None else _round(lm["ic"])),
            "trailing_icir": metrics.pop("trailing_icir", None if lm is None else _round(lm["trailing_icir"])),
            "cusum": metrics.pop("cusum", None), "cusum_threshold": metrics.pop("cusum_threshold", None),
            "reference_ic": metrics.pop("reference_ic", None),
            "negative_months": metrics.pop("negative_months", None if lm is None else int(lm["negative_run"])),
            "metrics": json.dumps({k: _round(v) if isinstance(v, float) else v for k, v in metrics.items()},
                                  sort_keys=True, default=str),
        })

    for m in models:
        status[m] = "candidate"
        changes.append((first[m], m, "candidate"))

    n_neg = int(ret["negative_months"])
    min_active = int(ret.get("min_active") or 0)
    pending: dict[str, tuple] = {}  # retirements deferred to keep min_active models

    def n_active() -> int:
        return sum(1 for x in models if status[x] in LIVE)

    def retire(t, m, rule, reason, **metrics):
        """Retire an active model unless it is one of the last `min_active` (then defer, once)."""
        if n_active() - 1 < min_active:
            if m not in pending:
                pending[m] = (t, rule, reason, metrics)
                move(t, m, status[m], "retirement_deferred", rule,
                     f"{reason}; deferred: it is one of the last {min_active} active model(s)", **dict(metrics))
            return
        pending.pop(m, None)
        move(t, m, "retired", "retired", rule, reason, **metrics)

    view_of = {m: (views or {}).get(m) or model_view(m) for m in models}
    cal_pos = {d: i for i, d in enumerate(calendar)}

    def position(t) -> int:
        return cal_pos[t] if t in cal_pos else int(calendar.searchsorted(t))
    cp_retired: list[tuple[int, str]] = []  # (calendar position, model) of change-point retirements

    def view_decay(t):
        """Rule 3: when most live models of one view were retired by the change point within the last
        `window_days`, the view's alpha has gone: retire the rest of it, whatever their own CUSUM says
        (a weaker model of the view needs far longer to show the same death on its own IC)."""
        if not vd.get("enabled", True):
            return
        pos = position(t)
        excluded = set(vd.get("exclude") or [])
        recent: dict[str, list[str]] = {}
        for p, m in cp_retired:
            if pos - p < int(vd["window_days"]) and view_of.get(m) and view_of[m] not in excluded:
                recent.setdefault(view_of[m], []).append(m)
        for view, gone in sorted(recent.items()):
            live = [m for m in models if view_of.get(m) == view and status[m] in LIVE and m not in pending]
            share = len(gone) / (len(gone) + len(live))
            if not live or len(gone) < int(vd["min_retired"]) or share < float(vd["min_share"]):
                continue
            for m in live:
                retire(t, m, "view_decay",
                       f"view {view}: {len(gone)} of its {len(gone) + len(live)} live models retired by the IC "
                       f"change point in the last {int(vd['window_days'])} trading days ({share:.0%} >= "
                       f"{float(vd['min_share']):.0%}): its alpha has gone", view=view, retired_by_changepoint=gone,
                       share=float(share))

    for t in decision_dates:
        # change-point alarms known today (rule 2): active and promoted models only
        for m, alarm in alarms_at.get(t, []):
            if status.get(m) in LIVE and first[m] <= t and m not in pending:
                retire(t, m, "changepoint",
                       f"IC change point: CUSUM {alarm['cusum']:.2f} > threshold {alarm['threshold']:.2f} "
                       f"(block IC {alarm['block_ic']:.4f} vs reference {alarm['reference_ic']:.4f}, "
                       f"block ending {pd.Timestamp(alarm['block_end']).date()})",
                       cusum=_round(alarm["cusum"], 3), cusum_threshold=_round(alarm["threshold"], 3),
                       reference_ic=_round(alarm["reference_ic"]), block_ic=float(alarm["block_ic"]),
                       block_end=str(pd.Timestamp(alarm["block_end"]).date()), k=float(alarm["k"]))
                if status[m] == "retired":
                    cp_retired.append((position(t), m))
        view_decay(t)
        if t not in review_dates:
            continue
        rows = by_review[t]
        for _, row in rows.iterrows():
            last_month[row["model_id"]] = row
        # rule 1: consecutive negative months, active and promoted models only
        for _, row in rows.iterrows():
            m = row["model_id"]
            if status.get(m) in LIVE and m not in pending and first[m] <= t and row["negative_run"] >= n_neg:
                hist = monthly[(monthly["model_id"] == m) & (monthly["month"] <= row["month"])].tail(n_neg)
                pairs = list(zip(hist["month"], hist["ic"], strict=True))
                listing = ", ".join(f"{pd.Timestamp(mo):%Y-%m} {ic:+.4f}" for mo, ic in pairs)
                retire(t, m, "negative_months",
                       f"monthly IC < {ret['threshold']:g} for {int(row['negative_run'])} consecutive months "
                       f"({listing})", monthly_ic=_round(row["ic"]), negative_months=int(row["negative_run"]),
                       months={f"{pd.Timestamp(mo):%Y-%m}": _round(ic) for mo, ic in pairs})
        # activation / expiry of candidates
        for m in [m for m in models if status[m] == "candidate" and first[m] <= t]:
            kd, s1, s2 = ic_known[m] if m in ic_known else (np.array([], "datetime64[ns]"), np.zeros(0), np.zeros(0))
            n = int(np.searchsorted(kd[~np.isnat(kd)], np.datetime64(t), side="right")) if len(kd) else 0
            if n < int(act["min_days"]):
                continue
            mean = s1[n - 1] / n
            var = max((s2[n - 1] - n * mean * mean) / max(n - 1, 1), 0.0)
            t_stat = mean / math.sqrt(var) * math.sqrt(n / max(int(cfg["horizon"]), 1)) if var > 0 else 0.0
            if mean > float(act["min_ic"]) and t_stat >= float(act["min_t"]):
                move(t, m, "active", "activated", "activation",
                     f"{n} known OOS IC days, mean IC {mean:.4f} > {act['min_ic']:g}, t-stat {t_stat:.2f}",
                     mean_ic=float(mean), t_stat=float(t_stat), n_days=n)
            elif n >= int(act["max_days"]):
                move(t, m, "retired", "retired", "never_activated",
                     f"still a candidate after {n} known OOS IC days (mean IC {mean:.4f}, t-stat {t_stat:.2f})",
                     mean_ic=float(mean), t_stat=float(t_stat), n_days=n)
        # deferred retirements go through once enough other models are active
        for m, (when, rule, reason, metrics) in list(pending.items()):
            if status[m] not in LIVE:
                pending.pop(m)
            elif n_active() - 1 >= min_active:
                retire(t, m, rule, f"{reason} (deferred since {pd.Timestamp(when).date()})", **metrics)
        # promotion: top fraction by trailing ICIR among active + promoted
        pool = [m for m in models if status[m] in LIVE]
        if not pool:
            continue
        icir = {m: float(last_month[m]["trailing_icir"]) if m in last_month else np.nan for m in pool}
        top = promoted_set(icir, {m for m in pool if status[m] == "promoted"}, prom["top_fraction"],
                           prom.get("keep_fraction"))
        ranked = sorted([m for m in pool if np.isfinite(icir[m]) and icir[m] > 0], key=lambda m: (-icir[m], m))
        cutoff = min((icir[m] for m in top), default=None)
        for m in pool:
            want = "promoted" if m in top else "active"
            if want == status[m]:
                continue
            rank = ranked.index(m) + 1 if m in ranked else None
            if want == "promoted":
                reason = (f"trailing ICIR {icir[m]:.3f} ranks {rank}/{len(pool)}: top "
                          f"{prom['top_fraction']:.0%} of active models, weight x{prom['multiplier']:g}")
                move(t, m, "promoted", "promoted", "promotion", reason, trailing_icir=_round(icir[m]),
                     rank=rank, n_active=len(pool), cutoff_icir=cutoff)
            else:
                keep = prom.get("keep_fraction") or prom["top_fraction"]
                reason = (f"trailing ICIR {icir[m]:.3f} ranks {rank or '-'}/{len(pool)}: out of the top "
                          f"{max(keep, prom['top_fraction']):.0%} ({len(top)} promoted; lowest promoted ICIR "
                          f"{'-' if cutoff is None else round(cutoff, 3)})")
                move(t, m, "active", "demoted", "promotion", reason, trailing_icir=_round(icir[m]),
                     rank=rank, n_active=len(pool), cutoff_icir=cutoff)

    status_daily = _status_daily(changes, calendar, float(prom["multiplier"]))
    events_frame = pd.DataFrame(events, columns=EVENT_COLUMNS)
    monthly = _attach_status(monthly, status_daily)
    final = {m: status[m] for m in models}
    return LifecycleResult(events=events_frame, status_daily=status_daily, monthly=monthly, cusum=cusum, final=final)


def _n_of(fraction: float, n: int) -> int:
    """round(fraction * n), halves up (top 20% of 3 models is 1, of 2 is 0)."""
    return int(math.floor(float(fraction) * n + 0.5))


def promoted_set(icir: Mapping[str, float], promoted: set[str], top_fraction: float,
                 keep_fraction: float | None = None) -> set[str]:
    """The models to promote among `icir` (trailing ICIR of every active or promoted model): the top
    `top_fraction` (rounded) with a positive ICIR. With `keep_fraction` > `top_fraction` (hysteresis
    against churn between models of nearly equal ICIR) a model already promoted also stays while it
    ranks within the top `keep_fraction`, so the promoted set may exceed the top fraction up to it."""
    pool = list(icir)
    ranked = sorted([m for m in pool if np.isfinite(icir[m]) and icir[m] > 0], key=lambda m: (-icir[m], m))
    top = set(ranked[: _n_of(top_fraction, len(pool))])
    keep_n = _n_of(keep_fraction, len(pool)) if keep_fraction else 0
    return top | (set(ranked[:keep_n]) & set(promoted))


def multiplier_of(status: str, promoted_multiplier: float) -> float:
    return {"active": 1.0, "promoted": float(promoted_multiplier)}.get(status, 0.0)


def _status_daily(changes: list[tuple], calendar: pd.DatetimeIndex, promoted_multiplier: float) -> pd.DataFrame:
    cols = ["date", "model_id", "status", "multiplier"]
    if not changes or not len(calendar):
        return pd.DataFrame(columns=cols)
    ch = pd.DataFrame(changes, columns=["date", "model_id", "status"])
    # several moves on one date: the last one stands (order of `changes` is decision order)
    ch = ch.drop_duplicates(["date", "model_id"], keep="last")
    # a change dated between calendar days takes effect on the next calendar day
    ch["date"] = calendar[np.minimum(calendar.searchsorted(ch["date"]), len(calendar) - 1)]
    ch = ch.drop_duplicates(["date", "model_id"], keep="last")
    wide = ch.pivot(index="date", columns="model_id", values="status").reindex(calendar).ffill()
    wide.index.name = "date"
    out = wide.stack().rename("status").reset_index()
    out["multiplier"] = [multiplier_of(s, promoted_multiplier) for s in out["status"]]
    return out[cols].sort_values(["date", "model_id"]).reset_index(drop=True)


def _attach_status(monthly: pd.DataFrame, status_daily: pd.DataFrame) -> pd.DataFrame:
    """The status and multiplier in force at each month's known date (NaN when not yet known)."""
    if monthly.empty or status_daily.empty:
        return monthly.assign(status=pd.Series(dtype=object), multiplier=pd.Series(dtype=float))
    sd = status_daily.rename(columns={"date": "known_at"})
    out = monthly.merge(sd, on=["known_at", "model_id"], how="left")
    return out


def weights_asof(status_daily: pd.DataFrame, date) -> dict[str, float]:
    """Models usable by an ensemble at `date` and their weight multipliers (active 1, promoted the
    configured multiplier): the state decided with what was known by then (last state at or before)."""
    if status_daily.empty:
        return {}
    t = pd.Timestamp(date)
    frame = status_daily[pd.to_datetime(status_daily["date"]) <= t]
    if frame.empty:
        return {}
    last = frame.sort_values("date").groupby("model_id").tail(1)
    last = last[last["multiplier"] > 0]
    return {str(m): float(x) for m, x in zip(last["model_id"], last["multiplier"], strict=True)}


def multiplier_panel(status_daily: pd.DataFrame, dates=None, models=None) -> pd.DataFrame:
    """Dates x models table of weight multipliers (0: not usable at that date) for `ml.ensemble`:
    multiply a weighter's weights by it (and renormalize) to use only active and promoted models."""
    wide = status_daily.pivot(index="date", columns="model_id", values="multiplier")
    wide.index = pd.DatetimeIndex(wide.index)
    if dates is not None:
        wide = wide.reindex(pd.DatetimeIndex(dates), method="ffill")
    if models is not None:
        wide = wide.reindex(columns=list(models))
    return wide.fillna(0.0)


# ================================================================================ drift
def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of `actual` against `expected` on quantile bins of `expected`:
    sum (a - e) ln(a / e) over bins (shares floored at eps). < 0.1 stable, 0.1-0.25 moderate, > 0.25
    significant shift. NaNs are ignored."""
    e = np.asarray(expected, float)
    a = np.asarray(actual, float)
    e, a = e[np.isfinite(e)], a[np.isfinite(a)]
    if not len(e) or not len(a):
        return float("nan")
    edges = _edges(e, bins)
    pe = np.bincount(np.searchsorted(edges, e, side="right"), minlength=len(edges) + 1) / len(e)
    pa = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1) / len(a)
    pe, pa = np.maximum(pe, eps), np.maximum(pa, eps)
    return float(np.sum((pa - pe) * np.log(pa / pe)))


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    qs = np.quantile(reference, np.linspace(0, 1, int(bins) + 1)[1:-1])
    return np.unique(qs)


def feature_drift(frame: pd.DataFrame, view: str, config: Mapping | None = None) -> pd.DataFrame:
    """PSI of every numeric feature of one view frame (symbol, date, features...) per month against
    the reference window (the first `reference_months` months, or the `reference_months` before each
    month): columns view, feature, month, psi, null_share, n_rows, level (stable | moderate |
    significant), reference_start, reference_end. Months inside a fixed reference are not scored."""
    cfg = load_config(config)["drift"]
    cols = ["view", "feature", "month", "psi", "null_share", "n_rows", "level", "reference_start", "reference_end"]
    feats = [c for c in frame.columns if c not in ("symbol", "date") and pd.api.types.is_numeric_dtype(frame[c])]
    if frame.empty or not feats:
        return pd.DataFrame(columns=cols)
    months = pd.to_datetime(frame["date"]).dt.to_period("M")
    codes, uniq = pd.factorize(months, sort=True)
    n_ref, bins, eps = int(cfg["reference_months"]), int(cfg["bins"]), 1e-4
    if len(uniq) <= n_ref:
        return pd.DataFrame(columns=cols)
    n_rows = np.bincount(codes, minlength=len(uniq))
    rows = []
    for feat in feats:
        x = frame[feat].to_numpy(dtype=float)
        finite = np.isfinite(x)
        n_finite = np.bincount(codes[finite], minlength=len(uniq))
        edges = None
        for j in range(n_ref, len(uniq)):
            lo = 0 if cfg["reference"] == "first" else j - n_ref
            if edges is None or cfg["reference"] == "trailing":
                ref_mask = (codes >= lo) & (codes < lo + n_ref) & finite
                if ref_mask.sum() < int(cfg["min_rows"]):
                    edges = None
                    continue
                edges = _edges(x[ref_mask], bins)
                pe = np.bincount(np.searchsorted(edges, x[ref_mask], side="right"), minlength=len(edges) + 1)
                pe = np.maximum(pe / pe.sum(), eps)
            cur = (codes == j) & finite
            if cur.any():
                pa = np.bincount(np.searchsorted(edges, x[cur], side="right"), minlength=len(edges) + 1)
                pa = np.maximum(pa / pa.sum(), eps)
                value = float(np.sum((pa - pe) * np.log(pa / pe)))
            else:
                value = float("nan")
            rows.append((view, feat, uniq[j].to_timestamp(), value, float(1 - n_finite[j] / max(n_rows[j], 1)),
                         int(n_rows[j]), uniq[lo].to_timestamp(),
                         (uniq[lo + n_ref - 1] + 1).to_timestamp() - pd.Timedelta(days=1)))
    out = pd.DataFrame(rows, columns=["view", "feature", "month", "psi", "null_share", "n_rows", "reference_start",
                                      "reference_end"])
    out["level"] = np.where(out["psi"].isna(), None, np.select(
        [out["psi"] > cfg["significant"], out["psi"] > cfg["moderate"]], ["significant", "moderate"], "stable"))
    return out[cols]


# ================================================================================ regimes
def market_returns(prices: pd.DataFrame, etf_prices: pd.DataFrame | None = None, market_etf: str = "SPY",
                   ) -> pd.DataFrame:
    """Daily market return (the market ETF's, else the equal-weighted panel's) and the cross-sectional
    dispersion (sd of stock returns) per date: columns date, market_ret, dispersion, source."""
    p = prices[["date", "symbol", "close"]].copy()
    p["date"] = pd.to_datetime(p["date"])
    p = p.sort_values(["symbol", "date"])
    p["ret"] = p.groupby("symbol", observed=True)["close"].pct_change()
    g = p.dropna(subset=["ret"]).groupby("date")["ret"]
    out = pd.DataFrame({"panel_ret": g.mean(), "dispersion": g.std(ddof=1)})
    source = "panel"
    if etf_prices is not None and len(etf_prices) and (etf_prices["etf"] == market_etf).any():
        e = etf_prices[etf_prices["etf"] == market_etf][["date", "close"]].copy()
        e["date"] = pd.to_datetime(e["date"])
        e = e.sort_values("date").set_index("date")["close"].pct_change()
        out = out.join(e.rename("etf_ret"), how="left")
        source = market_etf
        out["market_ret"] = out["etf_ret"].fillna(out["panel_ret"])
    else:
        out["market_ret"] = out["panel_ret"]
    out = out.reset_index()
    out["source"] = source
    return out[["date", "market_ret", "dispersion", "source"]]


def detect_regimes(market: pd.DataFrame, config: Mapping | None = None) -> pd.DataFrame:
    """Point-in-time regimes from (date, market_ret, dispersion): EWMA market volatility (annualized)
    against the enter/exit quantiles of its own trailing history (dates < t, at least `min_history`),
    stressed from crossing the enter level until falling below the exit level; and the cross-sectional
    dispersion (EWMA) as a z-score against its trailing history, flagged when |z| > `dispersion_z`.
    Columns: date, market_ret, market_vol, vol_enter, vol_exit, regime (calm | stressed | warmup),
    dispersion, dispersion_z, dispersion_regime (high | normal | low | warmup)."""
    cfg = load_config(config)["regime"]
    m = market.sort_values("date").reset_index(drop=True)
    r = m["market_ret"].fillna(0.0)
    var = (r * r).ewm(halflife=float(cfg["vol_halflife"]), min_periods=5).mean()
    vol = np.sqrt(var * 252.0)
    hist, min_h = int(cfg["history_days"]), int(cfg["min_history"])
    past = vol.shift(1).rolling(hist, min_periods=min_h)
    enter, exit_ = past.quantile(float(cfg["enter_quantile"])), past.quantile(float(cfg["exit_quantile"]))
    regime, state = [], False
    for v, hi, lo in zip(vol, enter, exit_, strict=True):
        if not np.isfinite(hi):
            regime.append("warmup")
            continue
        state = v > lo if state else v > hi
        regime.append("stressed" if state else "calm")
    disp = np.log(m["dispersion"].clip(lower=1e-8)).ewm(halflife=float(cfg["dispersion_halflife"]), min_periods=5).mean()
    dpast = disp.shift(1).rolling(hist, min_periods=min_h)
    dz = (disp - dpast.mean()) / dpast.std()
    zt = float(cfg["dispersion_z"])
    dreg = np.where(dz.isna(), "warmup", np.where(dz > zt, "high", np.where(dz < -zt, "low", "normal")))
    return pd.DataFrame({
        "date": pd.to_datetime(m["date"]), "market_ret": m["market_ret"], "market_vol": vol, "vol_enter": enter,
        "vol_exit": exit_, "regime": regime, "dispersion": m["dispersion"], "dispersion_z": dz,
        "dispersion_regime": dreg,
    })


# ================================================================================ the stage
def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                            [schema, name]).fetchone()[0])


def _sql_path(path: Path) -> str:
    return "read_parquet('" + str(path).replace("'", "''") + "')"


def compute_ics(paths: DataPaths, cfg: Mapping, log: Log = print) -> tuple[pd.DataFrame, pd.DataFrame | None,
                                                                             pd.DatetimeIndex, dict[str, Any]]:
    """Daily ICs of every model in `ml.predictions` on the label (and the detector label when it
    differs), computed inside DuckDB; the trading calendar of the labels; each model's first date."""
    labels = paths.features / "labels.parquet"
    if not labels.exists():
        raise LifecycleError(f"no labels at {labels}: build the features first")
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        if not _table_exists(con, SCHEMA, "predictions"):
            raise LifecycleError(f"no {SCHEMA}.predictions in {paths.warehouse}: train the zoo first")
        lab = _sql_path(labels)
        daily = con.execute(daily_ic_sql(f"{SCHEMA}.predictions", lab, cfg["label"], cfg["min_names"])).df()
        det = None
        if cfg["changepoint"]["label"] != cfg["label"]:
            det = con.execute(daily_ic_sql(f"{SCHEMA}.predictions", lab, cfg["changepoint"]["label"],
                                           cfg["min_names"])).df()
            det["date"] = pd.to_datetime(det["date"])
        cal = con.execute(f"select distinct cast(date as date) as date from {lab} union "
                          f"select distinct cast(date as date) from {SCHEMA}.predictions order by 1").df()
        first = dict(con.execute(f"select model_id, min(date) from {SCHEMA}.predictions group by 1").fetchall())
    finally:
        con.close()
    daily["date"] = pd.to_datetime(daily["date"])
    return daily, det, pd.DatetimeIndex(pd.to_datetime(cal["date"])), first


def drift_tables(paths: DataPaths, cfg: Mapping, log: Log = print) -> pd.DataFrame:
    """`feature_drift` over every view parquet under features/ (labels excluded)."""
    views = cfg["drift"]["views"]
    files = sorted(p for p in paths.features.glob("*.parquet") if p.stem != "labels")
    frames = []
    for f in files:
        if views and f.stem not in views:
            continue
        frames.append(feature_drift(pd.read_parquet(f), f.stem, cfg))
    return pd.concat(frames, ignore_index=True) if frames else feature_drift(pd.DataFrame(), "", cfg)


REGIME_COLUMNS = {"date": "datetime64[ns]", "market_ret": float, "market_vol": float, "vol_enter": float,
                  "vol_exit": float, "regime": object, "dispersion": float, "dispersion_z": float,
                  "dispersion_regime": object, "source": object}


def regime_table(paths: DataPaths, cfg: Mapping) -> pd.DataFrame:
    """`detect_regimes` on the raw prices (and the market ETF when etf_prices has it)."""
    prices_path = paths.raw_table("prices")
    if not prices_path.exists():
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in REGIME_COLUMNS.items()})
    prices = pd.read_parquet(prices_path, columns=["date", "symbol", "close"])
    etf_path = paths.raw_table("etf_prices")
    etf = pd.read_parquet(etf_path, columns=["date", "etf", "close"]) if etf_path.exists() else None
    from ml.contract import MARKET_ETF

    market = market_returns(prices, etf, MARKET_ETF)
    out = detect_regimes(market, cfg)
    out["source"] = market["source"].iloc[0] if len(market) else None
    return out


def _dated(frame: pd.DataFrame, *cols: str) -> pd.DataFrame:
    out = frame.copy()
    for c in cols:
        if c in out:
            out[c] = pd.to_datetime(out[c]).dt.date
    return out


def model_event_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The lifecycle events in the registry's `ml.model_events` layout (event_at, model_id,
    from_status, to_status, reason), reasons prefixed `[lifecycle] ` and carrying the metrics."""
    if events.empty:
        return pd.DataFrame({"event_at": pd.Series(dtype="datetime64[us]"), "model_id": pd.Series(dtype=str),
                             "from_status": pd.Series(dtype=str), "to_status": pd.Series(dtype=str),
                             "reason": pd.Series(dtype=str)})
    reasons = [f"{EVENT_PREFIX}{e}: {r} | metrics {m}" for e, r, m in
               zip(events["event"], events["reason"], events["metrics"], strict=True)]
    return pd.DataFrame({"event_at": pd.to_datetime(events["date"]).astype("datetime64[us]"),
                         "model_id": events["model_id"].astype(str), "from_status": events["from_status"].astype(str),
                         "to_status": events["to_status"].astype(str), "reason": reasons})


def write_monitor_tables(paths: DataPaths, tables: Mapping[str, pd.DataFrame], events: pd.DataFrame) -> None:
    """Replace `ml.<name>` for each frame and the lifecycle's rows of `ml.model_events` in one
    transaction: on any failure every previous table is left as it was."""
    con = duckdb.connect(str(paths.warehouse))
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        # the registry's layout (ml/registry.py DDL); created here only when the registry never ran
        con.execute(f"""create table if not exists {SCHEMA}.model_events (
            event_at timestamp not null, model_id varchar not null, from_status varchar,
            to_status varchar not null, reason varchar)""")
        for name, frame in tables.items():
            con.register(f"_incoming_{name}", frame)
        rows = model_event_rows(events)
        con.register("_incoming_model_events", rows)
        con.execute("begin transaction")
        try:
            for name in tables:
                columns = TABLE_SCHEMAS.get(name)
                if columns is None:
                    con.execute(f"create or replace table {SCHEMA}.{name} as select * from _incoming_{name}")
                    continue
                ddl = ", ".join(f'"{c}" {t}' for c, t in columns.items())
                names = ", ".join(f'"{c}"' for c in columns)
                casts = ", ".join(f'cast("{c}" as {t})' for c, t in columns.items())
                con.execute(f"create or replace table {SCHEMA}.{name} ({ddl})")
                con.execute(f"insert into {SCHEMA}.{name} ({names}) select {casts} from _incoming_{name}")
            con.execute(f"delete from {SCHEMA}.model_events where starts_with(reason, ?)", [EVENT_PREFIX])
            con.execute(f"insert into {SCHEMA}.model_events (event_at, model_id, from_status, to_status, reason) "
                        "select event_at, model_id, from_status, to_status, reason from _incoming_model_events")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()


def sync_registry(paths: DataPaths, final: Mapping[str, str], events: pd.DataFrame, log: Log = print) -> dict[str, int]:
    """Move registry statuses to the lifecycle's final ones with `ml.registry.transition` (only the
    moves the registry allows: candidate -> active | retired, active -> retired); others are logged."""
    from ml import registry

    reg = registry.list_models(paths)
    if reg.empty:
        log("[lifecycle] no model registry: statuses kept in ml.model_status_daily only")
        return {"moved": 0, "kept": 0}
    current = dict(zip(reg["model_id"].astype(str), reg["status"].astype(str), strict=True))
    last_reason = {}
    for _, e in events.iterrows():
        # not EVENT_PREFIX: these registry rows stay when the stage rewrites its own rows
        last_reason[e["model_id"]] = f"lifecycle {e['event']} on {pd.Timestamp(e['date']).date()}: {e['reason']}"
    moved = kept = 0
    for m, status in sorted(final.items()):
        if m not in current:
            continue
        want = REGISTRY_STATUS[status]
        have = current[m]
        if want == have:
            continue
        path = {("candidate", "active"): ["active"], ("candidate", "retired"): ["retired"],
                ("active", "retired"): ["retired"]}.get((have, want))
        if path is None:
            log(f"[lifecycle] {m}: registry says {have}, lifecycle says {status}; registry kept (no such move)")
            kept += 1
            continue
        for to in path:
            registry.transition(paths, m, to, last_reason.get(m, f"lifecycle {status}"))
        moved += 1
    return {"moved": moved, "kept": kept}


def registry_views(paths: DataPaths) -> dict[str, str]:
    """{model_id: feature view} from `ml.model_registry` (empty without one)."""
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        if not _table_exists(con, SCHEMA, "model_registry"):
            return {}
        rows = con.execute(f"select model_id, view from {SCHEMA}.model_registry").fetchall()
    return {str(m): str(v) for m, v in rows if v is not None}


def run_monitor_stage(paths: DataPaths, config: str | Path | Mapping | None = None, log: Log = print,
                      ) -> dict[str, Any]:
    """Monitoring stage: lifecycle from `ml.predictions` + labels, feature drift, regimes; writes the
    monitoring tables atomically, updates registry statuses, returns report keys."""
    started = time.perf_counter()
    cfg = load_config(config)
    if not paths.warehouse.exists():
        log(f"[lifecycle] skipped: no warehouse at {paths.warehouse}")
        return {"n_models_active": None, "n_models_retired": None, "monitor_skipped": "no warehouse"}
    try:
        daily, det, calendar, first = compute_ics(paths, cfg, log)
    except LifecycleError as exc:
        log(f"[lifecycle] skipped: {exc}")
        return {"n_models_active": None, "n_models_retired": None, "monitor_skipped": str(exc)}
    t_ic = time.perf_counter() - started
    log(f"[lifecycle] daily IC of {daily['model_id'].nunique()} models over {daily['date'].nunique()} dates "
        f"({cfg['label']}) in {t_ic:.1f}s")
    res = run_lifecycle(daily, calendar, cfg, detector_daily=det, first_dates=first, views=registry_views(paths))
    drift = drift_tables(paths, cfg, log)
    regimes = regime_table(paths, cfg)
    tables = {
        "model_metrics_monthly": _dated(res.monthly, "month", "month_end", "known_at"),
        "model_status_daily": _dated(res.status_daily, "date"),
        "model_cusum": _dated(res.cusum, "block_end", "known_at"),
        "lifecycle_events": _dated(res.events, "date"),
        "feature_drift": _dated(drift, "month", "reference_start", "reference_end"),
        "regimes": _dated(regimes, "date"),
    }
    write_monitor_tables(paths, tables, res.events)
    sync = sync_registry(paths, res.final, res.events, log)
    counts = pd.Series(res.final).value_counts().to_dict() if res.final else {}
    n_active = int(counts.get("active", 0) + counts.get("promoted", 0))
    latest = regimes.iloc[-1] if len(regimes) else None
    last_drift = drift[drift["month"] == drift["month"].max()] if len(drift) else drift
    report = {
        "n_models_active": n_active,
        "n_models_retired": int(counts.get("retired", 0)),
        "n_models_promoted": int(counts.get("promoted", 0)),
        "n_models_candidate": int(counts.get("candidate", 0)),
        "lifecycle_events": int(len(res.events)),
        "registry_moves": sync["moved"],
        "drift_significant_features": int((last_drift["level"] == "significant").sum()) if len(last_drift) else 0,
        "regime_latest": None if latest is None else str(latest["regime"]),
        "monitor_stage_s": time.perf_counter() - started,
    }
    log(f"[lifecycle] {n_active} active ({report['n_models_promoted']} promoted), {report['n_models_retired']} "
        f"retired, {report['n_models_candidate']} candidates; {len(res.events)} events; drift: "
        f"{report['drift_significant_features']} significant features last month; regime "
        f"{report['regime_latest']}; {report['monitor_stage_s']:.1f}s")
    return report


def read_weights_asof(paths: DataPaths, date) -> dict[str, float]:
    """`weights_asof` from the stored `ml.model_status_daily` (empty when the stage never ran)."""
    if not paths.warehouse.exists():
        return {}
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        if not _table_exists(con, SCHEMA, "model_status_daily"):
            return {}
        frame = con.execute(
            f"""select model_id, status, multiplier from {SCHEMA}.model_status_daily
                where date = (select max(date) from {SCHEMA}.model_status_daily where date <= ?)""",
            [pd.Timestamp(date).date()]).df()
    finally:
        con.close()
    frame = frame[frame["multiplier"] > 0]
    return dict(zip(frame["model_id"].astype(str), frame["multiplier"].astype(float), strict=True))
