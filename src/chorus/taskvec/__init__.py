"""Task vectors τ = θ_finetuned − θ_base as shareable artifacts: format, arithmetic, apply, hub.

The format is specified in docs/task-vector.md.
"""

from .apply import apply, combine, compose_model
from .errors import BaseMismatchError, IncompatibleVectorsError, TaskVectorError, TaskVectorFileError
from .fingerprint import base_fingerprint
from .manifest import TaskVectorManifest, TrainingSummary
from .vector import TaskVector

__all__ = ["apply", "combine", "compose_model", "BaseMismatchError", "IncompatibleVectorsError",
           "TaskVectorError", "TaskVectorFileError", "base_fingerprint", "TaskVectorManifest",
           "TrainingSummary", "TaskVector"]
