"""Profiles of the feature marts and the distribution rules of the data-quality gate.

A *profile* describes each column of a frame with robust, market-free statistics, per period:
`all` (the whole frame), `recent` (its last `recent_months` months) and each calendar month
(`YYYY-MM`). Per period: row and value counts, the null rate among rows where the column can have a
value, and the *magnitude*: the 50% and 90% quantiles of |x| over non-zero finite values; for `all`
also decile edges and the share of values in each bin (for a PSI). The profile of the last accepted
build is persisted as the *reference* (`quality.reference_profile`).

Rules (every one compares a column with its own past, never with a constant fitted to a market):

| rule | severity | compares |
|---|---|---|
| `scale_jump` | critical | each month's magnitude (log10) with the median of the `baseline_months` months before it, and with the reference (same months; new months against the reference's last months): a step of `scale_jump_log10` orders of magnitude |
| `scale_shift` | quarantine (warning without reference) | the recent window's pooled magnitude against the reference's recent window (without one: the `baseline_months` months before it), `scale_shift_log10` |
| `null_rate` | quarantine (warning without reference) | null rate overall and in the recent window against the reference's (within the batch: recent window against the months before), increase > `max_null_rate_increase` |
| `psi` | quarantine | values on the dates the reference also covered against the reference's decile bins, PSI > `max_psi` |
| `reference_profile` | warning | whether a reference profile of this data directory exists |

Null rates. A rolling feature is null until its window fills and a symbol before its first report:
each symbol's rows count from its first value of the column on (a symbol that never has one counts
in full). Beyond that, coverage is the data's own: a revision is null where no analyst covers the
name, an insider ratio where nobody filed. No absolute limit is imposed (it could only be fitted to
one market); the rate is judged against the reference of the same data directory, and an entirely
null column is a structural failure (ml.quality).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

CRITICAL, QUARANTINE, WARNING = "critical", "quarantine", "warning"
KEYS = ("symbol", "date")
ALL, RECENT = "all", "recent"
PROFILE_COLUMNS = (
    "view",
    "column_name",
    "period",
    "first_date",
    "last_date",
    "n_rows",
    "n_values",
    "n_nonzero",
    "null_rate",
    "mag_q50",
    "mag_q90",
    "bins",
)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in KEYS and pd.api.types.is_numeric_dtype(frame[c])]


def eligible_rows(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(present, eligible) boolean matrices, rows in `frame`'s order: a row is eligible for a column
    from its symbol's first value of that column on, or on every row when the symbol never has one."""
    order = np.lexsort((pd.to_datetime(frame["date"]).to_numpy(), frame["symbol"].astype(str).to_numpy()))
    sym = frame["symbol"].astype(str).to_numpy()[order]
    present = frame[columns].notna().to_numpy()[order]
    by = pd.Series(sym)
    started = pd.DataFrame(present).groupby(by, sort=False).cumsum().to_numpy() > 0
    ever = pd.DataFrame(present).groupby(by, sort=False).transform("any").to_numpy()
    eligible = started | ~ever
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return present[inverse], eligible[inverse]


def _bins(x: np.ndarray) -> str | None:
    """Decile edges of the finite values and the share of values in each bin, as JSON."""
    if x.size == 0:
        return None
    edges = np.unique(np.quantile(x, np.linspace(0.1, 0.9, 9)))
    shares = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1) / x.size
    return json.dumps({"edges": edges.tolist(), "shares": shares.tolist()})


