"""Distilled task vectors: layer-to-layer distillation of frozen teachers into a student
that starts from a shared initialisation θ0; the student's change is a task vector.

After DistilHuBERT (Chang, Yang & Lee, ICASSP 2022) for the prediction heads and the
L1 + cosine loss, and task arithmetic (Ilharco et al., ICLR 2023) for combining students.
"""

from .config import DistillConfig
from .errors import DistillError
from .session import distill_to_directory, load_student_init
from .targets import TeacherTargets, compute_targets
from .train import DistillResult, distill

__all__ = ["DistillConfig", "DistillError", "DistillResult", "TeacherTargets", "compute_targets", "distill",
           "distill_to_directory", "load_student_init"]
