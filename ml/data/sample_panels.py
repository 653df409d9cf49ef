"""Real daily data committed with the repository, as ingest inputs (benchmarks, tests, demos).

Two panels of daily adjusted closes, each beside a securities table (`tests/fixtures/`, whose README and
`make_*.py` scripts say where each came from and how it was built):
- `sp20`: 20 US large caps, 1990-2022: skfolio 1.12.2's `datasets/data/sp500_dataset.csv.gz`
  (BSD-3-Clause) exactly as `pandas.read_csv` reads it (the source file's sha256 is in the Parquet
  metadata), so no package outside the lock is needed;
- `ftse64`: 64 UK large caps (FTSE 100 constituents of 2023), 2000-2023, in pence: the
  skfolio-datasets repository's `ftse100_dataset.csv.gz` (what skfolio's `load_ftse100_dataset` reads).

Both have closes only, so the prices written here use open = high = low = close and a constant volume:
no spreads, no OHLC range, no volume signal. Both are today's survivors (no delisted names).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CONSTANT_VOLUME = 1_000_000.0


@dataclass(frozen=True)
class RealPanel:
    """A committed real panel: wide closes (Date as text + one float column per ticker) and securities."""

    name: str
    description: str

    @property
    def closes_file(self) -> Path:
        return FIXTURES / f"{self.name}_closes.parquet"

    @property
    def securities_file(self) -> Path:
        return FIXTURES / f"{self.name}_securities.csv"


PANELS = {
    "sp20": RealPanel("sp20", "20 US large caps, 1990-2022"),
    "ftse64": RealPanel("ftse64", "64 UK large caps, 2000-2023"),
}


def _panel(name: str) -> RealPanel:
    if name not in PANELS:
        raise KeyError(f"unknown real panel {name!r}; known: {', '.join(PANELS)}")
    return PANELS[name]


def panel_closes(name: str) -> pd.DataFrame:
    """The panel's daily adjusted closes (wide: Date as text + one float column per ticker)."""
    panel = _panel(name)
    if not panel.closes_file.is_file():
        raise FileNotFoundError(f"the real panel {panel.closes_file} ({panel.description}) is missing "
                                "(it is committed with the repo)")
    return pd.read_parquet(panel.closes_file)


def write_panel_inputs(name: str, directory: Path, start: str | None = None) -> dict[str, Path]:
    """Long-format prices CSV (from `start` on, when given) and the securities fixture, for `aurora ingest`.

    A missing close (a suspension, a gap in the vendor's file) is left out, not filled."""
    panel = _panel(name)
    directory.mkdir(parents=True, exist_ok=True)
    wide = panel_closes(name)
    if start is not None:
        wide = wide[pd.to_datetime(wide["Date"]) >= pd.Timestamp(start)]
    long = wide.melt(id_vars="Date", var_name="symbol", value_name="close").dropna(subset=["close"])
    prices = pd.DataFrame({"date": long["Date"], "symbol": long["symbol"]})
    for col in ("open", "high", "low", "close"):
        prices[col] = long["close"].to_numpy()
    prices["volume"] = CONSTANT_VOLUME
    path = directory / f"{name}_prices.csv"
    prices.to_csv(path, index=False)
    return {"prices": path, "securities": panel.securities_file}
