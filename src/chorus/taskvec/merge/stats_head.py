"""The composed statistics head: one linear-discriminant (LDA) head over the union of labels,
built from the class statistics every vector carries (:mod:`chorus.taskvec.classstats`).

A shared-covariance Gaussian model of the pooled features ``x [D]`` gives the class scores

    ``l_c(x) = μ_cᵀ Σ⁻¹ x − ½ μ_cᵀ Σ⁻¹ μ_c + log π_c``,

linear in ``x``: ``W = M Σ⁻¹`` (rows ``μ_cᵀ Σ⁻¹``, ``[C, D]``), ``b_c = −½ μ_cᵀ Σ⁻¹ μ_c + log π_c``,
and ``softmax(l)`` is the posterior. ``μ_c``, ``π_c = n_c / N`` and ``Σ`` are functions of the
per-class counts and means and the within-class scatter only, so the head composed from K
parties' statistics is the LDA head fitted on all their clips pooled (to float rounding).

Pooling (float64). A label ``c`` held by several vectors ``p`` (counts ``n_pc``, means
``μ_pc``) gets ``n_c = Σ_p n_pc``, ``μ_c = Σ_p n_pc μ_pc / n_c``; the pooled within-class scatter is
``S = Σ_p S_p + Σ_c Σ_p n_pc (μ_pc − μ_c)(μ_pc − μ_c)ᵀ`` (the scatter of a union is the sum of the
parts' scatters plus their between-part terms), and ``Σ = S / (N − C)`` (``N`` clips, ``C``
classes; ``S / N`` when ``N ≤ C``).

Shrinkage: a fixed ridge, ``Σ_γ = Σ + γ · tr(Σ)/D · I`` (``γ`` = ``shrinkage``, relative to the
mean eigenvalue). Ledoit–Wolf's data-driven intensity needs fourth moments of the clips,
which the shared statistics do not hold, so it cannot be computed from them; the ridge can.
Default γ = 0.3: on the composition benchmark (benchmarks/composition_heads.py, docs/merging.md)
it had the best mean accuracy of {0.01, 0.03, 0.1, 0.3, 1, 3} in both settings measured,
within noise of 0.1 and 1; γ = 0 is singular when the features are wider than the clips.

Which encoder: statistics describe the features of one encoder (``computed_on``, a
fingerprint). The head is valid on that encoder. When the built encoder is the base itself
(λ = 0, or every vector's parameter deltas are zero: frozen-encoder probes), base statistics
are exact. For a merged encoder the protocol is one more round: merge once, each party runs
``chorus tv stats VECTOR --data ... --on MERGED_MODEL``, then merge again with ``calibration:
lda`` (same recipe, same seed: the same encoder bytes). Base statistics with a merged encoder
are allowed with a warning recorded in ``merge.json`` (:func:`encoder_warnings`);
statistics of any other encoder are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ...model import HeadEntry
from .errors import StatisticsError
from .heads import ComposedHeads, check_compatible, vector_label

DEFAULT_SHRINKAGE = 0.3
"""Default ridge ``γ`` of :func:`lda_head` (relative to the mean eigenvalue of ``Σ``)."""


@dataclass
class PooledStatistics:
    """Statistics of the union of several parties' clips: ``labels`` (``C``, first-seen order),
    ``counts [C]`` (float64), ``means [C, D]``, within-class ``scatter [D, D]`` (float64)."""

    labels: list[str]
    counts: Tensor
    means: Tensor
    scatter: Tensor


def pool_statistics(parts: Sequence) -> PooledStatistics:
    """Pool :class:`~chorus.taskvec.classstats.ClassStatistics` of several parties (see the
    module docstring); a label in several parts is one class."""
    labels: list[str] = []
    members: dict[str, list[tuple[float, Tensor]]] = {}
    scatter = None
    for part in parts:
        scatter = part.scatter.double().clone() if scatter is None else scatter + part.scatter.double()
        for row, label in enumerate(part.labels):
            if label not in members:
                labels.append(label)
                members[label] = []
            members[label].append((float(part.counts[row]), part.means[row].double()))
    counts, means = [], []
    for label in labels:
        n = sum(count for count, _ in members[label])
        mean = sum(count * m for count, m in members[label]) / n
        for count, m in members[label]:
            scatter += count * torch.outer(m - mean, m - mean)
        counts.append(n)
        means.append(mean)
    return PooledStatistics(labels, torch.tensor(counts, dtype=torch.float64), torch.stack(means), scatter)


def lda_head(pooled: PooledStatistics, shrinkage: float = DEFAULT_SHRINKAGE) -> tuple[Tensor, Tensor]:
    """``(W [C, D], b [C])`` float64 of the (ridge-shrunk) LDA head of ``pooled``."""
    total, classes = float(pooled.counts.sum()), len(pooled.labels)
    covariance = pooled.scatter / (total - classes if total > classes else total)
    dim = covariance.shape[0]
    if shrinkage:
        covariance = covariance + shrinkage * float(torch.trace(covariance)) / dim * torch.eye(dim, dtype=torch.float64)
    factor, info = torch.linalg.cholesky_ex(covariance)
    if int(info) != 0:
        raise StatisticsError(f"the pooled within-class covariance ({dim} features, {int(total)} clips) is singular; "
                              f"use a shrinkage > 0 (was {shrinkage:g})")
    weight = torch.cholesky_solve(pooled.means.T.contiguous(), factor).T  # rows μ_cᵀ Σ⁻¹
    bias = -0.5 * (weight * pooled.means).sum(dim=1) + torch.log(pooled.counts / total)
    return weight, bias


def vector_statistics(vectors: Sequence) -> list:
    """Every vector's class statistics; :class:`StatisticsError` names those without."""
    missing = [vector_label(v, i) for i, v in enumerate(vectors) if not getattr(v, "has_class_stats", False)]
    if missing:
        raise StatisticsError(f"lda calibration needs class statistics in every task vector; {', '.join(missing)} "
                              "carry none (compute them with `chorus tv stats VECTOR --data MANIFEST`)")
    return [v.class_stats() for v in vectors]


