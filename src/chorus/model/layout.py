"""Where a model folder keeps what, in both layouts, and finding one by path or Hub id.

Current layout (written): ``config.json`` (:class:`~chorus.model.schema.ModelConfig`),
``model.safetensors`` (encoder tensors under ``encoder.``, head ``i`` under
``heads.{i}.weight [classes_i, features]`` / ``heads.{i}.bias [classes_i]``) and ``README.md``
(the model card). First layout (still read): ``model.json``, ``encoder.safetensors``
(unprefixed) and ``heads.safetensors`` (``{i}.weight``, ``{i}.bias``). Every file read is
validated: JSON by the schema, safetensors header and sha256 (never a pickle).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from torch import Tensor

from ..errors import FileProblem
from ..hub import HubError, download, is_hub_id
from ..schema import validation_problems
from ..tensorfile import load_tensors
from .errors import ModelFileError
from .schema import ModelConfig, ModelJson

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
ENCODER_PREFIX = "encoder."
HEADS_PREFIX = "heads."
LEGACY_JSON = "model.json"
LEGACY_ENCODER = "encoder.safetensors"
LEGACY_HEADS = "heads.safetensors"
HUB_FILES = [CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, "merge.json", LEGACY_JSON, LEGACY_ENCODER, LEGACY_HEADS]
"""What a pull fetches from a model repo (either layout, plus a merge's record)."""


def is_model_dir(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a model record of either layout."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() or (path / LEGACY_JSON).is_file()


def record_path(directory: str | Path) -> Path:
    """``config.json`` of ``directory``, or ``model.json`` of a first-layout folder; a
    :class:`ModelFileError` when there is neither."""
    directory = Path(directory)
    if not (directory / CONFIG_FILE).is_file() and (directory / LEGACY_JSON).is_file():
        return directory / LEGACY_JSON
    return directory / CONFIG_FILE


def read_config(directory: str | Path) -> ModelConfig:
    """The validated record of the model in ``directory`` (a :class:`ModelJson` for the first layout)."""
    path = record_path(directory)
    return parse_json_file(path, ModelJson if path.name == LEGACY_JSON else ModelConfig, ModelFileError)


def read_weights(directory: str | Path, config: ModelConfig) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``(encoder state, head tensors "{i}.weight"/"{i}.bias")`` of the model in ``directory``,
    each file checked against its sha256 in ``config.files``."""
    directory = Path(directory)
    legacy = isinstance(config, ModelJson)
    names = (LEGACY_ENCODER, LEGACY_HEADS) if legacy else (WEIGHTS_FILE,)
    for name in names:
        if name not in config.files:
            raise ModelFileError(record_path(directory), f"files lacks the sha256 of {name}")
    if legacy:
        return (load_tensors(directory / LEGACY_ENCODER, config.files[LEGACY_ENCODER]),
                load_tensors(directory / LEGACY_HEADS, config.files[LEGACY_HEADS]))
    tensors = load_tensors(directory / WEIGHTS_FILE, config.files[WEIGHTS_FILE])
    stray = sorted(name for name in tensors if not name.startswith((ENCODER_PREFIX, HEADS_PREFIX)))
    if stray:
        raise ModelFileError(directory / WEIGHTS_FILE, f"tensors outside encoder./heads.: {', '.join(stray[:5])}")
    return _strip(tensors, ENCODER_PREFIX), _strip(tensors, HEADS_PREFIX)


def _strip(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}


def resolve_model_dir(source: str | Path, *, api: Any | None = None, revision: str | None = None) -> Path:
    """A local model folder for ``source``: the folder itself, or the snapshot of a Hub
    repo ``owner/name`` (downloaded to the Hub cache). Nothing is validated here."""
    if Path(source).is_dir() or not is_hub_id(source):
        return Path(source)
    try:
        return download(str(source), HUB_FILES, api=api, revision=revision)
    except HubError as exc:
        raise HubError(f"{exc} (and there is no local folder {source})") from exc


def parse_json_file(path: Path, schema: type, error: type[FileProblem]) -> Any:
    """Read ``path`` as JSON and validate it with the pydantic ``schema``; raise ``error``
    naming the file and every schema problem."""
    if not path.is_file():
        raise error(path, "file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(path, f"not valid JSON ({exc})") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise error(path, f"invalid: {validation_problems(exc)}") from None
