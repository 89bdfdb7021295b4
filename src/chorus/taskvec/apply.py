"""Adding task vectors to a base encoder: θ = θ_base + Σ c_i τ_i.

Sums run in float64 and are rounded once to each tensor's dtype; with one float32
vector and coefficient 1 the fine-tuned encoder comes back bit for bit.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from ..model import ClassifierModel
from .errors import BaseMismatchError, IncompatibleVectorsError, TaskVectorError
from .fingerprint import base_fingerprint
from .naming import state_name
from .vector import TaskVector


def combine(vectors: Sequence[TaskVector], coefficients: Sequence[float] | None = None) -> TaskVector:
    """``Σ c_i τ_i`` (all coefficients 1 when ``coefficients`` is None)."""
    if not vectors:
        raise TaskVectorError("no task vectors given")
    coefficients = [1.0] * len(vectors) if coefficients is None else list(coefficients)
    if len(coefficients) != len(vectors):
        raise TaskVectorError(f"{len(vectors)} task vectors but {len(coefficients)} coefficients")
    total = coefficients[0] * vectors[0] if coefficients[0] != 1.0 else vectors[0]
    for coefficient, vector in zip(coefficients[1:], vectors[1:]):
        total = total + coefficient * vector
    return total


def apply(base: nn.Module, vectors: Sequence[TaskVector], coefficients: Sequence[float] | None = None) -> nn.Module:
    """A copy of ``base`` with ``Σ c_i τ_i`` added, in eval mode.

    Raises :class:`BaseMismatchError` (naming both fingerprints) when the vectors were taken
    against other weights, :class:`IncompatibleVectorsError` when names or shapes differ.
    """
    combined = combine(vectors, coefficients)
    actual = base_fingerprint(base.state_dict())
    if actual != combined.fingerprint:
        raise BaseMismatchError(combined.fingerprint, actual)
    result = copy.deepcopy(base)
    state = result.state_dict()
    with torch.no_grad():
        for name in combined.keys():
            target = state.get(state_name(name))
            if target is None or tuple(target.shape) != combined.shape(name):
                raise IncompatibleVectorsError(f"the encoder has no tensor {state_name(name)!r} of shape "
                                               f"{combined.shape(name)}")
            target.copy_((target.double() + combined.tensor(name, exact=True).to(target.device)).to(target.dtype))
    return result.eval()


def compose_model(base: nn.Module, vectors: Sequence[TaskVector],
                  coefficients: Sequence[float] | None = None) -> ClassifierModel:
    """A :class:`ClassifierModel`: ``base`` plus the vectors, with every vector's heads (and
    their licences, for the model card)."""
    combined = combine(vectors, coefficients)
    if not combined.heads or combined.manifest.classifier is None:
        raise TaskVectorError("the task vectors carry no classification head")
    model = ClassifierModel(apply(base, vectors, coefficients), combined.heads, combined.manifest.classifier)
    model.licenses = sorted({vector.manifest.license for vector in vectors if vector.manifest.license})
    return model.set_heads(combined.head_tensors(), lambda weight, head: IncompatibleVectorsError(
        f"head of shape {tuple(weight.shape)} does not fit the encoder layer {model.settings.layer!r} "
        f"({tuple(head.shape)})"))
