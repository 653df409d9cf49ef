"""An analyst adds a whole view and a column, in SQL and YAML only, and both reach Feast and the zoo.

The dbt project is copied to a temporary directory (`AURORA_DBT_PROJECT_DIR`), a new model
`models/features/my_view.sql` and a new column of `price_momentum` are written there, and nothing in
Python is touched: the build publishes the new mart, Feast serves it, the zoo's `views: auto` trains on
it and the trained model's feature list names both new columns.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml import feature_store
from ml.data.views import disabled_views, feature_views, view_specs
from ml.market import MarketConfig, write_market
from ml.paths import DataPaths
from ml.training import ALL_VIEW, frames_from_wide, load_config, train_zoo

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
                   + "\n      - name: my_new_column\n        description: Today's return against the week's mean.\n")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyst")
    project = _copy_project(root / "project")
    _add_view_and_column(project)
    paths = DataPaths(root / "data")
    write_market(MarketConfig(n_symbols=30, n_days=300, seed=5), paths.raw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AURORA_DBT_PROJECT_DIR", str(project))
        from ml.warehouse import build_features

        result = build_features(paths, log=lambda *_a, **_k: None)
        feature_store.apply(paths)
        wide = feature_store.training_frame(paths, feature_store.entity_frame(paths), with_labels=True)
        yield project, paths, result, wide


def test_the_new_view_is_discovered_from_the_project_with_its_needs_and_ttl(sandbox):
    project, *_ = sandbox
    specs = view_specs(project)
    assert feature_views(project)[:5] == ("price_momentum", "sector_neutral", "fundamental", "microstructure",
                                          "alt_data")
    assert feature_views(project)[-1] == "my_view"
    assert specs["my_view"].requires == ("prices.vwap",) and specs["my_view"].ttl_days == 7
    assert "my_view" in disabled_views({"prices"}, set(), project)
    assert "my_view" not in feature_views(REPO)  # the repository itself is untouched


def test_the_build_publishes_the_new_mart_and_feast_serves_both_new_columns(sandbox):
    _, paths, result, wide = sandbox
    assert "my_view" in result.views_built and (paths.features / "my_view.parquet").exists()
    assert "my_view__my_ret_3d_mean" in wide and "price_momentum__my_new_column" in wide
    assert wide["my_view__my_ret_3d_mean"].notna().mean() > 0.9


def test_the_zoo_trains_on_the_new_view_and_the_new_column_with_views_auto(sandbox, monkeypatch):
    project, _, _, wide = sandbox
    monkeypatch.setenv("AURORA_DBT_PROJECT_DIR", str(project))
    cfg = load_config({"cv": {"min_train_days": 120, "tune_every": 4}})
    assert cfg["views"][-2:] == ["my_view", ALL_VIEW]
    result = train_zoo(frames_from_wide(wide), cfg, log=None, families=["ridge"])
    by_view = {s.view: s for s in result.specs}
    assert by_view["my_view"].features == ["my_view__my_ret_3d_mean", "my_view__my_close_vs_vwap"]
    assert "price_momentum__my_new_column" in by_view["price_momentum"].features
    assert {"my_view__my_ret_3d_mean", "price_momentum__my_new_column"} <= set(by_view[ALL_VIEW].features)
    assert by_view["my_view"].final_model is not None
