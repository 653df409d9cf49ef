"""The dbt docs of a data directory: models, columns, tests, exposures and the lineage graph.

`generate_docs(paths)` runs `dbt docs generate` against the data directory's warehouse (the catalog
reads the built tables, so build the features first) into `<data>/dbt/target`; `serve_docs` serves that
site (blocking) for `aurora docs`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ml.paths import DataPaths


class DocsError(RuntimeError):
    """The docs could not be generated (no warehouse yet, or dbt failed)."""


def generate_docs(paths: DataPaths, log: Callable[[str], None] = print) -> Path:
    """Write the docs site into `<data>/dbt/target` and return that folder."""
    from ml.data.dbt_runner import _dbt_dirs, _invoke_dbt
    from ml.data.raw_inputs import inspect_raw

    if not paths.warehouse.exists():
        raise DocsError(f"no warehouse at {paths.warehouse}: run `aurora build-features` first")
    target, _ = _dbt_dirs(paths)
    res = _invoke_dbt(["docs", "generate"], paths, inspect_raw(paths), paths.features)
    if not res.success or not (target / "index.html").exists():
        raise DocsError(f"dbt docs generate failed: {res.exception or 'see ' + str(paths.root / 'dbt' / 'logs')}")
    log(f"dbt docs written to {target} (index.html, manifest.json, catalog.json)")
    return target


def serve_docs(paths: DataPaths, port: int = 8080, log: Callable[[str], None] = print) -> None:
    """Serve the generated site on http://localhost:<port> until interrupted."""
    import functools
    import http.server

    target = generate_docs(paths, log)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(target))
    with http.server.ThreadingHTTPServer(("", port), handler) as server:
        log(f"serving the dbt docs (lineage: the graph icon) on http://localhost:{port}; Ctrl-C stops")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
