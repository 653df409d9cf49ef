"""Turn the simulated matrices into the raw contract's long tables, and write them as parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.contract import MARKET_ETF, TABLES
from ml.data.market_config import SECTORS


def _assemble_tables(
    *,
    calendar,
    symbols,
    live,
    listed,
    delisted,
    sector_of,
    industry_of,
    etf_names,
    prices,
    fundamentals,
    estimates,
    short_interest,
    options,
    insider,
    etf,
    rng,
    tables: tuple[str, ...],
    price_columns: tuple[str, ...],
) -> dict[str, pd.DataFrame]:
    """Turn simulated matrices into long contract tables, dropping anything outside a listing.

    Only the optional `tables` and optional `price_columns` asked for are returned; estimates are
    kept only for names with `estimates["covered"]` (analyst coverage).
    """
    t_days, n = live.shape
    dates = calendar.values.astype("datetime64[D]")
    last_day = t_days - 1

    securities = pd.DataFrame(
        {
            "symbol": symbols,
            "name": [f"Synthetic Corp {s[1:]}" for s in symbols],
            "sector": [SECTORS[s][0] for s in sector_of],
            "industry": industry_of,
            "etf": [etf_names[s] for s in sector_of],
            "listed_date": dates[listed],
            "delisted_date": [dates[d] if d < last_day else None for d in delisted],
        }
    )

    pii, ptt = np.nonzero(live.T)  # symbol-major, so the big tables need no sort
    sym_codes = pd.Categorical.from_codes(pii, categories=symbols)
    price_frame = pd.DataFrame({"date": dates[ptt], "symbol": sym_codes})
    for col in ("open", "high", "low", "close", "vwap"):
        if col != "vwap" or "vwap" in price_columns:
            price_frame[col] = np.round(prices[col][ptt, pii], 4)
    price_frame["volume"] = prices["volume"][ptt, pii]
    if "spread_bps" in price_columns:
        price_frame["spread_bps"] = np.round(prices["spread_bps"][ptt, pii], 3)
    if "order_imbalance" in price_columns:
        price_frame["order_imbalance"] = np.round(prices["order_imbalance"][ptt, pii], 5)
    # rounding may push open/close/vwap a hair outside the range: widen the range, never the prices
    high_col, low_col = price_frame["high"].to_numpy().copy(), price_frame["low"].to_numpy().copy()
    for col in [c for c in ("open", "close", "vwap") if c in price_frame]:
        np.maximum(high_col, price_frame[col].to_numpy(), out=high_col)
        np.minimum(low_col, price_frame[col].to_numpy(), out=low_col)
    price_frame["high"], price_frame["low"] = high_col, low_col

    def visible(day: np.ndarray, sym: np.ndarray) -> np.ndarray:
        return (day >= 0) & (day < t_days) & (day >= listed[sym]) & (day <= delisted[sym])

    # fundamentals
    n_q = fundamentals["report_idx"].shape[1]
    ii, qq = np.meshgrid(np.arange(n), np.arange(n_q), indexing="ij")
    ridx = fundamentals["report_idx"]
    # reports from before the sample are public history for names listed from the start
    keep = visible(ridx, ii) | ((ridx == -1) & (listed[ii] == 0))
    fund = pd.DataFrame(
        {
            "symbol": symbols[ii[keep]],
            "period_end": fundamentals["q_ends"].values.astype("datetime64[D]")[qq[keep]],
            "report_date": fundamentals["report_dates"][keep],
        }
    )
    for col in (
        "eps",
        "revenue",
        "net_income",
        "operating_cash_flow",
        "total_assets",
        "total_liabilities",
        "book_equity",
        "shares_outstanding",
    ):
        fund[col] = np.round(np.asarray(fundamentals[col])[keep], 4)

    # estimates
    sidx = estimates["snap_idx"]
    i3 = np.broadcast_to(np.arange(n)[:, None, None], sidx.shape)
    q3 = np.broadcast_to(np.arange(n_q)[None, :, None], sidx.shape)
    keep = visible(sidx, i3)
    if not estimates["covered"].all():
        keep &= estimates["covered"][i3]
    est = pd.DataFrame(
        {
            "symbol": symbols[i3[keep]],
            "period_end": fundamentals["q_ends"].values.astype("datetime64[D]")[q3[keep]],
            "as_of_date": dates[np.clip(sidx[keep], 0, last_day)],
            "consensus_eps": np.round(estimates["consensus"][keep], 4),
            "eps_std": np.round(estimates["eps_std"][keep], 4),
            "n_analysts": estimates["n_analysts"][i3[keep]].astype("int64"),
        }
    )

    # short interest
    si = short_interest
    kk, ii = np.meshgrid(np.arange(len(si["settle_idx"])), np.arange(n), indexing="ij")
    settle = si["settle_idx"][kk]
    publish = si["publish_idx"][kk]
    keep = visible(publish, ii) & (settle >= listed[ii])
    vol_cum = np.cumsum(np.vstack([np.zeros((1, n)), si["volume"]]), axis=0)
    start = np.maximum(settle - 19, 0)
    adv = (vol_cum[settle + 1, ii] - vol_cum[start, ii]) / (settle + 1 - start)
    short = pd.DataFrame(
        {
            "symbol": symbols[ii[keep]],
            "settlement_date": dates[settle[keep]],
            "publish_date": dates[np.minimum(publish[keep], last_day)],
            "shares_short": np.round(si["si_ratio"][kk, ii][keep] * si["shares_out"][ii[keep]]),
            "avg_daily_volume": np.round(adv[keep]),
        }
    )

    options_iv = pd.DataFrame(
        {
            "date": dates[ptt],
            "symbol": sym_codes,
            "iv_call_30d": np.round(options["iv_call"][ptt, pii], 5),
            "iv_put_30d": np.round(options["iv_put"][ptt, pii], 5),
        }
    )

    # insider trades: one row per trade
    frames = []
    for side, counts, lags in (
        ("B", insider["buys"], insider["lag_buy"]),
        ("S", insider["sells"], insider["lag_sell"]),
    ):
        tt, ii = np.nonzero(counts)
        reps = counts[tt, ii]
        tt, ii = np.repeat(tt, reps), np.repeat(ii, reps)
        filing = tt + lags[tt, ii]
        keep = visible(filing, ii)
        tt, ii, filing = tt[keep], ii[keep], filing[keep]
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbols[ii],
                    "trade_date": dates[tt],
                    "filing_date": dates[filing],
                    "shares": np.round(np.exp(rng.normal(np.log(20000), 1.0, len(tt)))),
                    "price": np.round(insider["close"][tt, ii], 4),
                    "side": side,
                }
            )
        )
    insider_trades = pd.concat(frames, ignore_index=True)

    all_etfs = list(etf_names) + [MARKET_ETF]
    tt, ee = np.meshgrid(np.arange(t_days), np.arange(len(all_etfs)), indexing="ij")
    etf_prices = pd.DataFrame(
        {
            "date": dates[tt.ravel()],
            "etf": np.array(all_etfs)[ee.ravel()],
            "close": np.round(etf["close"].ravel(), 4),
            "volume": etf["volume"].ravel(),
        }
    )
    etf_flows = pd.DataFrame(
        {
            "date": dates[tt.ravel()],
            "etf": np.array(all_etfs)[ee.ravel()],
            "net_flow_usd": np.round(etf["net_flow_usd"].ravel(), 0),
        }
    )

    out = {
        "securities": securities,
        "prices": price_frame,
        "etf_prices": etf_prices,
        "etf_flows": etf_flows,
        "fundamentals": fund,
        "estimates": est,
        "short_interest": short,
        "options_iv": options_iv,
        "insider_trades": insider_trades,
    }
    out = {name: frame for name, frame in out.items() if name in ("securities", "prices") or name in tables}
    presorted = {"prices", "options_iv"}
    for name, frame in out.items():
        table = TABLES[name]
        columns = [c for c in table.columns if c in frame]
        if name in presorted:
            out[name] = frame[columns]
            continue
        sort_cols = list(table.key) or [
            c for c in frame.columns if c in ("symbol", "trade_date", "filing_date", "side")
        ]
        out[name] = frame[columns].sort_values(sort_cols, kind="stable").reset_index(drop=True)
    return out


# ----------------------------------------------------------------------------------------------
# writing


def _arrow_schema(name: str, columns: list[str] | None = None) -> pa.Schema:
    types = {
        "date": pa.date32(),
        "str": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "side": pa.string(),
    }
    return pa.schema(
        [(c, types[t]) for c, t in TABLES[name].columns.items() if columns is None or c in columns]
    )


def to_arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    """A contract table as Arrow with the contract's exact types (dates as date32)."""
    schema = _arrow_schema(name, list(frame.columns))
    arrays = []
    for fld in schema:
        col = frame[fld.name]
        if pa.types.is_date32(fld.type):
            values = pd.to_datetime(col).to_numpy().astype("datetime64[D]")
            arrays.append(pa.array(values, type=pa.date32(), from_pandas=True))
        else:
            arrays.append(pa.array(col, type=fld.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=False)


def write_market_files(market, raw_dir: Path, seed: int) -> None:
    """Write a generated market's raw/ and oracle/ (beside raw/) atomically: staged, then swapped in."""
    import shutil
    import tempfile

    raw_dir = Path(raw_dir)
    oracle_dir = raw_dir.parent / "oracle"
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".aurora-generate-", dir=raw_dir.parent))
    try:
        (staging / "raw").mkdir()
        (staging / "oracle").mkdir()
        for name, frame in market.tables.items():
            _write_parquet(to_arrow(name, frame), staging / "raw" / f"{name}.parquet")
        (staging / "raw" / "_source.json").write_text(
            json.dumps({"source": "synthetic", "seed": seed}, indent=2, sort_keys=True) + "\n"
        )
        for frame, name in ((market.oracle, "expected_returns"), (market.regimes, "regimes")):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            table = table.set_column(0, "date", table.column("date").cast(pa.date32()))
            if "symbol" in frame:
                table = table.set_column(1, "symbol", table.column("symbol").cast(pa.string()))
            _write_parquet(table.replace_schema_metadata(None), staging / "oracle" / f"{name}.parquet")
        (staging / "oracle" / "meta.json").write_text(
            json.dumps(market.meta, indent=2, sort_keys=True) + "\n"
        )
        for target, built in ((raw_dir, staging / "raw"), (oracle_dir, staging / "oracle")):
            backup = staging / f"old-{target.name}"
            if target.exists():
                target.rename(backup)
            built.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
