"""A local stand-in for :class:`huggingface_hub.HfApi` (no network): one folder per repo."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path


class FakeHub:
    """The three HfApi methods chorus uses, backed by a local folder per repo; a snapshot
    without ``local_dir`` goes to ``root/.cache/<repo>`` as the Hub cache would."""

    def __init__(self, root: Path):
        self.root = root
        self.created: dict[str, bool | None] = {}

    def create_repo(self, repo_id, *, repo_type=None, private=None, exist_ok=False):
        assert repo_type == "model"
        self.created[repo_id] = private
        (self.root / repo_id).mkdir(parents=True, exist_ok=exist_ok)

    def upload_folder(self, *, repo_id, folder_path, repo_type=None, allow_patterns=None, commit_message=None):
        for path in Path(folder_path).iterdir():
            if any(fnmatch.fnmatch(path.name, p) for p in allow_patterns):
                shutil.copy(path, self.root / repo_id / path.name)
        return f"commit: {commit_message}"

    def snapshot_download(self, repo_id, *, repo_type=None, revision=None, local_dir=None, allow_patterns=None):
        from huggingface_hub.errors import LocalEntryNotFoundError

        source = self.root / repo_id
        if not source.is_dir():
            raise LocalEntryNotFoundError(f"no repo {repo_id}")
        target = Path(local_dir) if local_dir is not None else self.root / ".cache" / repo_id
        target.mkdir(parents=True, exist_ok=True)
        for path in source.iterdir():
            if any(fnmatch.fnmatch(path.name, p) for p in allow_patterns):
                shutil.copy(path, target / path.name)
        return str(target)
