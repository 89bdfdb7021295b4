"""Atomic file writes: write to a temporary file in the same folder, then rename.

A crash mid-write leaves either the old file or the new one, never half of one. Files get
the mode the process's umask gives a new file (0644 under the usual 022), so that
collaborators on a shared machine can read results.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import math
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Callable, Iterator, TypeVar

from .errors import FolderBusy, WriteError


def new_file_mode() -> int:
    """The permission bits a newly created file gets under this process's umask."""
    try:  # Linux reports the umask without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_FOREIGN_OS_ERROR = re.compile(r"\(os error (\d+)\)")


@contextlib.contextmanager
def writing(target: Path) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``target`` into a one-line
    :class:`~chorus.errors.WriteError` naming it ("no space left on device", ...)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise WriteError(target, f"cannot write: {reason[:1].lower() + reason[1:]}") from exc
    except Exception as exc:  # writers in Rust (safetensors) report an OS error in their message
        code = _FOREIGN_OS_ERROR.search(str(exc))
        if code is None:
            raise
        raise WriteError(target, f"cannot write: {os.strerror(int(code.group(1))).lower()}") from exc


def temporary_sibling(target: Path) -> tuple[int, Path]:
    """``(fd, path)`` of a new, empty temporary file next to ``target`` (hidden, ``.tmp``),
    open for writing, with the umask's mode rather than mkstemp's private 0600."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, new_file_mode())
    return fd, Path(name)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Use it for writers that want a file name (soundfile, safetensors, matplotlib).
    """
    target = Path(path)
    with writing(target):
        fd, tmp = temporary_sibling(target)
        os.close(fd)
        try:
            yield tmp
            os.chmod(tmp, new_file_mode())  # writers that recreate the file (safetensors) make it 0600
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` when the block succeeds."""
    binary = "b" in mode
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) replaced by None, so that the JSON
    written is valid for every reader (Python's ``NaN``/``Infinity`` are not JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: strict_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(value) for value in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as pretty, key-sorted, strict JSON (non-finite numbers as ``null``),
    atomically."""
    with atomic_open(path, "w") as handle:
        json.dump(strict_json(obj), handle, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        handle.write("\n")


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


LOCK_NAME = ".lock"
_HELD: dict[str, list] = {}  # resolved folder -> [locked .lock handle, holders in this process]
_HELD_GUARD = threading.Lock()


def acquire_folder(folder: str | Path, busy: type[FolderBusy] = FolderBusy) -> str:
    """Create ``folder`` if needed and take an exclusive lock on its ``.lock`` for this
    process (re-entrant: every holder calls :func:`release_folder` with the key returned).
    ``busy`` (a :class:`~chorus.errors.FolderBusy`) when another process holds it."""
    root = Path(folder)
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
    key = str(root.resolve())
    with _HELD_GUARD:
        if key in _HELD:
            _HELD[key][1] += 1
            return key
        with writing(root / LOCK_NAME):
            handle = open(root / LOCK_NAME, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise busy(root, "is being written by another process (one writer at a time); wait for it to "
                             "finish or use another output folder") from None
        _HELD[key] = [handle, 1]
        return key


def release_folder(key: str) -> None:
    """Give back one hold of :func:`acquire_folder` (the lock goes with the last)."""
    with _HELD_GUARD:
        held = _HELD[key]
        held[1] -= 1
        if held[1] == 0:
            held[0].close()
            del _HELD[key]


@contextlib.contextmanager
def locked_folder(folder: str | Path, busy: type[FolderBusy] = FolderBusy) -> Iterator[Path]:
    """Hold ``folder`` (created if needed) against a second writer for the block. When the
    block fails and the folder it created holds nothing but the lock, the folder goes."""
    root = Path(folder)
    created = not root.exists()
    key = acquire_folder(root, busy)
    try:
        yield root
    except BaseException:
        release_folder(key)
        if created and key not in _HELD:
            with contextlib.suppress(OSError):
                if [p.name for p in root.iterdir()] == [LOCK_NAME]:
                    (root / LOCK_NAME).unlink()
                    root.rmdir()
        raise
    release_folder(key)


_F = TypeVar("_F", bound=Callable[..., Any])


def locks_folder(argument: str, busy: type[FolderBusy] = FolderBusy) -> Callable[[_F], _F]:
    """Decorate a function writing into the folder passed as ``argument`` so that it holds
    :func:`locked_folder` on it while it runs (a second writer gets ``busy``)."""

    def decorate(function: _F) -> _F:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args: Any, **kwargs: Any) -> Any:
            folder = signature.bind(*args, **kwargs).arguments[argument]
            with locked_folder(folder, busy):
                return function(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return decorate
