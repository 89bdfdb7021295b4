"""Merging task vectors into one model: methods, the streaming driver, heads, recipes.

- methods (one per module, registered by name): ``mean``, ``task_arithmetic``, ``ties``,
  ``dare``, ``breadcrumbs``, ``tsv``, ``iso_c``, ``iso_cts``, ``negation``, ``model_stock``,
  ``della``, ``slerp``, ``karcher``, ``wudi``; the functional core in :mod:`.core`, span-keeping
  SVD helpers in :mod:`.spectral`;
- :func:`plan_merge` + :func:`write_merged_encoder`: streaming, tensor by tensor;
- :func:`compose_heads`: one classifier over the union of label spaces, calibrated;
- :func:`sweep_lambda`: λ chosen on validation data by normalized accuracy;
- :class:`Recipe` / :func:`load_recipe` / :func:`run_merge`: ``chorus merge``.
"""

from .compose import build_classifier, resolve_base, write_composed_model
from .heads import ComposedHeads, compose_heads
from .errors import HeadCompatibilityError, MergeError, RecipeError
from .recipe import Recipe, load_recipe, parse_recipe
from .registry import MergeMethod, get_method, method_names, register_method
from .stream import MergePlan, apply_directions, plan_merge, write_merged_encoder

__all__ = ["build_classifier", "resolve_base", "write_composed_model", "ComposedHeads", "HeadCompatibilityError",
           "compose_heads", "Recipe", "RecipeError", "load_recipe", "parse_recipe", "MergeError", "MergeMethod",
           "get_method", "method_names", "register_method", "MergePlan", "apply_directions",
           "plan_merge", "write_merged_encoder"]
