"""The Feast objects at module level, for the `feast` command line (`feast apply`, `feast plan`, ...).

Feast's CLI collects objects from the globals of the repo's Python files; the definitions themselves
are discovered from the marts in `$AURORA_DATA_DIR/features/` by `definitions.build_definitions`.
The Python API (`ml.feature_store.apply`) does not use this file.
"""

from ml.feature_store import cli_objects

globals().update(cli_objects())
