"""Real daily data that ships inside an installed package, as ingest inputs (benchmarks, tests, demos).

skfolio ships the adjusted closes of 20 US large caps, 1990-2022 (`sp500_dataset.csv.gz`). It is read
with pandas from the package's data folder; skfolio itself is never imported (the Makefile installs
it without its solver stack). The dataset has closes only, so the prices written here use
open = high = low = close and a constant volume: no spreads, no OHLC range, no volume signal.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SP20_SECURITIES = ROOT / "tests" / "fixtures" / "sp20_securities.csv"
SP20_CONSTANT_VOLUME = 1_000_000.0


def sp20_closes() -> pd.DataFrame:
    """skfolio's daily adjusted closes (wide: Date + one column per ticker)."""
    spec = importlib.util.find_spec("skfolio")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the real 20-stock panel needs the skfolio package (`make install` adds it)")
    root = Path(next(iter(spec.submodule_search_locations)))
    return pd.read_csv(root / "datasets" / "data" / "sp500_dataset.csv.gz")


def write_sp20_inputs(directory: Path, start: str | None = None) -> dict[str, Path]:
    """Long-format prices CSV (from `start` on, when given) and the securities fixture, for `aurora ingest`."""
    directory.mkdir(parents=True, exist_ok=True)
    wide = sp20_closes()
    if start is not None:
        wide = wide[pd.to_datetime(wide["Date"]) >= pd.Timestamp(start)]
    long = wide.melt(id_vars="Date", var_name="symbol", value_name="close").dropna(subset=["close"])
    prices = pd.DataFrame({"date": long["Date"], "symbol": long["symbol"]})
    for col in ("open", "high", "low", "close"):
        prices[col] = long["close"].to_numpy()
    prices["volume"] = SP20_CONSTANT_VOLUME
    prices.to_csv(directory / "sp20_prices.csv", index=False)
    return {"prices": directory / "sp20_prices.csv", "securities": SP20_SECURITIES}
