"""The scenario bench's fast variant: every kind of market at a small size, end to end through `aurora run`.

Markets from other generating processes (and the real 20-stock panel) must pass the data gate and
finish the pipeline; the bench must read a complete row from each. The default market's small run is
`tests/test_flows.py`'s (through Prefect); here the others run two at a time with `--no-prefect`.
"""

from __future__ import annotations

import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_scenarios as bench  # noqa: E402

# Every data shape the pipeline must take: price-only tables, patchy coverage with listings and
# delistings, no alpha at all (models retired, a book that may never trade) and the ingested real panel.
# At this size (40 names x 420 days) `slow` and `wide` are the default market's tables and shape with
# other generator parameters, which a 420-day run cannot tell apart: the full-size bench runs them
# (`make bench-scenarios`), and leaving them out here saves CI about two minutes. The second real panel
# (`real_ftse64`) has the first one's shape (closes only); its ingest is checked in tests/test_ingest.py.
SCENARIOS = ["price_only", "sparse", "no_alpha", bench.REAL]
FULL_SIZE_ONLY = {"default", "slow", "wide", "real_ftse64"}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    work = tmp_path_factory.mktemp("scenarios")

    def one(scenario: str) -> dict:
        data_dir = work / scenario
        bench.prepare(scenario, data_dir, fast=True)
        outcome = bench.run(scenario, data_dir, fast=True, no_prefect=True)
        assert outcome.returncode == 0, f"{scenario}: aurora run failed\n{outcome.log_tail}"
        return bench.collect(outcome)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(SCENARIOS, pool.map(one, SCENARIOS), strict=True))


def test_every_scenario_runs_here_or_in_the_full_bench_only():
    assert set(SCENARIOS) | FULL_SIZE_ONLY == set(bench.SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_pipeline_finishes_on_every_scenario_and_the_bench_reads_a_full_row(rows, scenario):
    row = rows[scenario]
    assert row["ok"] and row["backtest_days"] > 20
    for key in ("rank_ic", "baseline_sharpe_net", "max_drawdown", "gross_exposure",
                "signal_rank_ic", "textbook_best_rank_ic", "signal_minus_textbook_t"):  # the textbook columns too
        assert math.isfinite(row[key]), (scenario, key, row[key])
    if row["gross_exposure"] > 0:  # a Sharpe ratio exists once a position was held (a book may abstain)
        assert math.isfinite(row["sharpe_gross"]) and math.isfinite(row["sharpe_net"]), row
    assert row["models_active"] + row["models_retired"] > 0
    if scenario in ("no_alpha", bench.REAL):  # nothing to share: no oracle, or an oracle of zeros
        assert math.isnan(row["share_of_oracle"])
    else:
        assert math.isfinite(row["oracle_rank_ic"])  # the oracle is scored (slow's is small at this size)


def test_the_scenario_table_renders_every_row(rows):
    table = bench.markdown(list(rows.values()))
    assert len(table.splitlines()) == 2 + len(SCENARIOS)
    assert "failed" not in table
