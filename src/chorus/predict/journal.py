"""The record of finished recordings that lets an interrupted run resume.

``OUT/.chorus-predict/<key>.json`` is written (atomically) after a recording's output
file; its key digests the recording (resolved path, size, mtime), the model
(``config.json``, which holds the sha256 of the weights) and the settings. A recording
counts as done when its record exists and its output still has the recorded sha256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..fileio import sha256_file, write_json

JOURNAL_DIR = ".chorus-predict"


def recording_key(path: Path, context: dict[str, Any]) -> str:
    """Hex digest of a recording's identity plus ``context`` (model and settings)."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime = -1, -1
    text = json.dumps([str(resolved), size, mtime, context], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Journal:
    """Finished recordings of the runs writing into ``out_dir``."""

    def __init__(self, out_dir: Path):
        self.root = out_dir / JOURNAL_DIR

    def _record(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def is_done(self, key: str, output: Path) -> bool:
        try:
            record = json.loads(self._record(key).read_text(encoding="utf-8"))
            return record["output"] == output.name and output.is_file() and sha256_file(output) == record["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def mark_done(self, key: str, recording: Path, output: Path) -> None:
        write_json(self._record(key), {"recording": str(recording), "output": output.name,
                                       "sha256": sha256_file(output)})
