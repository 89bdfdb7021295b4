"""The chorus model directory: an encoder plus linear heads, saved as safetensors + JSON."""

from .classifier import ClassifierModel, pool_frames
from .errors import ModelFileError
from .schema import Calibration, ClassifierSettings, EncoderEntry, HeadEntry, ModelJson

__all__ = ["ClassifierModel", "ModelFileError", "pool_frames",
           "Calibration", "ClassifierSettings", "EncoderEntry", "HeadEntry", "ModelJson"]
