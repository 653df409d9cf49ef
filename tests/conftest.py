"""Shared fixtures.

`analyst_sandbox` (session-wide, built once): a copy of the dbt project in which an analyst added a
whole view (`models/features/my_view.sql` + YAML) and a column of `price_momentum`, in SQL and YAML
only, built on a small market: features, Feast registry, the research marts and a point-in-time training
frame. tests/test_view_discovery.py follows the new view and column to Feast, the zoo, `aurora features`
and the app; tests/test_research_marts.py checks the research marts' figures against pandas.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml import feature_store
from ml.market import MarketConfig, write_market
from ml.paths import DataPaths

REPO = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "selectors.yml", "models", "macros", "tests/dbt")

MY_VIEW_SQL = """{{ config(tags=['needs:prices.vwap']) }}

-- my_view: an analyst's new view, the 3-day mean return and the close against the VWAP.
select
    symbol,
    date,
    {{ rolling('avg', 'ret_1d', 3) }} as my_ret_3d_mean,
    {{ simple_return('close', 'vwap') }} as my_close_vs_vwap
from {{ ref('int_returns_computed') }}
order by date, symbol
"""

MY_VIEW_YML = """version: 2

models:
  - name: my_view
    config:
      meta: {feast_ttl_days: 7}
    description: An analyst's new view.
    columns:
      - name: symbol
        description: Ticker.
      - name: date
        description: As-of date.
      - name: my_ret_3d_mean
        description: Mean daily return over the last 3 days.
      - name: my_close_vs_vwap
        description: Close / VWAP - 1.
"""


def _copy_project(target: Path) -> Path:
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _add_view_and_column(project: Path) -> None:
    features = project / "models" / "features"
    (features / "my_view.sql").write_text(MY_VIEW_SQL)
    (features / "my_view.yml").write_text(MY_VIEW_YML)
    sql = features / "price_momentum.sql"
    sql.write_text(sql.read_text().replace("select * from features\n",
                                           "select *, ret_1d - ret_5d / 5 as my_new_column from features\n"))
    yml = features / "price_momentum.yml"
    yml.write_text(yml.read_text().rstrip("\n")
                   + "\n      - name: my_new_column\n        data_type: double"
                   "\n        description: Today's return against the week's mean.\n")


@pytest.fixture(scope="session")
def analyst_sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyst")
    project = _copy_project(root / "project")
    _add_view_and_column(project)
    paths = DataPaths(root / "data")
    write_market(MarketConfig(n_symbols=30, n_days=300, seed=5), paths.raw)
    # the sandbox project is in force only while building: tests that need it set it themselves, and
    # the rest of the session keeps seeing the repository's project
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AURORA_DBT_PROJECT_DIR", str(project))
        from ml.warehouse import build_features

        result = build_features(paths, log=lambda *_a, **_k: None)   # the research marts included
        feature_store.apply(paths)
        wide = feature_store.training_frame(paths, feature_store.entity_frame(paths), with_labels=True)
    return project, paths, result, wide


# The files that run whole pipelines, longest first (seconds of one clean-clone `make test`, BENCHMARKS.md
# "make test on two pytest workers"). `make test` hands whole files to two pytest-xdist workers in
# collection order (`--dist loadfile --no-loadscope-reorder`); starting with the longest lets the many
# short files fill in behind them, so the two workers finish together instead of one waiting on a long
# file that came last.
LONGEST_FIRST = ("test_flows.py", "test_scenario_bench.py", "test_schedules.py", "test_warehouse.py",
                 "test_lifecycle.py", "test_point_in_time.py", "test_app.py", "test_research_marts.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), order[id(item)]))