def profile_frame(view: str, frame: pd.DataFrame, recent_months: int = 3) -> pd.DataFrame:
    """The profile of one frame (`PROFILE_COLUMNS`): per column, `all`, `recent` and each month."""
    columns = feature_columns(frame)
    if frame.empty or not columns:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    dates = pd.to_datetime(frame["date"]).reset_index(drop=True)
    month = dates.dt.to_period("M")
    codes, months = pd.factorize(month, sort=True)
    n_months = len(months)
    labels = [str(m) for m in months]
    first = dates.groupby(codes).min().reindex(range(n_months)).dt.date.to_numpy()
    last = dates.groupby(codes).max().reindex(range(n_months)).dt.date.to_numpy()
    recent = codes >= n_months - recent_months
    r_first, r_last = dates[recent].min().date(), dates[recent].max().date()
    a_first, a_last = dates.min().date(), dates.max().date()
    present, eligible = eligible_rows(frame.reset_index(drop=True), columns)
    n_rows = np.bincount(codes, minlength=n_months)
    rows: list[dict[str, Any]] = []
    for j, col in enumerate(columns):
        x = frame[col].to_numpy(dtype="float64", na_value=np.nan)
        finite = np.isfinite(x)
        nz = finite & (x != 0)
        mag = np.abs(x)
        null_el = eligible[:, j] & ~present[:, j]
        el_count = np.bincount(codes, weights=eligible[:, j], minlength=n_months)
        null_count = np.bincount(codes, weights=null_el, minlength=n_months)
        n_values = np.bincount(codes, weights=finite, minlength=n_months)
        n_nonzero = np.bincount(codes, weights=nz, minlength=n_months)
        q = pd.Series(mag[nz]).groupby(codes[nz]).quantile([0.5, 0.9]).unstack()
        q = q.reindex(range(n_months)) if len(q) else pd.DataFrame(np.nan, index=range(n_months), columns=[0.5, 0.9])
        with np.errstate(invalid="ignore", divide="ignore"):
            null_rate = null_count / el_count
        for m in range(n_months):
            rows.append({
                "view": view, "column_name": col, "period": labels[m], "first_date": first[m],
                "last_date": last[m], "n_rows": int(n_rows[m]), "n_values": int(n_values[m]),
                "n_nonzero": int(n_nonzero[m]), "null_rate": float(null_rate[m]),
                "mag_q50": float(q.iloc[m][0.5]), "mag_q90": float(q.iloc[m][0.9]), "bins": None,
            })
        for period, mask, lo, hi in ((ALL, np.ones(len(x), bool), a_first, a_last), (RECENT, recent, r_first, r_last)):
            sel_nz = mag[nz & mask]
            el = eligible[mask, j].sum()
            rows.append({
                "view": view, "column_name": col, "period": period, "first_date": lo, "last_date": hi,
                "n_rows": int(mask.sum()), "n_values": int((finite & mask).sum()), "n_nonzero": int(sel_nz.size),
                "null_rate": float(null_el[mask].sum() / el) if el else float("nan"),
                "mag_q50": float(np.quantile(sel_nz, 0.5)) if sel_nz.size else float("nan"),
                "mag_q90": float(np.quantile(sel_nz, 0.9)) if sel_nz.size else float("nan"),
                "bins": _bins(x[finite]) if period == ALL else None,
            })
    return pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))


# ------------------------------------------------------------------------------------------- rules
def _monthly(profile: pd.DataFrame, column: str, min_values: int) -> pd.DataFrame:
    """Monthly log10 magnitudes of one column (NaN where the month has too few non-zero values)."""
    rows = profile[(profile["column_name"] == column) & ~profile["period"].isin([ALL, RECENT])]
    rows = rows.sort_values("period").set_index("period")
    ok = rows["n_nonzero"] >= min_values
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame({q: np.log10(rows[f"mag_{q}"].where(ok)) for q in ("q50", "q90")})
    return out


def _log_mag(rows: pd.DataFrame, column: str, min_values: int) -> pd.Series:
    """log10 magnitudes (q50, q90) of one pooled period row (NaN with too few non-zero values)."""
    row = rows.loc[column]
    ok = row["n_nonzero"] >= min_values
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series({q: np.log10(row[f"mag_{q}"]) if ok else np.nan for q in ("q50", "q90")}, dtype="float64")


