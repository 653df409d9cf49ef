"""An analyst adds a whole view and a column, in SQL and YAML only, and both reach Feast and the zoo.

The dbt project is copied to a temporary directory (`AURORA_DBT_PROJECT_DIR`), a new model
`models/features/my_view.sql` and a new column of `price_momentum` are written there, and nothing in
Python is touched: the build publishes the new mart, Feast serves it, the zoo's `views: auto` trains on
it and the trained model's feature list names both new columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.data.views import disabled_views, feature_views, view_specs
from ml.training import ALL_VIEW, frames_from_wide, load_config, train_zoo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sandbox(analyst_sandbox):
    return analyst_sandbox


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
    assert result.research_error is None
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


def test_aurora_features_ranks_the_new_view_and_the_new_column(sandbox, monkeypatch, capsys):
    from flows.cli import main

    project, paths, *_ = sandbox
    monkeypatch.setenv("AURORA_DBT_PROJECT_DIR", str(project))
    monkeypatch.setenv("AURORA_DATA_DIR", str(paths.root))
    assert main(["features", "--top", "0"]) == 0
    text = capsys.readouterr().out
    assert "my_view" in text and "my_ret_3d_mean" in text and "my_new_column" in text

    assert main(["features", "--json", "--view", "my_view"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["feature"] for r in report["features"]} == {"my_ret_3d_mean", "my_close_vs_vwap"}
    assert "my_view" in {v["view_name"] for v in report["views"]}
    row = next(r for r in report["features"] if r["feature"] == "my_ret_3d_mean")
    assert {"mean_ic", "ic_t", "ic_1d", "ic_5d", "ic_21d", "orthogonal_ic", "coverage", "turnover",
            "net_spread_ann"} <= set(row)
    assert row["n_dates"] > 30 and row["coverage"] > 0.9

    assert main(["features", "--feature", "my_new_column"]) == 0
    card = capsys.readouterr().out
    assert "price_momentum.my_new_column" in card and "stability" in card and "most correlated" in card


def test_aurora_features_names_what_is_missing(sandbox, monkeypatch, capsys, tmp_path):
    from flows.cli import main

    project, paths, *_ = sandbox
    monkeypatch.setenv("AURORA_DBT_PROJECT_DIR", str(project))
    monkeypatch.setenv("AURORA_DATA_DIR", str(paths.root))
    assert main(["features", "--view", "no_such_view"]) == 1
    assert "no view 'no_such_view'" in capsys.readouterr().err
    assert main(["features", "--feature", "no_such_feature"]) == 1
    assert "no_such_feature" in capsys.readouterr().err
    monkeypatch.setenv("AURORA_DATA_DIR", str(tmp_path))
    assert main(["features"]) == 1
    assert "aurora build-features" in capsys.readouterr().err


def test_the_apps_features_page_shows_the_new_view_and_the_new_column(sandbox, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from app import data as app_data

    project, paths, *_ = sandbox
    monkeypatch.setenv("AURORA_DBT_PROJECT_DIR", str(project))
    monkeypatch.setenv("AURORA_DATA_DIR", str(paths.root))
    monkeypatch.setenv("AURORA_APP_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    app_data.clear_caches()
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    at.switch_page("pages/features.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    views, ranked = at.dataframe[0].value, at.dataframe[1].value
    assert "my_view" in set(views["view_name"])
    assert {"my_ret_3d_mean", "my_close_vs_vwap", "my_new_column"} <= set(ranked["feature"])
    at.selectbox(key="features_feature").set_value("my_view.my_ret_3d_mean").run()
    assert not at.exception and not at.error
    app_data.clear_caches()
