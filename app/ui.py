"""Small UI helpers shared by the pages: graceful "not available yet" notices, snapshot notices,
badges and chart shortcuts."""

from __future__ import annotations

from collections.abc import Iterable

import altair as alt
import pandas as pd
import streamlit as st

from app.data import Read
from app.targets import FAIL, MISSING, PASS

RUN_HINT = "run `aurora run`"
STATUS_BADGE = {
    PASS: ("PASS", "green", ":material/check_circle:"),
    FAIL: ("FAIL", "red", ":material/cancel:"),
    MISSING: ("not yet", "gray", ":material/hourglass_empty:"),
}


def not_available(what: str, hint: str = RUN_HINT) -> None:
    """The graceful notice for something a pipeline stage has not produced yet."""
    st.info(f"{what}: not available yet — {hint}.", icon=":material/hourglass_empty:")


def read_notice(read: Read) -> None:
    """Say when the page shows a snapshot because a writer holds the warehouse, or nothing at all."""
    when = f"{read.read_at:%Y-%m-%d %H:%M:%S}" if read.read_at else "an earlier read"
    if read.source == "memory":
        st.warning(f"Showing the snapshot read at {when}: {read.note}. Reload once the writer is "
                   "done.", icon=":material/history:")
    elif read.source == "copy":
        st.warning(f"Showing a copy of the warehouse as of {when} (its last checkpoint): {read.note}.",
                   icon=":material/history:")
    elif read.source == "unavailable":
        st.warning(f"The warehouse cannot be read right now ({read.note}). Try again in a moment.",
                   icon=":material/lock_clock:")
    for name, message in read.errors.items():
        st.caption(f"`{name}` could not be read: {message}")


def status_badge(status: str) -> None:
    label, color, icon = STATUS_BADGE.get(status, STATUS_BADGE[MISSING])
    st.badge(label, color=color, icon=icon)


def first_present(frame: pd.DataFrame, candidates: Iterable[str]) -> str | None:
    return next((c for c in candidates if c in frame.columns), None)


def line(frame: pd.DataFrame, x: str, y: str, color: str | None = None, *, y_title: str | None = None,
         y_format: str | None = None, height: int = 300, rule: float | None = None) -> alt.Chart:
    """A line chart (one line per `color` value) with an optional horizontal reference rule."""
    enc = {
        "x": alt.X(f"{x}:T", title=None),
        "y": alt.Y(f"{y}:Q", title=y_title or y, axis=alt.Axis(format=y_format) if y_format else alt.Axis()),
        "tooltip": [alt.Tooltip(f"{x}:T"), alt.Tooltip(f"{y}:Q", format=y_format or ".4f")],
    }
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color)
        enc["tooltip"].append(alt.Tooltip(f"{color}:N"))
    chart = alt.Chart(frame).mark_line().encode(**enc).properties(height=height)
    if rule is not None:
        chart = chart + alt.Chart(pd.DataFrame({"y": [rule]})).mark_rule(strokeDash=[4, 4], color="gray").encode(
            y="y:Q")
    return chart


def bar_height(n_bars: int, per_bar: int = 30, axis: int = 70) -> int:
    """Total height of a horizontal bar chart: Streamlit sizes the whole chart, axes included."""
    return max(140, axis + per_bar * int(n_bars))


def show_chart(chart: alt.Chart) -> None:
    """Full width, at the height set with `.properties(height=...)` (Streamlit does not apply it itself)."""
    height = getattr(chart, "height", None)
    chart = chart.configure_legend(labelLimit=320).configure_axisY(labelOverlap=False, labelLimit=280)
    if isinstance(height, int):
        st.altair_chart(chart, width="stretch", height=height)
    else:
        st.altair_chart(chart, width="stretch")


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns that hold whole days shown as dates (DuckDB DATE columns arrive as datetime64)."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) and s.notna().any():
            if (s.dropna() == s.dropna().dt.normalize()).all():
                out[col] = s.dt.date
    return out


def table(frame: pd.DataFrame, fit: bool = False, **kwargs) -> None:
    """st.dataframe, full width, no index, dates tidied; `fit`: tall enough for every row (up to 30)."""
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("width", "stretch")
    if fit:
        kwargs.setdefault("height", 38 + 35 * min(len(frame), 30))
    st.dataframe(tidy(frame), **kwargs)
