"""Evaluating classifiers: metrics overall and per group, confusion matrices, comparisons."""

from .metrics import confusion_matrix, evaluate_logits
from .run import EvalAudio, evaluate_model, load_eval_audio, model_logits, layer_features

__all__ = ["confusion_matrix", "evaluate_logits", "EvalAudio", "evaluate_model", "load_eval_audio", "model_logits",
           "layer_features"]
