"""Composing task vectors into a model with data the composer holds (``chorus merge``):
run a recipe, choose λ and the head calibration on validation clips by normalized accuracy.

The merge itself (methods, streaming driver, heads) is :mod:`chorus.taskvec.merge`; this
package adds what needs an encoder forward pass over audio.
"""

from .recipe_run import open_vectors, run_merge
from .sweep import SweepResult, sweep_lambda

__all__ = ["open_vectors", "run_merge", "SweepResult", "sweep_lambda"]
