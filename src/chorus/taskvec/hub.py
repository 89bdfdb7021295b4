"""Sharing task vectors through the Hugging Face Hub (:mod:`chorus.hub`).

A push validates the vector and uploads its files with a generated model card (README.md)
staged outside the vector's folder, so a failed push leaves nothing behind. A pulled
vector is validated (manifest, formats, every sha256) before it is returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..hub import download, upload
from .card import model_card
from .manifest import CLASSSTATS_FILE, DELTAS_FILE, GRAM_FILE, HEAD_FILE, MANIFEST_FILE
from .vector import TaskVector

CARD_FILE = "README.md"
VECTOR_FILES = [MANIFEST_FILE, DELTAS_FILE, HEAD_FILE, GRAM_FILE, CLASSSTATS_FILE]
SHARED_FILES = VECTOR_FILES + [CARD_FILE]


def push(directory: str | Path, repo_id: str, *, api: Any | None = None, private: bool | None = None,
         commit_message: str | None = None) -> Any:
    """Validate the vector in ``directory`` and upload its files with its model card to the
    model repo ``repo_id`` (created if missing). Returns the commit info."""
    directory = Path(directory)
    vector = TaskVector.load(directory)
    files: dict[str, str | Path] = {name: directory / name for name in VECTOR_FILES if (directory / name).is_file()}
    files[CARD_FILE] = model_card(vector.manifest, repo_id)
    message = commit_message or f"chorus task vector {vector.manifest.group or ''}".strip()
    return upload(directory, repo_id, files, api=api, private=private, commit_message=message)


def pull(repo_id: str, out: str | Path, *, api: Any | None = None, revision: str | None = None) -> TaskVector:
    """Download the task vector of ``repo_id`` into ``out`` and load it (fully validated)."""
    return TaskVector.load(download(repo_id, SHARED_FILES, out=out, api=api, revision=revision))