def _steps_within(monthly: pd.DataFrame, cfg) -> pd.DataFrame:
    """Each month's log10 magnitude minus the median of the `baseline_months` qualifying months before it."""
    base = monthly.shift(1).rolling(cfg.baseline_months, min_periods=cfg.min_baseline_months).median()
    return monthly - base


def _steps_vs_reference(monthly: pd.DataFrame, ref_monthly: pd.DataFrame, cfg) -> pd.DataFrame:
    """Months the reference has: the same month's magnitude; later months: the reference's last
    `baseline_months` qualifying months' median."""
    common = monthly.index.intersection(ref_monthly.index)
    steps = monthly.loc[common] - ref_monthly.loc[common]
    newer = monthly.index[monthly.index > (ref_monthly.index.max() if len(ref_monthly) else "")]
    tail = ref_monthly.dropna(how="all").tail(cfg.baseline_months)
    if len(newer) and len(tail) >= cfg.min_baseline_months:
        steps = pd.concat([steps, monthly.loc[newer] - tail.median()])
    return steps


def _worst(steps: pd.DataFrame, months=None) -> tuple[float, str | None, str | None]:
    """(largest |log10 step|, its month, which quantile) over `months` (all by default)."""
    s = steps if months is None else steps.loc[steps.index.intersection(months)]
    a = s.abs().stack()
    a = a[np.isfinite(a)]
    if a.empty:
        return 0.0, None, None
    (month, quantile) = a.idxmax()
    return float(s.loc[month, quantile]), str(month), str(quantile)


def _describe_step(step: float, month: str | None, quantile: str | None, against: str) -> str:
    if month is None:
        return "not enough non-zero values per month to compare"
    q = {"q50": "median", "q90": "90% quantile"}[quantile]
    factor = 10 ** abs(step)
    times = f"{factor:,.0f}" if factor >= 10 else f"{factor:.2f}"
    return f"{month}: {q} of |x| is 10^{step:+.2f} = {'x' if step >= 0 else '1/'}{times} the {against}"


