"""Build a held-out real OHLCV panel (the data is not committed) as `aurora ingest` inputs.

Source: the "Huge Stock Market Dataset" (Boris Marjanovic, Kaggle): daily OHLCV of US stocks and ETFs up to
2017-11-10, adjusted for splits and dividends. It is read from a git checkout that carries it under `Stocks/`
and `ETFs/` (e.g. github.com/guyr18/stock-market-big-data). The rule was fixed before any result was seen.

The panel:
- **names:** the S&P 500 members that `pytickersymbols` knows, with prices on both 2006-01-03 and 2017-11-10
  (survivors only); 100 of them drawn with numpy seed 0;
- **prices:** 2006-01-03 to 2017-11-10, as they are. A few rows have a high below the low, which `aurora
  ingest` refuses, naming file, line and column. `--repair` sets such a high or low to the bar's extreme;
  BENCHMARKS.md's run was made that way;
- **securities:** name and sector from `pytickersymbols` (the sector is the GICS sector in its
  `industries`); the industry is the sector; the etf is the sector's SPDR fund;
- **etf_prices:** SPY and the sector SPDR funds the dataset has. XLC and XLRE are missing, so ingest builds
  those sectors' returns from the panel.

Usage: python bench/make_us100_panel.py REPO OUT [--repair], then
       AURORA_DATA_DIR=D aurora ingest --prices OUT/prices.csv --securities OUT/securities.csv \\
           --etf-prices OUT/etf_prices.csv
       AURORA_DATA_DIR=D aurora run --no-prefect
"""

from __future__ import annotations

import argparse
import io
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

START, END = "2006-01-03", "2017-11-10"
N_NAMES, SEED = 100, 0
SECTOR_ETF = {"Communication Services": "XLC", "Consumer Discretionary": "XLY", "Consumer Staples": "XLP",
              "Energy": "XLE", "Financials": "XLF", "Health Care": "XLV", "Industrials": "XLI",
              "Information Technology": "XLK", "Materials": "XLB", "Real Estate": "XLRE", "Utilities": "XLU"}


def show(repo: str, path: str) -> pd.DataFrame | None:
    """One file of the checkout's HEAD as a frame (None when it is absent)."""
    done = subprocess.run(["git", "-C", repo, "show", f"HEAD:{path}"], capture_output=True, text=True)
    return None if done.returncode else pd.read_csv(io.StringIO(done.stdout))


def members(repo: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """{symbol: file}, {symbol: sector}, {symbol: name} of the S&P 500 members the dataset has."""
    from pytickersymbols import PyTickerSymbols

    listing = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", "HEAD", "Stocks/"],
                             capture_output=True, text=True, check=True).stdout.split()
    files = {p.split("/")[1].removesuffix(".us.txt").upper(): p for p in listing}
    sector, name = {}, {}
    for stock in PyTickerSymbols().get_stocks_by_index("S&P 500"):
        gics = [i for i in stock.get("industries", []) if i in SECTOR_ETF]
        if gics and stock["symbol"] in files:
            sector[stock["symbol"]], name[stock["symbol"]] = gics[0], stock["name"]
    return files, sector, name


def repair_bars(prices: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Set a high below the bar's other prices to their maximum (a low above them to their minimum)."""
    out = prices.copy()
    high_bad = out["high"] < out[["open", "close", "low"]].max(axis=1)
    out.loc[high_bad, "high"] = out.loc[high_bad, ["open", "close", "low"]].max(axis=1)
    low_bad = out["low"] > out[["open", "close", "high"]].min(axis=1)
    out.loc[low_bad, "low"] = out.loc[low_bad, ["open", "close", "high"]].min(axis=1)
    return out, int(high_bad.sum() + low_bad.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", help="git checkout with the dataset's Stocks/ and ETFs/ folders")
    parser.add_argument("out", help="folder for prices.csv, securities.csv and etf_prices.csv")
    parser.add_argument("--repair", action="store_true", help="repair bars whose high is below their low")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files, sector, name = members(args.repo)
    frames = {}
    for symbol in sorted(sector):
        frame = show(args.repo, files[symbol])
        if frame is not None and len(frame) and frame["Date"].min() <= START and frame["Date"].max() >= END:
            frames[symbol] = frame
    chosen = sorted(np.random.default_rng(SEED).choice(sorted(frames), size=N_NAMES, replace=False))
    print(f"{len(sector)} S&P 500 members in the dataset, {len(frames)} with prices {START}..{END}; {N_NAMES} drawn")
    prices = pd.concat([pd.DataFrame({
        "date": f["Date"], "symbol": s, "open": f["Open"], "high": f["High"], "low": f["Low"], "close": f["Close"],
        "volume": f["Volume"]}) for s in chosen for f in [frames[s][frames[s]["Date"].between(START, END)]]],
        ignore_index=True)
    if args.repair:
        prices, repaired = repair_bars(prices)
        print(f"repaired {repaired} bars whose high was below their low")
    prices.to_csv(out / "prices.csv", index=False)
    securities = pd.DataFrame({"symbol": chosen, "name": [name[s] for s in chosen],
                               "sector": [sector[s] for s in chosen], "industry": [sector[s] for s in chosen],
                               "etf": [SECTOR_ETF[sector[s]] for s in chosen], "listed_date": "",
                               "delisted_date": ""})
    securities.to_csv(out / "securities.csv", index=False)
    etfs = []
    for etf in sorted(set(securities["etf"]) | {"SPY"}):
        frame = show(args.repo, f"ETFs/{etf.lower()}.us.txt")
        if frame is None:
            print(f"no ETF file for {etf}: ingest will build its returns from the panel")
            continue
        frame = frame[frame["Date"].between(START, END)]
        etfs.append(pd.DataFrame({"date": frame["Date"], "etf": etf, "close": frame["Close"], "volume": frame["Volume"]}))
    pd.concat(etfs, ignore_index=True).to_csv(out / "etf_prices.csv", index=False)
    print(f"wrote {len(prices):,} price rows ({prices['date'].nunique()} dates), {len(securities)} securities, "
          f"{len(etfs)} ETFs to {out}")


if __name__ == "__main__":
    main()
