"""Aurora monitoring app (Streamlit): `streamlit run app/main.py` with `AURORA_DATA_DIR` set.

Pages (URL path): Overview (/), Models (/models), Calibration (/calibration), Backtest (/backtest),
Features (/features), Feature importance (/importance),
Data quality (/data_quality), Signals (/signals). The app only reads: see
`app/data.py` for how it opens the warehouse read-only and keeps working while a flow writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import data  # noqa: E402
from app.navigation import PAGES  # noqa: E402

st.set_page_config(page_title="Aurora", page_icon=":material/insights:", layout="wide")

page = st.navigation([
    st.Page(file, title=title, icon=icon, url_path=url, default=(i == 0))
    for i, (file, title, icon, url) in enumerate(PAGES)
])

with st.sidebar:
    paths = data.data_paths()
    st.caption(f"Data directory  \n`{paths.root}`")
    if not paths.warehouse.exists():
        st.caption("No warehouse yet — run `aurora run`.")
    if st.button("Reload data", icon=":material/refresh:", key="reload_data"):
        data.clear_caches()
        st.rerun()

page.run()
