"""The app's pages: file (relative to app/), title, icon and URL path. The first page is the default
and is served at the root URL; the others at `/<url path>`."""

from __future__ import annotations

PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("pages/overview.py", "Overview", ":material/dashboard:", "overview"),
    ("pages/models.py", "Models", ":material/model_training:", "models"),
    ("pages/calibration.py", "Calibration", ":material/tune:", "calibration"),
    ("pages/backtest.py", "Backtest", ":material/show_chart:", "backtest"),
    ("pages/features.py", "Features", ":material/query_stats:", "features"),
    ("pages/importance.py", "Feature importance", ":material/insights:", "importance"),
    ("pages/data_quality.py", "Data quality", ":material/fact_check:", "data_quality"),
    ("pages/signals.py", "Signals", ":material/list_alt:", "signals"),
)


def url_path(title: str) -> str:
    """The URL path of a page ('' for the default page)."""
    for i, (_, t, _, url) in enumerate(PAGES):
        if t == title:
            return "" if i == 0 else url
    raise KeyError(title)
