"""Self-registration by import: a package whose modules register themselves (encoder
families, merge methods, CLI commands) is imported module by module, so adding one of
them is adding one file."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def import_submodules(package: str) -> list[ModuleType]:
    """Import every direct submodule of ``package`` whose name does not start with ``_``,
    in name order; returns them."""
    root = importlib.import_module(package)
    return [importlib.import_module(f"{package}.{info.name}")
            for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda info: info.name)
            if not info.name.startswith("_")]
