"""Files whose sha256 chorus has checked (or computed while writing them), remembered by
their stat so an unchanged file is not hashed again — the way git's index trusts a file
whose stat it has seen.

A record holds the digest and ``[device, inode, size, mtime_ns, ctime_ns]`` of the file
when it was hashed; any write, truncation, copy or replacement changes that stamp (ctime
cannot be set back by a user), and the file is then hashed again in full. A file changed
less than a second before it was hashed is not recorded: file times tick coarsely, so a
second change within the same tick would not show in its stamp (git's "racily clean"
files). What a record
cannot see is a change below the file system (bit rot); deleting the records (or
``CHORUS_CACHE_DIR=/an/empty/dir``) forces a full check. Records live in
``$CHORUS_CACHE_DIR/verified`` (default ``$XDG_CACHE_HOME/chorus``, else ``~/.cache/chorus``),
one small JSON file per path, written atomically; without a usable cache directory every
check simply hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from .fileio import write_json

CACHE_ENV = "CHORUS_CACHE_DIR"
RACY_NS = 1_000_000_000
"""A file whose status changed less than this before hashing is not recorded."""


def _records() -> Path:
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chorus"
    return Path(root) / "verified"


def _record_path(path: Path) -> Path:
    return _records() / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:40] + ".json")


def file_stamp(path: str | Path) -> list[int]:
    """``[device, inode, size, mtime_ns, ctime_ns]`` of ``path``."""
    st = Path(path).stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def is_verified(path: str | Path, sha256: str) -> bool:
    """Whether ``path`` hashed to ``sha256`` when it last had its current stamp."""
    path = Path(path)
    try:
        record = json.loads(_record_path(path).read_text(encoding="utf-8"))
        return record == {"sha256": sha256, "stat": file_stamp(path)}
    except (OSError, ValueError):
        return False


def remember_verified(path: str | Path, sha256: str, stamp: list[int]) -> None:
    """Record that ``path`` hashed to ``sha256`` while it had ``stamp`` (taken before
    hashing); nothing is recorded if the file changed since or changed too recently."""
    path = Path(path)
    if time.time_ns() - stamp[4] < RACY_NS:
        return
    try:
        if file_stamp(path) == stamp:
            write_json(_record_path(path), {"sha256": sha256, "stat": stamp})
    except OSError:
        pass  # best effort: without a record the file is hashed next time