def _psi(bins_json: str, values: np.ndarray) -> float:
    ref = json.loads(bins_json)
    edges, expected = np.asarray(ref["edges"]), np.asarray(ref["shares"])
    actual = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(expected)) / values.size
    e, a = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def evaluate(view: str, frame: pd.DataFrame, profile: pd.DataFrame, reference: pd.DataFrame | None,
             cfg, is_labels: bool = False) -> list[dict[str, Any]]:
    """The outcome of every distribution rule for every column of one frame.

    Returns dicts with view, rule, severity, column_name, success, observed_value, details. The
    `reference` (that view's rows of the reference profile) may be None: a first build.
    """
    has_ref = reference is not None and not reference.empty
    soft = WARNING if is_labels or not has_ref else QUARANTINE
    out: list[dict[str, Any]] = []

    def add(rule, severity, column, success, observed, **details):
        out.append({"view": view, "rule": rule, "severity": severity, "column_name": column,
                    "success": bool(success), "observed_value": observed, "details": details})

    if has_ref:
        ref_run = str(reference["run_id"].iloc[0]) if "run_id" in reference else "?"
        add("reference_profile", WARNING, None, True, f"reference from run {ref_run}", run_id=ref_run)
    else:
        add("reference_profile", WARNING, None, False,
            "no reference profile for this data directory: distribution checks only warn on this build")
    all_rows = profile[profile["period"] == ALL].set_index("column_name")
    recent_rows = profile[profile["period"] == RECENT].set_index("column_name")
    months = sorted(p for p in profile["period"].unique() if p not in (ALL, RECENT))
    history_months = months[: -cfg.recent_months] if len(months) > cfg.recent_months else []
    if has_ref:
        ref_all = reference[reference["period"] == ALL].set_index("column_name")
        ref_recent = reference[reference["period"] == RECENT].set_index("column_name")
    dates = pd.to_datetime(frame["date"]).to_numpy()
    for col in all_rows.index:
        monthly = _monthly(profile, col, cfg.min_period_values)
        within = _steps_within(monthly, cfg)
        in_ref = has_ref and col in ref_all.index
        against = _steps_vs_reference(monthly, _monthly(reference, col, cfg.min_period_values), cfg) if in_ref else None

        # scale_jump (critical): any month, within the batch and against the reference
        candidates = [(*_worst(within), "median of the months before")]
        if against is not None:
            candidates.append((*_worst(against), "reference"))
        step, month, q, what = max(candidates, key=lambda c: abs(c[0]))
        add("scale_jump", CRITICAL, col, abs(step) < cfg.scale_jump_log10,
            _describe_step(step, month, q, what), log10_step=step, month=month, quantile=q, against=what,
            max_log10=cfg.scale_jump_log10)

        # scale_shift (quarantine against the reference; a warning within the batch): the recent window
        # pooled, against the reference's recent window (like with like: a day of new data moves it
        # little, a legitimately unusual month cannot move it alone) or the baseline months before it
        now = _log_mag(recent_rows, col, cfg.min_period_values)
        if in_ref and col in ref_recent.index:
            was, what = _log_mag(ref_recent, col, cfg.min_period_values), "reference's recent window"
        else:
            base = monthly.loc[monthly.index.intersection(history_months[-cfg.baseline_months:])].dropna(how="all")
            was = base.median() if len(base) >= cfg.min_baseline_months else pd.Series(np.nan, index=now.index)
            what = "median of the months before"
        steps = pd.DataFrame([now - was], index=[f"last {cfg.recent_months} months"])
        step, month, q = _worst(steps)
        add("scale_shift", soft, col, abs(step) < cfg.scale_shift_log10, _describe_step(step, month, q, what),
            log10_step=step, quantile=q, against=what, max_log10=cfg.scale_shift_log10)

        if not is_labels:  # labels are null at the end by construction (the future is unknown)
            now_all, now_recent = all_rows.loc[col, "null_rate"], recent_rows.loc[col, "null_rate"]
            if in_ref:
                was_all = ref_all.loc[col, "null_rate"]
                was_recent = ref_recent.loc[col, "null_rate"] if col in ref_recent.index else was_all
                pairs = {"all rows": (now_all, was_all), "recent window": (now_recent, was_recent)}
                what = "reference"
            else:
                hist = profile[(profile["column_name"] == col) & profile["period"].isin(history_months)]
                w = hist["n_rows"].to_numpy(dtype="float64")  # weights: rows per month
                was = float(np.average(hist["null_rate"].fillna(0), weights=w)) if len(hist) and w.sum() else np.nan
                pairs = {"recent window": (now_recent, was)}
                what = "months before"
            rises = {k: n - w for k, (n, w) in pairs.items() if np.isfinite(n) and np.isfinite(w)}
            key = max(rises, key=rises.get) if rises else None
            rise = rises.get(key, 0.0) if key else 0.0
            observed = (f"{key}: null rate {pairs[key][0]:.1%} vs {pairs[key][1]:.1%} in the {what}" if key
                        else "not comparable")
            add("null_rate", soft, col, rise <= cfg.max_null_rate_increase, observed,
                increase=rise, max_increase=cfg.max_null_rate_increase,
                **{k.replace(" ", "_"): [float(n), float(w)] for k, (n, w) in pairs.items()})

        if in_ref and isinstance(ref_all.loc[col, "bins"], str):
            lo, hi = np.datetime64(pd.Timestamp(ref_all.loc[col, "first_date"])), np.datetime64(
                pd.Timestamp(ref_all.loc[col, "last_date"]))
            x = frame[col].to_numpy(dtype="float64", na_value=np.nan)[(dates >= lo) & (dates <= hi)]
            x = x[np.isfinite(x)]
            if x.size:
                psi = _psi(ref_all.loc[col, "bins"], x)
                add("psi", soft, col, psi <= cfg.max_psi,
                    f"PSI {psi:.3f} on {x.size} values of the reference's dates", psi=psi, max_psi=cfg.max_psi)
    return out
