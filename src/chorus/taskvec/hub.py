"""Sharing task vectors through the Hugging Face Hub (``huggingface_hub``, imported lazily).

``api`` arguments accept any object with ``create_repo``, ``upload_folder`` and
``snapshot_download`` like :class:`huggingface_hub.HfApi` (tests pass a local fake).
A pulled vector is validated (manifest, formats, every sha256) before it is returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fileio import write_text
from .card import model_card
from .manifest import CLASSSTATS_FILE, DELTAS_FILE, GRAM_FILE, HEAD_FILE, MANIFEST_FILE
from .vector import TaskVector
from .errors import HubError

CARD_FILE = "README.md"
SHARED_FILES = [MANIFEST_FILE, DELTAS_FILE, HEAD_FILE, GRAM_FILE, CLASSSTATS_FILE, CARD_FILE]


def _api(api: Any | None) -> Any:
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi()


def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub import errors

    return (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled,
            errors.HFValidationError, OSError)


def push(directory: str | Path, repo_id: str, *, api: Any | None = None, private: bool | None = None,
         commit_message: str | None = None) -> Any:
    """Validate the vector in ``directory``, write its model card (README.md) and upload the
    four files to the model repo ``repo_id`` (created if missing). Returns the commit info."""
    directory = Path(directory)
    vector = TaskVector.load(directory)
    write_text(directory / CARD_FILE, model_card(vector.manifest, repo_id))
    client = _api(api)
    try:
        client.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        message = commit_message or f"chorus task vector {vector.manifest.group or ''}".strip()
        return client.upload_folder(repo_id=repo_id, folder_path=str(directory), repo_type="model",
                                    allow_patterns=SHARED_FILES, commit_message=message)
    except _hub_errors() as exc:
        raise HubError(f"could not push {directory} to {repo_id}: {exc}") from exc


def pull(repo_id: str, out: str | Path, *, api: Any | None = None, revision: str | None = None) -> TaskVector:
    """Download the task vector of ``repo_id`` into ``out`` and load it (fully validated)."""
    client = _api(api)
    try:
        path = client.snapshot_download(repo_id, repo_type="model", revision=revision, local_dir=str(out),
                                        allow_patterns=SHARED_FILES)
    except _hub_errors() as exc:
        raise HubError(f"could not pull {repo_id}: {exc}") from exc
    return TaskVector.load(Path(path))
