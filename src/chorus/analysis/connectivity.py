"""Linear mode connectivity of every pair of task vectors.

For vectors a, b with groups ``g_a``, ``g_b`` the composed classifier (the heads of both
groups, calibrated as in composition) is scored on the union of the two groups' clips
along the task-vector path ``θ(α) = θ0 + α·τa + (1−α)·τb`` (α = 0 is the fine-tuned
``θb``, α = 1 is ``θa``); BatchNorm statistics take chorus's buffer rule (the convex
combination with weights ``α·w_a``, ``(1−α)·w_b``, ``w`` the vectors' buffer weights).

The straight path ``θa → θb``, ``θ(t) = (1−t)·θa + t·θb`` over every floating tensor, holds
the same parameters as the task-vector path at ``α = 1 − t`` (both models share θ0);
its buffers are interpolated linearly, which equals the buffer rule whenever the two
buffer weights are equal. Then its curve is the task-vector curve read backwards
(``"same_as_task_vector_path": true``); otherwise it is evaluated on its own.

Barrier heights, with ``f(0)``, ``f(1)`` the endpoints of a curve:
``loss_barrier = max_α [loss(α) − ((1−α)·loss(0) + α·loss(1))]`` and
``accuracy_barrier = max_α [((1−α)·acc(0) + α·acc(1)) − acc(α)]``; 0 (up to noise) means
linearly connected.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data.clipset import EvalAudio
from ..progress import ProgressFactory, resolve
from ..taskvec.merge import apply_directions, compose_heads, plan_merge
from ..taskvec.naming import is_buffer, require_groups
from .errors import AnalysisError
from .scoring import features_of, score

ALPHA_POINTS = 11


def alpha_grid(points: int = ALPHA_POINTS) -> list[float]:
    """``points`` evenly spaced values from 0 to 1 (both included)."""
    if points < 2:
        raise AnalysisError(f"an α grid needs at least 2 points, got {points}")
    return [round(i / (points - 1), 6) for i in range(points)]


def barriers(alphas: Sequence[float], accuracy: Sequence[float], loss: Sequence[float]) -> dict[str, float]:
    """Loss and accuracy barrier heights of one curve (module docstring)."""
    def line(values: Sequence[float], alpha: float) -> float:
        return (1 - alpha) * values[0] + alpha * values[-1]

    return {"loss_barrier": max(l - line(loss, a) for a, l in zip(alphas, loss)),
            "accuracy_barrier": max(line(accuracy, a) - c for a, c in zip(alphas, accuracy))}


def _check_grid(alphas: Sequence[float]) -> list[float]:
    alphas = [float(a) for a in alphas]
    if len(alphas) < 2 or alphas[0] != 0.0 or alphas[-1] != 1.0 or sorted(set(alphas)) != alphas:
        raise AnalysisError(f"the α grid must rise from 0 to 1, got {alphas}")
    return alphas


class _ReadOnce:
    """A task vector's deltas read into memory once, for every α of one pair (fits
    :class:`chorus.taskvec.merge.stream.DeltaSource`)."""

    def __init__(self, vector):
        self.manifest = vector.manifest
        self._tensors = {name: vector.tensor(name) for name in vector.keys()}

    def keys(self) -> list[str]:
        return list(self._tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._tensors[name].shape)

    def tensor(self, name: str) -> Tensor:
        return self._tensors[name]


def _path_state(vectors: Sequence, base_state: dict[str, Tensor], alpha: float) -> dict[str, Tensor]:
    """``θ0 + α·τa + (1−α)·τb`` for ``vectors = [a, b]``, or ``θ0 + τa`` for ``[a]``
    (buffers: chorus's convex rule)."""
    weights = [alpha, 1.0 - alpha] if len(vectors) == 2 else [1.0]
    plan = plan_merge(vectors, "task_arithmetic", weights=weights)
    return apply_directions(base_state, plan.directions(), 1.0)


def _straight_state(start: dict[str, Tensor], end: dict[str, Tensor], t: float) -> dict[str, Tensor]:
    """``(1−t)·start + t·end`` for floating tensors (others: ``start``'s)."""
    return {name: torch.lerp(tensor.float(), end[name].float(), t).to(tensor.dtype) if tensor.is_floating_point()
            else tensor.clone() for name, tensor in start.items()}


def _mirrors(vectors: Sequence, alphas: Sequence[float]) -> bool:
    weights = {float(v.manifest.buffer_weight) for v in vectors}
    symmetric = all(round(1.0 - a, 6) in {round(b, 6) for b in alphas} for a in alphas)
    has_buffers = any(is_buffer(name) for v in vectors for name in v.keys())
    return symmetric and (len(weights) == 1 or not has_buffers)


def connectivity(vectors: Sequence, base_state: dict[str, Tensor], audio: EvalAudio,
                 alphas: Sequence[float] | None = None, calibration: str = "auto",
                 progress: ProgressFactory | None = None, device: str | torch.device = "cpu") -> list[dict]:
    """Per pair ``(i < j)``: the task-vector path and the straight path (module docstring),
    scored on the validation clips of both groups in ``audio`` (encoders run on ``device``)."""
    alphas = _check_grid(alphas if alphas is not None else alpha_grid())
    vectors = list(vectors)
    groups = require_groups(vectors, "the analysis of groups")
    plan = plan_merge(vectors, "mean")
    everything = audio.of_groups(groups)
    for group in groups:
        if not everything.rows_of_groups([group]):
            raise AnalysisError(f"the validation data hold no clips of group {group!r}")
    reader = compose_heads(vectors[:1], "none")
    ends = [_path_state([v], base_state, 1.0) for v in vectors]
    end_features = [features_of(plan, state, reader, everything, device) for state in ends]
    pairs = [(i, j) for i in range(len(vectors)) for j in range(i + 1, len(vectors))]
    bar = resolve(progress)(len(pairs), "linear mode connectivity")
    results = []
    try:
        for i, j in pairs:
            pair = [vectors[i], vectors[j]]
            heads = compose_heads(pair, calibration)
            rows = torch.tensor(everything.rows_of_groups([groups[i], groups[j]]), dtype=torch.int64)
            part = everything.subset(rows.tolist())
            curve = {"accuracy": [], "loss": []}
            in_memory = [_ReadOnce(v) for v in pair] if alphas[1:-1] else pair  # interior α only
            for alpha in alphas:
                if alpha == 0.0:
                    features = end_features[j][rows]
                elif alpha == 1.0:
                    features = end_features[i][rows]
                else:
                    features = features_of(plan, _path_state(in_memory, base_state, alpha), heads, part, device)
                for key, value in score(heads, features, part.clips).items():
                    curve[key].append(value)
            record = {"pair": [groups[i], groups[j]], "clips": len(part), "alpha": alphas, **curve,
                      **barriers(alphas, curve["accuracy"], curve["loss"])}
            record["straight"] = _straight(pair, ends[i], ends[j], alphas, curve, heads, plan, part,
                                           end_features[i][rows], end_features[j][rows], device)
            results.append(record)
            bar.update(1)
    finally:
        bar.close()
    return results


def _straight(pair, start, end, alphas, curve, heads, plan, part, start_features, end_features, device) -> dict:
    """The straight path θa → θb over ``t`` = ``alphas``."""
    if _mirrors(pair, alphas):
        accuracy, loss = curve["accuracy"][::-1], curve["loss"][::-1]
        same = True
    else:
        accuracy, loss, same = [], [], False
        for t in alphas:
            if t in (0.0, 1.0):
                features = start_features if t == 0.0 else end_features
            else:
                features = features_of(plan, _straight_state(start, end, t), heads, part, device)
            scores = score(heads, features, part.clips)
            accuracy.append(scores["accuracy"])
            loss.append(scores["loss"])
    return {"t": list(alphas), "accuracy": accuracy, "loss": loss, "same_as_task_vector_path": same,
            **barriers(alphas, accuracy, loss)}
