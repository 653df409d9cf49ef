"""Feature drift: PSI of each feature of each view, each month against a reference window (the first
`reference_months` of the file, or the trailing ones), on decile bins of the reference."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ml.monitoring.config import load_config


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
