"""What a registered model was trained from, as hashes: file sha256s, the data snapshot, feature versions."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ml.paths import DataPaths


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def data_snapshot_hash(files: Iterable[str | os.PathLike]) -> str:
    """sha256 over (file name, sha256 of its bytes) of each file, in name order: a pure function of
    the files' contents and names (not their directory or timestamps)."""
    digest = hashlib.sha256()
    for path in sorted((Path(f) for f in files), key=lambda p: p.name):
        digest.update(f"{path.name}:{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def view_files(paths: DataPaths, view: str, views: Iterable[str] | None = None) -> list[Path]:
    """The mart files a model of `view` was trained from: the view's parquet (every view's for `all`)
    plus labels.parquet."""
    if view == "all":
        names = list(views) if views is not None else [p.stem for p in paths.features.glob("*.parquet")
                                                       if p.stem != "labels"]
    else:
        names = [view]
    files = [paths.features / f"{n}.parquet" for n in names] + [paths.features / "labels.parquet"]
    return [f for f in files if f.exists()]


def feature_versions_for(view: str, features: list[str], checksums: Mapping[str, str]) -> dict[str, str]:
    """The checksums of the marts a model reads: its view's (each prefix's for `all`) and labels'."""
    views = {str(f).split("__", 1)[0] for f in features if "__" in str(f)} or {view}
    wanted = (views | {"labels"}) if view == "all" else {view, "labels"}
    return {v: str(checksums[v]) for v in sorted(wanted) if v in checksums}
