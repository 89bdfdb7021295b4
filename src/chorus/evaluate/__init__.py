"""Evaluating classifiers: metrics overall and per group, confusion matrices, comparisons."""

from .metrics import confusion_matrix, evaluate_logits
from .scoring import evaluate_model, model_logits, layer_features

__all__ = ["confusion_matrix", "evaluate_logits", "evaluate_model", "model_logits",
           "layer_features"]
