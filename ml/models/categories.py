"""Categorical columns (sector, industry) for the families that take them natively (`needs_categories`).

Why a separate path: every other input of the zoo is a numeric feature normalized per date, and a
sector label has no rank. A family that wants categories (CatBoost) declares `needs_categories`
(a ClassVar, like `needs_state`) and receives string columns `__cat__sector`, `__cat__industry` next to
its numeric features; every other family never sees them (`ZooEstimator._feature_columns` drops the
prefix).

Source and point in time: the raw `securities` table (symbol, sector, industry). The raw contract
keeps one classification per name and no effective dates, so the table is static: the category a
row (t, name) gets is the name's classification in the table, the same at every t. That is point in
time only as far as the table is: a name reclassified later would carry its later sector into the
past (no shipped market reclassifies). A dated table (`symbol`, `date`, fields) is honoured as of each
row's date (`attach_categories`: the last classification dated on or before t).

The same columns in training and serving:
- training: `ml.training.load_view_frames` and `ml.pipeline.load_training_frames` add a `categories`
  frame (`load_categories`); `build_view_frames` attaches its columns to every view frame;
  `prepare_view` keeps them aside (`PreparedView.categories`) and `design` hands them to the families
  that need them;
- serving: `CrossSectionalModel` remembers the category columns its estimator was fitted with and
  takes them from the raw rows; `ml.publish.live_scores` attaches them to the latest vectors.
A market whose securities table has no sector / industry gets no category columns, and the family
fits on its numeric features alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ml.models.base import CATEGORY_PREFIX

CATEGORY_FIELDS = ("sector", "industry")
CATEGORIES_KEY = "categories"  # the key of the categories frame among the frames by view
MISSING = "__missing__"  # a name without a classification (or before its first dated one)


def category_columns(columns: Iterable) -> list[str]:
    """The category columns among `columns`, in order."""
    return [str(c) for c in columns if str(c).startswith(CATEGORY_PREFIX)]


def categories_from_securities(securities: pd.DataFrame | None) -> pd.DataFrame | None:
    """(symbol[, date], __cat__sector, __cat__industry) from a securities table; None when it has no
    classification at all (then the families fit on numeric features only)."""
    if securities is None or "symbol" not in securities:
        return None
    fields = [f for f in CATEGORY_FIELDS if f in securities and securities[f].notna().any()]
    if not fields:
        return None
    keys = ["symbol", "date"] if "date" in securities else ["symbol"]
    out = securities[[*keys, *fields]].copy()
    out["symbol"] = out["symbol"].astype(str)
    if "date" in keys:
        out["date"] = pd.to_datetime(out["date"])
    for f in fields:
        out[f] = out[f].astype(object).where(out[f].notna(), MISSING).astype(str)
    out = out.drop_duplicates(keys, keep="last")
    return out.rename(columns={f: f"{CATEGORY_PREFIX}{f}" for f in fields}).reset_index(drop=True)


def load_categories(paths) -> pd.DataFrame | None:
    """The categories frame of a data directory (raw `securities`), or None without one (or without
    a data directory)."""
    if paths is None:
        return None
    path = paths.raw_table("securities")
    return categories_from_securities(pd.read_parquet(path)) if path.exists() else None


def _keys(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """(symbols, dates or None) of a frame keyed by columns or by a (date, symbol) index."""
    if "symbol" in frame.columns:
        dates = pd.to_datetime(frame["date"]).to_numpy() if "date" in frame.columns else None
        return frame["symbol"].astype(str).to_numpy(), dates
    index = frame.index
    symbols = index.get_level_values("symbol").astype(str).to_numpy()
    dates = pd.to_datetime(index.get_level_values("date")).to_numpy() if "date" in index.names else None
    return symbols, dates


def attach_categories(frame: pd.DataFrame, categories: pd.DataFrame | None) -> pd.DataFrame:
    """`frame` (keyed by `symbol`/`date` columns or a (date, symbol) index) with the category columns
    looked up per row: by symbol for a static table, as of the row's date for a dated one. Unknown
    names get `MISSING`. Existing category columns are replaced; no categories: `frame` unchanged."""
    if categories is None or categories.empty:
        return frame
    cols = category_columns(categories.columns)
    symbols, dates = _keys(frame)
    n = len(frame)
    if "date" in categories.columns:
        if dates is None:
            raise ValueError("a dated categories table needs dated rows")
        table = categories.sort_values("date", kind="stable")
        rows = pd.DataFrame({"symbol": symbols, "date": dates, "_row": np.arange(n)}).sort_values("date", kind="stable")
        merged = pd.merge_asof(rows, table, on="date", by="symbol", direction="backward")
        values = {c: np.empty(n, dtype=object) for c in cols}
        for c in cols:
            values[c][merged["_row"].to_numpy()] = merged[c].to_numpy(dtype=object)
    else:
        table = categories.set_index("symbol")
        pos = table.index.get_indexer(symbols)
        values = {c: np.where(pos >= 0, table[c].to_numpy(dtype=object)[np.maximum(pos, 0)], MISSING) for c in cols}
    out = frame.drop(columns=[c for c in category_columns(frame.columns)])
    assigned = {c: pd.Series(v, index=out.index).where(pd.notna(v), MISSING).astype(str) for c, v in values.items()}
    return out.assign(**assigned)


def category_codes(values: pd.DataFrame) -> pd.DataFrame:
    """Category columns as numeric codes (float64, exact integers below 2**32): a label's CRC-32, so the
    same label gets the same code in every process, in training and in serving, with no vocabulary to
    store; missing -> the code of `MISSING`; columns already numeric are taken as codes. Numeric codes
    keep the design matrix numeric, so code that casts it to floats (permutation importance, concat)
    carries the categories through unchanged."""
    out = {}
    for c in values.columns:
        col = values[c]
        if pd.api.types.is_numeric_dtype(col):
            out[c] = col.to_numpy(dtype="float64", na_value=float(label_code(MISSING)))
            continue
        codes, uniques = pd.factorize(col.astype(object).where(col.notna(), MISSING).astype(str), sort=False)
        out[c] = np.asarray([label_code(u) for u in uniques], dtype="float64")[codes]  # one hash per distinct label
    return pd.DataFrame(out, index=values.index, columns=list(values.columns))


def label_code(label: str) -> int:
    """A label's category code (CRC-32 of its UTF-8 text)."""
    return zlib.crc32(str(label).encode("utf-8"))


def category_design(X_raw: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The category columns a fitted model needs, as codes, from raw rows (serving)."""
    missing = [c for c in columns if c not in X_raw.columns]
    if missing:
        raise ValueError(f"missing category columns {missing} (attach them with ml.models.categories."
                         "attach_categories)")
    return category_codes(X_raw[columns])
