"""Sharing model folders through the Hugging Face Hub (:mod:`chorus.hub`).

A push loads the model first (every file validated) and uploads ``config.json``,
``model.safetensors``, ``merge.json`` when present and a model card naming the repo; a
folder in the first layout is converted on the way (in a temporary folder). Nothing is
written into the folder being pushed, so a failed push leaves it as it was. A pulled model
is loaded, so every file is validated before it is returned.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..hub import download, upload
from .card import model_card
from .classifier import ClassifierModel
from .errors import ModelFileError
from .layout import CARD_FILE, CONFIG_FILE, HUB_FILES, WEIGHTS_FILE, read_config

MERGE_RECORD = "merge.json"


def push_model(directory: str | Path, repo_id: str, *, api: Any | None = None, private: bool | None = None,
               commit_message: str | None = None) -> Any:
    """Upload the model in ``directory`` (either layout) to model repo ``repo_id`` (created
    if missing); return the commit info."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(directory, "not a folder (push takes a model folder)")
    model = ClassifierModel.from_pretrained(directory)
    message = commit_message or f"chorus model: {', '.join(model.labels[:5])}{' ...' if len(model.labels) > 5 else ''}"
    with tempfile.TemporaryDirectory(prefix="chorus-model-") as converted:
        folder = directory if (directory / CONFIG_FILE).is_file() else model.save_pretrained(converted)
        files: dict[str, str | Path] = {name: folder / name for name in (CONFIG_FILE, WEIGHTS_FILE)}
        if (directory / MERGE_RECORD).is_file():
            files[MERGE_RECORD] = directory / MERGE_RECORD
        files[CARD_FILE] = model_card(read_config(folder), repo_id)
        return upload(directory, repo_id, files, api=api, private=private, commit_message=message)


def pull_model(repo_id: str, out: str | Path, *, api: Any | None = None, revision: str | None = None
               ) -> ClassifierModel:
    """Download the model of ``repo_id`` into ``out`` and load it (every file validated)."""
    return ClassifierModel.from_pretrained(download(repo_id, HUB_FILES, out=out, api=api, revision=revision))
