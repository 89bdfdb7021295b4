"""Library warnings (``warnings.warn``) shown as one yellow line each on stderr."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console


@contextmanager
def surfaced(category: type[Warning] = UserWarning) -> Iterator[None]:
    """Show the warnings of ``category`` raised inside the block as ``warning: message``
    lines (each once) after it, even when it raises; other warnings pass through as usual."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        try:
            yield
        finally:
            console = Console(stderr=True)
            for message in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, category)):
                console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
            for other in (w for w in caught if not issubclass(w.category, category)):
                warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
