"""Is the raw data fresh enough to publish *today's* signals?

Why: a data feed that silently stops leaves the latest raw date behind; publishing "today's"
signals from it would trade on old news. Backtests and research on history are unaffected: only the
`publish_signals` stage consults this, and it publishes nothing new from stale data unless told to
(`aurora run --allow-stale`, or `AURORA_ALLOW_STALE=1`).

Which clock is "today":
- `AURORA_AS_OF=YYYY-MM-DD` when set (replays, tests);
- for a synthetic market (`raw/_source.json` says `synthetic`), the simulation's own clock: its last
  day, so a simulated market is never stale against the wall clock it was never tied to;
- otherwise the wall clock's date.

Lateness counts business days (Mon-Fri) after the latest raw price date up to today, inclusive: data
through Friday is 1 business day behind on Monday.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np

from ml.paths import DataPaths, raw_source

DEFAULT_MAX_BUSINESS_DAYS_BEHIND = 3


@dataclass(frozen=True)
class Freshness:
    latest: date
    today: date
    clock: str
    business_days_behind: int
    limit: int

    @property
    def stale(self) -> bool:
        return self.business_days_behind > self.limit

    def message(self) -> str:
        state = "STALE" if self.stale else "fresh"
        return (f"data {state}: latest raw price date {self.latest} is {self.business_days_behind} business "
                f"day(s) behind today {self.today} ({self.clock}; limit {self.limit})")

    def to_dict(self) -> dict:
        return {**asdict(self), "latest": str(self.latest), "today": str(self.today), "stale": self.stale}


def business_days_behind(latest: date, today: date) -> int:
    """Business days strictly after `latest` up to and including `today` (0 when not behind)."""
    if today <= latest:
        return 0
    return int(np.busday_count(np.datetime64(latest, "D") + 1, np.datetime64(today, "D") + 1))


def todays_date(paths: DataPaths, latest: date) -> tuple[date, str]:
    """The date signals are published for, and which clock said so."""
    override = os.environ.get("AURORA_AS_OF")
    if override:
        try:
            return date.fromisoformat(override), "AURORA_AS_OF"
        except ValueError as err:
            raise ValueError(f"AURORA_AS_OF={override!r} is not a date (YYYY-MM-DD)") from err
    if raw_source(paths) == "synthetic":
        return latest, "simulated clock of the synthetic market"
    return date.today(), "wall clock"


def check_freshness(paths: DataPaths, latest: date, limit: int | None = None) -> Freshness:
    """How far the latest raw date trails today's business calendar."""
    if limit is None:  # config/quality.yaml: freshness_max_business_days
        from ml.quality import QualityConfig

        limit = QualityConfig.load().freshness_max_business_days
    limit = int(limit)
    if limit < 0:
        raise ValueError(f"max_business_days_behind must be >= 0, got {limit}")
    today, clock = todays_date(paths, latest)
    return Freshness(latest=latest, today=today, clock=clock,
                     business_days_behind=business_days_behind(latest, today), limit=limit)


def stale_allowed() -> bool:
    """`aurora run --allow-stale` sets AURORA_ALLOW_STALE=1 for the stages it runs."""
    return os.environ.get("AURORA_ALLOW_STALE", "").strip().lower() in ("1", "true", "yes")
