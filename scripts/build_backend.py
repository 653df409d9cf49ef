"""Aurora's PEP 517 build backend: setuptools for the editable install only; wheels and sdists refused.

Aurora runs from its repository checkout. `make install` (or `pip install -e .`) installs it editable:
site-packages gets the metadata, the `aurora` console script and setuptools' editable finder (a `.pth`
file and a small module mapping exactly `ml`, `flows` and `app` to their folders in the checkout);
no package directory is copied into site-packages. The three names are still importable in that
environment: that is what the imports and the console script need, short of a rename.

A wheel is refused because it would not work and would install generic top-level names: the code
reads the dbt project (`models/`, `macros/`, `dbt_project.yml`, `profiles.yml`, `selectors.yml`),
`config/`, `feature_repo/`, `docs/` and the app's pages beside the packages in the checkout, and the
packages are named `ml`, `flows` and `app`. Shipping Aurora as a wheel needs them moved under one
`aurora` package first.
"""

from __future__ import annotations

from setuptools import build_meta as _setuptools

REFUSED = (
    "Aurora is not distributed as a wheel or sdist: it runs from its git checkout, installed editable "
    "(`make install`, or `pip install -e .` / `uv pip install -e .` in the checkout). A wheel would lack "
    "the dbt project, config/, feature_repo/ and the app pages, and would put the generic packages "
    "`ml`, `flows` and `app` into site-packages (see scripts/build_backend.py)."
)

get_requires_for_build_editable = _setuptools.get_requires_for_build_editable
prepare_metadata_for_build_editable = _setuptools.prepare_metadata_for_build_editable
build_editable = _setuptools.build_editable


def _refuse(*_args, **_kwargs):
    raise RuntimeError(REFUSED)


get_requires_for_build_wheel = _refuse
prepare_metadata_for_build_wheel = _refuse
build_wheel = _refuse
get_requires_for_build_sdist = _refuse
build_sdist = _refuse
