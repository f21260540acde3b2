"""Saved churn-risk models: a joblib file plus JSON metadata per model version.

Layout under ``settings.home / "models" / "risk"``::

    20261122T101500123456-3f2a9c/
        model.joblib     the fitted estimator (joblib)
        metadata.json    model_version, saved_at, features, training window, metrics, versions

A version directory is written under a temporary name and renamed when complete, so a reader
never sees half a model. The newest version (by name, which starts with the UTC save time) is
the one scoring uses unless another is asked for.

joblib files are pickles: load only models this keepwell home wrote.
"""

from __future__ import annotations

import json
import platform
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib

from keepwell.config import Settings
from keepwell.errors import InvalidInput, NotFound

__all__ = ["SavedModel", "list_models", "load_model", "models_dir", "save_model"]

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
PACKAGES = ("keepwell", "scikit-learn", "lightgbm", "pandas", "numpy", "joblib")


@dataclass(frozen=True)
class SavedModel:
    """A model loaded from disk with its metadata."""

    model: Any
    metadata: dict[str, Any]
    path: Path

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])


def models_dir(settings: Settings) -> Path:
    """Where risk models of this keepwell home live."""
    return (settings.home / "models" / "risk").resolve()


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def new_version(now: datetime | None = None) -> str:
    """A model version id: UTC save time (to the microsecond) plus a random suffix, so names
    sort by time."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"


def save_model(model: Any, *, settings: Settings, metadata: dict[str, Any]) -> SavedModel:
    """Write ``model`` and ``metadata`` (plus model_version, saved_at, versions) to disk."""
    now = datetime.now(UTC)
    version = new_version(now)
    meta = {
        **metadata,
        "model_version": version,
        "saved_at": now.isoformat(),
        "estimator": type(model).__name__,
        "versions": _versions(),
    }
    try:
        text = json.dumps(meta, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"model metadata is not JSON: {exc}", field="metadata", expected="JSON values"
        ) from exc
    root = models_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{version}"
    tmp.mkdir()
    try:
        joblib.dump(model, tmp / MODEL_FILE)
        (tmp / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
        final = root / version
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SavedModel(model=model, metadata=meta, path=final)


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Metadata of every saved model, oldest first."""
    root = models_dir(settings)
    if not root.is_dir():
        return []
    out = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        meta_file = path / METADATA_FILE
        if meta_file.is_file():
            out.append(json.loads(meta_file.read_text(encoding="utf-8")))
    return out


def load_model(*, settings: Settings, version: str | None = None) -> SavedModel:
    """The saved model ``version`` (default: the newest). Raises :class:`NotFound`."""
    root = models_dir(settings)
    if version is None:
        saved = list_models(settings)
        if not saved:
            raise NotFound(
                f"no trained risk model in {root}", hint="train one with `keepwell risk train`"
            )
        version = str(saved[-1]["model_version"])
    path = root / version
    if not (path / MODEL_FILE).is_file() or not (path / METADATA_FILE).is_file():
        raise NotFound(
            f"no risk model version {version!r} in {root}",
            hint="list the versions with `keepwell risk models`",
        )
    metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    model = joblib.load(path / MODEL_FILE)
    return SavedModel(model=model, metadata=metadata, path=path)
