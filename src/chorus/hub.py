"""The Hugging Face Hub, shared by models and task vectors (``huggingface_hub``, imported lazily).

``api`` arguments accept any object with ``create_repo``, ``upload_folder`` and
``snapshot_download`` like :class:`huggingface_hub.HfApi` (tests pass a local fake).
Uploads are staged in a temporary folder, so a failed push leaves nothing behind in the
folder being pushed; downloads are returned as a local folder for the caller to validate.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ChorusError

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
"""``owner/name`` of a Hub repository."""


class HubError(ChorusError):
    """The Hub refused or could not be reached (offline, unknown repo, no permission)."""


def is_hub_id(text: str | Path) -> bool:
    """Whether ``text`` reads as a Hub repo id (``owner/name``) and names no local path."""
    return bool(HUB_ID.match(str(text))) and not Path(text).exists()


def hub_client(api: Any | None = None) -> Any:
    """``api``, or a fresh :class:`huggingface_hub.HfApi`."""
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi()


def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub import errors

    return (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled,
            errors.HFValidationError, OSError)


def download(repo_id: str, patterns: Sequence[str], *, out: str | Path | None = None, api: Any | None = None,
             revision: str | None = None) -> Path:
    """The files of model repo ``repo_id`` matching ``patterns``, in ``out`` (None: the Hub
    cache); :class:`HubError` when the Hub cannot give them. Nothing is validated here."""
    try:
        path = hub_client(api).snapshot_download(repo_id, repo_type="model", revision=revision,
                                                 local_dir=None if out is None else str(out),
                                                 allow_patterns=list(patterns))
    except _hub_errors() as exc:
        raise HubError(f"could not pull {repo_id}: {exc}") from exc
    return Path(path)


def upload(source: str | Path, repo_id: str, files: Mapping[str, str | Path], *, api: Any | None = None,
           private: bool | None = None, commit_message: str = "chorus upload") -> Any:
    """Upload ``files`` (``{name in the repo: text, or a local Path to copy}``) to model repo
    ``repo_id`` (created if missing) in one commit; return the commit info. The files are
    staged in a temporary folder (hard links where possible), never next to ``source``
    (the folder being pushed, named in errors)."""
    client = hub_client(api)
    with tempfile.TemporaryDirectory(prefix="chorus-push-") as staging:
        for name, content in files.items():
            target = Path(staging) / name
            if isinstance(content, Path):
                _link_or_copy(content, target)
            else:
                target.write_text(content, encoding="utf-8")
        try:
            client.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            return client.upload_folder(repo_id=repo_id, folder_path=staging, repo_type="model",
                                        allow_patterns=sorted(files), commit_message=commit_message)
        except _hub_errors() as exc:
            raise HubError(f"could not push {source} to {repo_id}: {exc}") from exc


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
