"""Real daily data committed with the repository, as ingest inputs (benchmarks, tests, demos).

`tests/fixtures/sp20_closes.parquet` holds the adjusted closes of 20 US large caps, 1990-2022: skfolio
1.12.2's `datasets/data/sp500_dataset.csv.gz` (BSD-3-Clause) exactly as `pandas.read_csv` reads it
(same columns, dtypes and float bits; the source file's sha256 is in the Parquet metadata), so no
package outside the lock is needed. The dataset has closes only, so the prices written here use
open = high = low = close and a constant volume: no spreads, no OHLC range, no volume signal.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SP20_SECURITIES = ROOT / "tests" / "fixtures" / "sp20_securities.csv"
SP20_CLOSES = ROOT / "tests" / "fixtures" / "sp20_closes.parquet"
SP20_CONSTANT_VOLUME = 1_000_000.0


def sp20_closes() -> pd.DataFrame:
    """The daily adjusted closes (wide: Date as text + one float column per ticker)."""
    if not SP20_CLOSES.is_file():
        raise FileNotFoundError(f"the real 20-stock panel {SP20_CLOSES} is missing (it is committed with the repo)")
    return pd.read_parquet(SP20_CLOSES)


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
