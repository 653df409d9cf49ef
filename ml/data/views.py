"""The feature views, discovered from the dbt project: no Python file names them.

Convention: every model in `models/features/` other than `labels` is a feature view, named after its
file. What a view cannot be built without is declared where dbt reads it, as `needs:` tags:

    {{ config(tags=['needs:fundamentals', 'needs:estimates']) }}     -- in the model's SQL, or
    config: {tags: ['needs:prices.vwap']}                            -- in its YAML entry

(`needs:<table>` for an optional raw table, `needs:prices.<column>` for an optional price column). The
YAML entry's `meta` may set `view_order` (the order of views in the `all` view and in listings; views
without one follow, by name) and `feast_ttl_days` (how many calendar days a row may stand in for later
dates in Feast; default 5, enough to bridge weekends and holidays).

Publishing, Feast, the quality gate, the zoo (`views: auto`) and `all` read `feature_views()`; drift and
the app read whatever marts were published. The project directory is the repository's, or
`$AURORA_DBT_PROJECT_DIR` (a copy of the project, e.g. an analyst's sandbox or a test).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_DIR = Path(__file__).resolve().parents[2]
FEATURES_SUBDIR = Path("models") / "features"
LABELS = "labels"
DEFAULT_TTL_DAYS = 5
_NEEDS = re.compile(r"needs:([A-Za-z0-9_.]+)")
_CONFIG_CALL = re.compile(r"\{\{\s*config\((.*?)\)\s*\}\}", re.S)


@dataclass(frozen=True)
class ViewSpec:
    """One feature view as the dbt project declares it."""

    name: str
    requires: tuple[str, ...]
    order: float
    ttl_days: int
    sql_path: Path


def project_dir() -> Path:
    """The dbt project in use: `$AURORA_DBT_PROJECT_DIR`, else the repository."""
    return Path(os.environ.get("AURORA_DBT_PROJECT_DIR") or REPO_DIR).resolve()


def _yaml_entry(sql_path: Path) -> dict:
    for yml in (sql_path.with_suffix(".yml"), sql_path.with_suffix(".yaml")):
        if yml.exists():
            doc = yaml.safe_load(yml.read_text()) or {}
            for model in doc.get("models") or []:
                if model.get("name") == sql_path.stem:
                    return model
    return {}


def _sql_needs(sql: str) -> list[str]:
    return [need for call in _CONFIG_CALL.findall(sql) for need in _NEEDS.findall(call)]


def view_specs(project: Path | None = None) -> dict[str, ViewSpec]:
    """Every feature view of the project, in view order."""
    folder = (project or project_dir()) / FEATURES_SUBDIR
    specs = []
    for sql_path in sorted(folder.glob("*.sql")):
        if sql_path.stem == LABELS:
            continue
        entry = _yaml_entry(sql_path)
        config, meta = entry.get("config") or {}, entry.get("meta") or (entry.get("config") or {}).get("meta") or {}
        tags = [str(t) for t in (config.get("tags") or [])]
        needs = _sql_needs(sql_path.read_text()) + [m for t in tags for m in _NEEDS.findall(t)]
        specs.append(ViewSpec(
            name=sql_path.stem,
            requires=tuple(dict.fromkeys(needs)),
            order=float(meta.get("view_order", float("inf"))),
            ttl_days=int(meta.get("feast_ttl_days", DEFAULT_TTL_DAYS)),
            sql_path=sql_path,
        ))
    specs.sort(key=lambda s: (s.order, s.name))
    return {s.name: s for s in specs}


def feature_views(project: Path | None = None) -> tuple[str, ...]:
    """The feature views' names, in view order."""
    return tuple(view_specs(project))


def view_requires(project: Path | None = None) -> dict[str, tuple[str, ...]]:
    """Each view's `needs:` inputs (optional tables, `prices.<column>`)."""
    return {name: spec.requires for name, spec in view_specs(project).items()}


def disabled_views(present_tables: set[str], price_columns: set[str],
                   project: Path | None = None) -> dict[str, list[str]]:
    """Feature views that the available inputs cannot feed, with what is missing for each."""
    have = set(present_tables) | {f"prices.{c}" for c in price_columns}
    missing = {v: [r for r in reqs if r not in have] for v, reqs in view_requires(project).items()}
    return {v: m for v, m in missing.items() if m}
