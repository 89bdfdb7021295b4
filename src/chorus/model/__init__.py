"""The chorus model folder: an encoder plus linear heads, saved as safetensors + JSON + a model card."""

from .classifier import ClassifierModel, pool_frames
from .errors import ModelFileError
from .layout import is_model_dir, read_config, resolve_model_dir
from .schema import Calibration, ClassifierSettings, EncoderEntry, HeadEntry, ModelConfig, ModelJson

__all__ = ["ClassifierModel", "ModelFileError", "pool_frames", "is_model_dir", "read_config", "resolve_model_dir",
           "Calibration", "ClassifierSettings", "EncoderEntry", "HeadEntry", "ModelConfig", "ModelJson"]
