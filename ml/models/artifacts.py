"""Model artifacts on disk: saved in the family's native format, sha256-checked before they are loaded."""

from __future__ import annotations

from pathlib import Path

from ml.models.provenance import sha256_file
from ml.models.registry_store import ArtifactIntegrityError, ModelRecord, RegistryError
from ml.zoo import FAMILIES, CrossSectionalModel, ZooEstimator, _MomentsLinear

PICKLE_NOTE = ("joblib pickle: loading runs code, so load_model refuses any file whose sha256 differs "
               "from the registry's")


def save_artifact(model: CrossSectionalModel, directory: Path) -> tuple[Path, str, str, str]:
    """Write the estimator in its native format into `directory`: (path, format, sha256, note)."""
    directory.mkdir(parents=True, exist_ok=True)
    est: ZooEstimator = model.estimator_
    name = est.save(directory)
    path = directory / name
    fmt = est.artifact_format
    return path, fmt, sha256_file(path), (PICKLE_NOTE if fmt == "joblib" else "")


def _load_estimator(path: Path, fmt: str, family: str, params: dict, features: list[str]) -> ZooEstimator:
    cls = FAMILIES[family]
    if fmt == "json":
        return _MomentsLinear.load(path)
    if fmt in ("lightgbm-text", "xgboost-json", "catboost-cbm"):
        return cls.load_native(path, params, features)
    if fmt in ("joblib", "npz"):  # npz: the family's own arrays (e.g. ml/models/sequence.py)
        return cls.load(path)
    raise RegistryError(f"unknown artifact format {fmt!r}")


def verify_artifact(record: ModelRecord) -> Path:
    """The artifact path after checking its sha256 against the record (ArtifactIntegrityError if not)."""
    path = Path(record.artifact_path)
    if not path.exists():
        raise ArtifactIntegrityError(f"{record.model_id}: artifact {path} is missing")
    actual = sha256_file(path)
    if actual != record.artifact_sha256:
        raise ArtifactIntegrityError(
            f"{record.model_id}: artifact {path} has sha256 {actual}, registry says {record.artifact_sha256}; "
            "refusing to load"
        )
    return path
