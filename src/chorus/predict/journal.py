"""The record of finished recordings that lets an interrupted run resume.

``OUT/.chorus-predict/<key>.json`` is written (atomically) after a recording's output
file; its key digests the recording (resolved path, size, mtime), the model
(``config.json``, which holds the sha256 of the weights) and the settings. A recording
counts as done when its record exists and its output still has the recorded sha256.
``OUT/.chorus-predict/run.json`` holds the digest of the model and settings of the folder:
a run with another model or other settings is refused rather than mixing its outputs in.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..fileio import sha256_file, write_json
from .errors import OutputMismatch

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

    def claim(self, context: dict[str, Any]) -> None:
        """Record that this folder holds outputs made with ``context`` (model and settings);
        :class:`OutputMismatch` when an earlier run wrote it with another one."""
        digest = hashlib.sha256(json.dumps(context, sort_keys=True).encode()).hexdigest()
        path = self.root / "run.json"
        try:
            found = json.loads(path.read_text(encoding="utf-8")).get("context")
        except (OSError, ValueError, AttributeError):
            found = None
        if found is not None and found != digest:
            raise OutputMismatch(self.root.parent, "holds the predictions of another model or other settings "
                                                   "(window, hop, format, thresholds, batch size); use another "
                                                   "--out or delete it")
        if found is None:
            write_json(path, {"context": digest})

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
