"""``chorus merge`` as one function, for :func:`chorus.merge`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..progress import ProgressFactory
from ..taskvec.merge import Recipe, load_recipe, parse_recipe
from .recipe_run import run_merge


def merge(recipe: Recipe | Mapping[str, Any] | str | Path, out: str | Path, *,
          progress: ProgressFactory | None = None) -> dict:
    """Merge task vectors as ``recipe`` says into the model folder ``out``; return its
    ``merge.json`` record. ``recipe``: a YAML recipe file (paths relative to it), a mapping
    of the same fields (paths relative to the working directory) or a :class:`Recipe`.
    Runs :func:`~chorus.merging.run_merge`, as ``chorus merge`` does."""
    if isinstance(recipe, (str, Path)):
        recipe = load_recipe(recipe)
    elif not isinstance(recipe, Recipe):
        recipe = parse_recipe(dict(recipe)).resolve_paths(Path.cwd())
    return run_merge(recipe, out, progress=progress)
