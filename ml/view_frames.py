"""View frames for the zoo: each view's features prefixed `<view>__<feature>` (Feast's full names), the
`all` pseudo-view side by side, the labels, and the static categories for the families that ask for
them. Read from the feature marts (`load_view_frames`) or split from a Feast-style wide frame
(`frames_from_wide`). `ml.training` re-exports all of it."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ml.data.views import feature_views
from ml.models.categories import CATEGORIES_KEY, attach_categories, load_categories
from ml.paths import DataPaths
from ml.zoo_config import ALL_VIEW, SEP


def label_columns(cfg: Mapping) -> list[str]:
    cols = [cfg["target"]["label"], *cfg["evaluation"]["labels"].values()]
    return list(dict.fromkeys(cols))


def _prefixed(frame: pd.DataFrame, view: str, skip: set[str]) -> pd.DataFrame:
    rename = {c: f"{view}{SEP}{c}" for c in frame.columns if c not in skip and SEP not in str(c)}
    return frame.rename(columns=rename)


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"])
    out["symbol"] = out["symbol"].astype(str)
    return out


def build_view_frames(frame_by_view: Mapping[str, pd.DataFrame], cfg: Mapping) -> dict[str, pd.DataFrame]:
    """One frame per configured view (symbol, date, `<view>__<feature>`..., labels): labels joined from
    `frame_by_view["labels"]` when the view frames lack them; `all` built by joining every view."""
    labels_needed = label_columns(cfg)
    label_frame = frame_by_view.get("labels")
    keys = {"symbol", "date"}
    out: dict[str, pd.DataFrame] = {}
    for view, frame in frame_by_view.items():
        if view in ("labels", ALL_VIEW, CATEGORIES_KEY):
            continue
        frame = _keyed(frame)
        present = [c for c in labels_needed if c in frame.columns]
        feats = frame.drop(columns=present)
        out[view] = _prefixed(feats, view, keys | set(labels_needed))
        if present:
            out[view] = out[view].merge(frame[["symbol", "date", *present]], on=["symbol", "date"], how="left")
    if ALL_VIEW in cfg["views"]:
        if ALL_VIEW in frame_by_view:
            out[ALL_VIEW] = _keyed(frame_by_view[ALL_VIEW])
        else:
            parts = list(out.values())  # every feature view present, configured on its own or not
            if parts:
                merged = None
                for part in parts:
                    part = part.drop(columns=[c for c in labels_needed if c in part.columns])
                    merged = part if merged is None else merged.merge(part, on=["symbol", "date"], how="outer")
                out[ALL_VIEW] = merged
    if label_frame is not None:
        lf = _keyed(label_frame)
        lf = lf[["symbol", "date", *[c for c in labels_needed if c in lf.columns]]]
        for view, frame in out.items():
            missing = [c for c in labels_needed if c not in frame.columns and c in lf.columns]
            if missing:
                out[view] = frame.merge(lf[["symbol", "date", *missing]], on=["symbol", "date"], how="left")
    cats = frame_by_view.get(CATEGORIES_KEY)  # sector / industry by symbol (ml/models/categories.py)
    return {v: attach_categories(out[v], cats) for v in cfg["views"] if v in out}


def load_view_frames(paths: DataPaths, views: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Read `features/<view>.parquet` and `features/labels.parquet` (the dbt marts) as raw frames,
    keyed by view name plus `labels`; pass the result to `train_zoo`. Missing views are skipped."""
    views = [v for v in (views or feature_views()) if v != ALL_VIEW]
    out = {}
    for name in [*views, "labels"]:
        path = paths.features / f"{name}.parquet"
        if path.exists():
            out[name] = pd.read_parquet(path)
    categories = load_categories(paths)  # for the families with `needs_categories`; None without any
    if categories is not None:
        out[CATEGORIES_KEY] = categories
    return out


def frames_from_wide(wide: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split a Feast `training_frame` (symbol, date, `<view>__<f>`..., `labels__<label>`) into frames
    per view plus `labels` (label names without their prefix)."""
    out: dict[str, list[str]] = {}
    for col in wide.columns:
        if SEP in str(col):
            out.setdefault(str(col).split(SEP, 1)[0], []).append(col)
    frames = {}
    for view, cols in out.items():
        frame = wide[["symbol", "date", *cols]]
        if view == "labels":
            frame = frame.rename(columns={c: c.split(SEP, 1)[1] for c in cols})
        frames[view] = frame
    return frames
