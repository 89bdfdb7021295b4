"""Streaming summaries of task vectors: per-tensor norms, and a comparison of two vectors."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BaseMismatchError
from .naming import is_buffer
from .vector import TaskVector


@dataclass(frozen=True)
class TensorStats:
    """L2 norm, largest magnitude and fraction of non-zero entries of one delta."""

    name: str
    numel: int
    norm: float
    max_abs: float
    nonzero: float


def tensor_stats(vector: TaskVector) -> list[TensorStats]:
    """Stats of every delta, read one tensor at a time."""
    rows = []
    for name in vector.keys():
        delta = vector.tensor(name).double()
        empty = not delta.numel()
        rows.append(TensorStats(name, delta.numel(), float(delta.norm()), 0.0 if empty else float(delta.abs().max()),
                                0.0 if empty else float((delta != 0).double().mean())))
    return rows


@dataclass(frozen=True)
class TensorComparison:
    name: str
    norm_a: float
    norm_b: float
    cosine: float | None
    relative_difference: float


@dataclass(frozen=True)
class VectorComparison:
    """``a`` against ``b``: per tensor, over all parameters, and their label spaces."""

    tensors: list[TensorComparison]
    only_in_a: list[str]
    only_in_b: list[str]
    norm_a: float
    norm_b: float
    cosine: float | None
    labels_only_in_a: list[str]
    labels_only_in_b: list[str]
    labels_shared: list[str]


def _cosine(dot: float, norm_a: float, norm_b: float) -> float | None:
    return dot / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else None


def compare(a: TaskVector, b: TaskVector) -> VectorComparison:
    """Compare two vectors of the same base tensor by tensor (cosine, norms, relative
    difference ‖a−b‖ / max(‖a‖, ‖b‖)); the totals cover parameters, not buffers."""
    if a.fingerprint != b.fingerprint:
        raise BaseMismatchError(a.fingerprint, b.fingerprint, what="the other task vector")
    shared = [name for name in a.keys() if name in set(b.keys())]
    rows = []
    dot_total = sq_a = sq_b = 0.0
    for name in shared:
        x, y = a.tensor(name).double().reshape(-1), b.tensor(name).double().reshape(-1)
        dot, norm_x, norm_y = float(x @ y), float(x.norm()), float(y.norm())
        difference = float((x - y).norm())
        rows.append(TensorComparison(name, norm_x, norm_y, _cosine(dot, norm_x, norm_y),
                                     difference / max(norm_x, norm_y) if max(norm_x, norm_y) > 0 else 0.0))
        if not is_buffer(name):
            dot_total, sq_a, sq_b = dot_total + dot, sq_a + norm_x ** 2, sq_b + norm_y ** 2
    labels_a, labels_b = a.manifest.labels, b.manifest.labels
    return VectorComparison(
        tensors=rows, only_in_a=sorted(set(a.keys()) - set(b.keys())), only_in_b=sorted(set(b.keys()) - set(a.keys())),
        norm_a=math.sqrt(sq_a), norm_b=math.sqrt(sq_b), cosine=_cosine(dot_total, math.sqrt(sq_a), math.sqrt(sq_b)),
        labels_only_in_a=[x for x in labels_a if x not in labels_b],
        labels_only_in_b=[x for x in labels_b if x not in labels_a],
        labels_shared=[x for x in labels_a if x in labels_b],
    )


def parameter_count(vector: TaskVector) -> int:
    """Number of parameter entries the vector changes (buffers excluded)."""
    return sum(math.prod(vector.shape(name)) for name in vector.keys() if not is_buffer(name))