def encoder_warnings(vectors: Sequence, base_fingerprint: str, built_fingerprint: str) -> list[str]:
    """Check that every vector's statistics describe the built encoder (fingerprint
    ``built_fingerprint``). Statistics of the base encoder when the built encoder differs
    give a warning line (returned); any other encoder is refused with :class:`StatisticsError`."""
    foreign, stale = [], []
    for index, vector in enumerate(vectors):
        computed_on = vector.manifest.classstats.computed_on
        if computed_on == built_fingerprint:
            continue
        (stale if computed_on == base_fingerprint else foreign).append(f"{vector_label(vector, index)} "
                                                                      f"({computed_on[:12]})")
    if foreign:
        raise StatisticsError(f"class statistics of {', '.join(foreign)} were computed on an encoder that is neither "
                              f"the base ({base_fingerprint[:12]}) nor the one built ({built_fingerprint[:12]}); "
                              "recompute them with `chorus tv stats --on MODEL_DIR` on the merged model")
    if stale:
        return [f"class statistics of {', '.join(stale)} describe the base encoder, but the merged encoder "
                f"({built_fingerprint[:12]}) differs: the lda head is approximate; recompute them on the merged "
                "model (`chorus tv stats VECTOR --data MANIFEST --on MERGED_MODEL`) and merge again"]
    return []


def compose_lda_heads(vectors: Sequence, shrinkage: float = DEFAULT_SHRINKAGE) -> ComposedHeads:
    """One LDA head over the union of labels from every vector's class statistics, split
    into output heads by the group that first holds each label (as :func:`compose_heads`)."""
    settings = check_compatible(vectors)
    if settings.task != "multiclass":
        raise StatisticsError("lda calibration needs multi-class heads")
    stats = vector_statistics(vectors)
    widths = {int(s.means.shape[1]) for s in stats}
    if len(widths) > 1:
        raise StatisticsError(f"class statistics of different widths {sorted(widths)}")
    pooled = pool_statistics(stats)
    weight, bias = lda_head(pooled, shrinkage)
    owners: list[tuple[str | None, list[str]]] = []
    seen: set[str] = set()
    shared: dict[str, list[str]] = {}
    for index, (vector, part) in enumerate(zip(vectors, stats)):
        group = vector.manifest.group
        fresh = [label for label in part.labels if label not in seen]
        for label in part.labels:
            shared.setdefault(label, []).append(group or f"#{index}")
        seen.update(fresh)
        if fresh:
            owners.append((group, fresh))
    entries, tensors = [], []
    for group, labels in owners:
        rows = [pooled.labels.index(label) for label in labels]
        entries.append(HeadEntry(group=group, labels=labels))
        tensors.append((weight[rows].float().contiguous(), bias[rows].float().contiguous()))
    shared = {label: groups for label, groups in shared.items() if len(groups) > 1}
    if not all(math.isfinite(float(v)) for v in bias):
        raise StatisticsError("the lda head holds non-finite values")
    return ComposedHeads(entries, tensors, settings, "lda", shared)
