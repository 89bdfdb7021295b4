"""Progress reporting without printing from the library.

Library functions that run long take ``progress: ProgressFactory | None``. The CLI passes
:func:`tqdm_progress`; library callers may pass their own or nothing.
"""

from __future__ import annotations

from typing import Protocol


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, total: int | None, desc: str) -> ProgressBar: ...


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def silent_progress(total: int | None, desc: str) -> ProgressBar:
    """A progress bar that shows nothing (the library default)."""
    return _Silent()


_BARS = {"show": True, "leave": False}


def configure_bars(show: bool = True, leave: bool = False) -> None:
    """How :func:`tqdm_progress` draws: not at all (``chorus --quiet``), or kept on screen
    when done (``chorus --verbose``)."""
    _BARS.update(show=show, leave=leave)


def tqdm_progress(total: int | None, desc: str) -> ProgressBar:
    """A tqdm bar on stderr, for the CLI (see :func:`configure_bars`)."""
    if not _BARS["show"]:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, dynamic_ncols=True, leave=_BARS["leave"])


def resolve(progress: ProgressFactory | None) -> ProgressFactory:
    return silent_progress if progress is None else progress
