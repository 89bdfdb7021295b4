"""Task-vector geometry in one streaming pass: cosine, sign conflicts, top-k overlap, norms,
effective ranks — whole-model and per layer.

Only one parameter tensor of each vector is in memory at a time (``[N, numel]`` for N
vectors); everything else is an N × N accumulator per layer. Buffer deltas (BatchNorm
running statistics) are statistics, not directions, and are left out.

Per layer ``L`` (and summed over all layers for the whole model), for vectors i, j:

- ``gram[i, j] = Σ_{p∈L} τ_i[p] τ_j[p]``; cosine ``gram[i, j] / sqrt(gram[i, i] gram[j, j])``
  (None where a vector is zero on ``L``, e.g. a frozen layer); norms ``sqrt(gram[i, i])``;
- sign conflicts: ``active[i, j]`` counts entries with ``|τ_i| > t`` and ``|τ_j| > t``
  (``t``: ``sign_threshold``, default 0, so exact zeros never count), ``conflicts[i, j]``
  those among them with opposite signs; the pairwise rate is their ratio (0 on the
  diagonal). ``multi`` rate: among entries where at least two vectors exceed ``t``, the
  fraction where the vectors exceeding ``t`` do not all share one sign;
- top-k overlap: each vector's mask keeps its ``topk`` fraction (default 0.2, as TIES) of
  largest-magnitude non-zero entries *within each tensor* (a per-tensor top-k: a global
  threshold would need a second pass); Jaccard ``|M_i ∩ M_j| / |M_i ∪ M_j|``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import Tensor

from ..progress import ProgressFactory, resolve
from ..taskvec.naming import shared_parameter_names
from .errors import AnalysisError
from .layers import layer_of, ordered_layers
from ..taskvec.merge.core import as_matrix
from .rank import effective_rank

SIGN_THRESHOLD = 0.0
TOPK = 0.2
_CHUNK = 1 << 18
"""Columns per block of the N × N products (float32 indicator counts stay exact)."""


@dataclass
class Counts:
    """N × N float64 accumulators of one layer (or of the whole model); see module docstring."""

    gram: Tensor
    active: Tensor
    conflicts: Tensor
    top_both: Tensor
    parameters: int = 0
    multi_active: int = 0
    multi_conflicts: int = 0

    @classmethod
    def zeros(cls, n: int) -> "Counts":
        return cls(*(torch.zeros(n, n, dtype=torch.float64) for _ in range(4)))

    def add(self, other: "Counts") -> None:
        for name in ("gram", "active", "conflicts", "top_both"):
            getattr(self, name).add_(getattr(other, name))
        self.parameters += other.parameters
        self.multi_active += other.multi_active
        self.multi_conflicts += other.multi_conflicts

    def norms(self) -> list[float]:
        return [math.sqrt(max(float(v), 0.0)) for v in self.gram.diagonal()]

    def cosine(self) -> list[list[float | None]]:
        norms = self.norms()
        return [[float(self.gram[i, j]) / (norms[i] * norms[j]) if norms[i] > 0 and norms[j] > 0 else None
                 for j in range(len(norms))] for i in range(len(norms))]

    def sign_conflicts(self) -> list[list[float | None]]:
        return _ratio(self.conflicts, self.active)

    def multi_conflict_rate(self) -> float | None:
        return self.multi_conflicts / self.multi_active if self.multi_active else None

    def topk_jaccard(self) -> list[list[float | None]]:
        sizes = self.top_both.diagonal()
        union = sizes[:, None] + sizes[None, :] - self.top_both
        return _ratio(self.top_both, union)


def _ratio(numerator: Tensor, denominator: Tensor) -> list[list[float | None]]:
    n = numerator.shape[0]
    return [[float(numerator[i, j] / denominator[i, j]) if denominator[i, j] > 0 else None for j in range(n)]
            for i in range(n)]


def _topk_masks(stack: Tensor, topk: float) -> Tensor:
    """``[N, numel]`` bool: each row's ``topk`` fraction of largest non-zero magnitudes."""
    numel = stack.shape[1]
    keep = max(1, math.ceil(topk * numel))
    masks = torch.empty(stack.shape, dtype=torch.bool)
    for row in range(stack.shape[0]):
        magnitude = stack[row].abs()
        bound = 0.0 if keep >= numel else float(torch.kthvalue(magnitude, numel - keep + 1).values)
        masks[row] = (magnitude >= bound) & (magnitude > 0)
    return masks


def tensor_counts(stack: Tensor, sign_threshold: float = SIGN_THRESHOLD, topk: float = TOPK) -> Counts:
    """The accumulators of one parameter: ``stack [N, numel]`` holds every vector's delta."""
    n, numel = stack.shape
    counts = Counts.zeros(n)
    counts.parameters = numel
    masks = _topk_masks(stack, topk)
    for start in range(0, numel, _CHUNK):
        block = stack[:, start:start + _CHUNK]
        wide = block.double()
        counts.gram.add_(wide @ wide.T)
        del wide
        positive = (block > sign_threshold).float()
        negative = (block < -sign_threshold).float()
        active = positive + negative
        counts.active.add_((active @ active.T).double())
        crossed = positive @ negative.T
        counts.conflicts.add_((crossed + crossed.T).double())
        contributors = active.sum(dim=0)
        mixed = (positive.sum(dim=0) > 0) & (negative.sum(dim=0) > 0)
        counts.multi_active += int((contributors >= 2).sum())
        counts.multi_conflicts += int(mixed.sum())
        top = masks[:, start:start + _CHUNK].float()
        counts.top_both.add_((top @ top.T).double())
    return counts


