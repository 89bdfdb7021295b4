"""Continual self-supervised pre-training (``chorus pretrain``): adapt an encoder to a new
domain's unlabelled audio over a re-warm / re-decay schedule, then share the change as a
task vector and check what the original domain lost."""

from .config import PretrainConfig
from .encoder_dir import load_saved_encoder, save_encoder
from .forgetting import forgetting_check
from .objective import Objective
from .errors import PretrainError
from .objectives import OBJECTIVES, build_objective, resolve_objective
from .adapt import PretrainResult, pretrain

__all__ = ["OBJECTIVES", "Objective", "PretrainConfig", "PretrainError", "PretrainResult", "build_objective",
           "forgetting_check", "load_saved_encoder", "pretrain", "resolve_objective", "save_encoder"]