@dataclass
class Geometry:
    """Result of :func:`vector_geometry`. ``names``: one label per vector. ``layers``: in
    network order, each with its :class:`Counts`. ``ranks``: per 2-D (or reshaped) tensor,
    ``{"tensor", "layer", "shape" [out, in·k], "values" [N]}`` effective ranks."""

    names: list[str]
    sign_threshold: float
    topk: float
    whole: Counts
    layers: dict[str, Counts]
    ranks: list[dict] = field(default_factory=list)

    def layer_ranks(self, layer: str) -> list[float | None]:
        """Per vector, the mean effective rank of ``layer``'s matrices (None if none)."""
        rows = [r["values"] for r in self.ranks if r["layer"] == layer]
        result = []
        for i in range(len(self.names)):
            values = [row[i] for row in rows if row[i] is not None]
            result.append(sum(values) / len(values) if values else None)
        return result

    def mean_off_diagonal_cosine(self) -> float | None:
        cosine = self.whole.cosine()
        values = [cosine[i][j] for i in range(len(cosine)) for j in range(i + 1, len(cosine))
                  if cosine[i][j] is not None]
        return sum(values) / len(values) if values else None

    def as_dict(self) -> dict:
        def block(counts: Counts) -> dict:
            return {"parameters": counts.parameters, "norms": counts.norms(), "cosine": counts.cosine(),
                    "sign_conflicts": counts.sign_conflicts(), "sign_conflict_rate": counts.multi_conflict_rate(),
                    "topk_jaccard": counts.topk_jaccard()}

        return {"vectors": self.names, "sign_threshold": self.sign_threshold, "topk": self.topk,
                "mean_off_diagonal_cosine": self.mean_off_diagonal_cosine(),
                "whole_model": block(self.whole),
                "layers": [{"layer": name, **block(counts), "effective_rank": self.layer_ranks(name)}
                           for name, counts in self.layers.items()],
                "effective_rank": self.ranks}


def parameter_names(vectors: Sequence) -> list[str]:
    """The parameters every vector holds, in the first vector's (network) order; raises
    :class:`AnalysisError` when bases differ (and the task vectors' error when names or
    shapes do)."""
    for index, vector in enumerate(vectors[1:], start=1):
        if vector.manifest.base.fingerprint != vectors[0].manifest.base.fingerprint:
            raise AnalysisError(f"task vector {index} was taken against another base than task vector 0 "
                                f"(fingerprints {vector.manifest.base.fingerprint[:12]}… and "
                                f"{vectors[0].manifest.base.fingerprint[:12]}…)")
    return shared_parameter_names(vectors)


def vector_geometry(vectors: Sequence, names: Sequence[str] | None = None, sign_threshold: float = SIGN_THRESHOLD,
                    topk: float = TOPK, ranks: bool = True, progress: ProgressFactory | None = None,
                    exposed: Mapping[str, str] | None = None) -> Geometry:
    """Stream over the parameters of ``vectors`` (objects with ``keys()``, ``shape(name)``,
    ``tensor(name)``, e.g. :class:`~chorus.taskvec.TaskVector`) one tensor at a time and
    accumulate the module docstring's quantities. ``names``: a label per vector (default:
    each manifest's group). ``ranks``: also compute effective ranks (one SVD per matrix
    per vector). ``exposed``: module prefix -> the encoder's exposed layer name (see
    :func:`~.layers.exposed_layers`), so that layers are named as probes name them."""
    vectors = list(vectors)
    if not vectors:
        raise AnalysisError("no task vectors to analyse")
    if sign_threshold < 0:
        raise AnalysisError(f"the sign threshold must be >= 0, got {sign_threshold}")
    if not 0 < topk <= 1:
        raise AnalysisError(f"top-k must be a fraction in (0, 1], got {topk}")
    labels = list(names) if names is not None else [vector_name(v, i) for i, v in enumerate(vectors)]
    parameters = parameter_names(vectors)
    layers = {layer: Counts.zeros(len(vectors)) for layer in ordered_layers(parameters, exposed)}
    whole = Counts.zeros(len(vectors))
    found_ranks = []
    bar = resolve(progress)(len(parameters), "task-vector geometry")
    try:
        for name in parameters:
            shape = vectors[0].shape(name)
            stack = torch.empty(len(vectors), math.prod(shape))
            for row, vector in enumerate(vectors):
                stack[row] = vector.tensor(name).reshape(-1)
            counts = tensor_counts(stack, sign_threshold, topk)
            layers[layer_of(name, exposed)].add(counts)
            whole.add(counts)
            matrices = [as_matrix(row.view(shape)) for row in stack] if ranks else [None]
            if matrices[0] is not None:
                found_ranks.append({"tensor": name, "layer": layer_of(name, exposed), "shape": list(matrices[0].shape),
                                    "values": [effective_rank(matrix) for matrix in matrices]})
            del stack
            bar.update(1)
    finally:
        bar.close()
    return Geometry(labels, sign_threshold, topk, whole, layers, found_ranks)


def vector_name(vector, index: int) -> str:
    """A vector's label: its group, else its position."""
    return getattr(vector.manifest, "group", None) or f"vector {index}"
