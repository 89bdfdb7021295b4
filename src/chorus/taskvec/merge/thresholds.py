"""Exact k-th largest magnitudes over whole task vectors, streaming, in bounded memory.

Global-scope sparsifiers (TIES' top-k over a whole vector, Breadcrumbs' window) need one
magnitude threshold per vector over all of its parameter entries, but a merge never holds
a whole vector. Non-negative float32 values sort like their bit patterns read as integers,
so a two-pass radix selection finds the exact value:

1. histogram the upper 16 bits of every ``|x|`` (32,768 bins) and locate the bin holding
   the k-th largest;
2. histogram the lower 16 bits of the entries in that bin (65,536 bins) and read off the
   exact bit pattern.

Memory: two small histograms per vector and rank, plus one tensor at a time. Cost: two
extra reads of every vector (the merge itself is the third).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor

_HIGH_BINS = 1 << 15
_LOW_BINS = 1 << 16

TensorPass = Callable[[], Iterable[Sequence[Tensor]]]
"""Returns an iterable over tensor names yielding one tensor per vector (same order each
call): the streaming reader the driver provides."""


def _bits(tensor: Tensor) -> Tensor:
    """Bit patterns of ``|x|`` as float32, read as int32 (monotonic in ``|x|``)."""
    return tensor.detach().reshape(-1).float().abs().view(torch.int32)


def _locate(histogram: Tensor, k: int) -> tuple[int, int]:
    """``(bin, rank inside the bin)`` of the k-th largest entry (k from 1)."""
    from_top = histogram.flip(0).cumsum(0)
    index = int(torch.searchsorted(from_top, torch.tensor([k], dtype=from_top.dtype)).item())
    bin_ = histogram.numel() - 1 - index
    above = int(from_top[index - 1]) if index else 0
    return bin_, k - above


def kth_largest_magnitudes(stream: TensorPass, vectors: int,
                           ranks: Sequence[int] | Sequence[Sequence[int]]) -> list[tuple[float, ...]]:
    """For each of ``vectors`` vectors, the k-th largest ``|x|`` for every ``k`` in
    ``ranks`` (k from 1), over all entries ``stream()`` yields for it. ``ranks``: one list
    for every vector, or one list per vector (vectors kept at different densities).

    ``k`` < 1 gives +inf and ``k`` > entries gives 0, as
    :func:`chorus.taskvec.merge.core.kth_largest_magnitude` does per tensor.
    """
    per_vector = ([list(r) for r in ranks] if ranks and isinstance(ranks[0], Sequence)
                  else [list(ranks)] * vectors)
    high = [torch.zeros(_HIGH_BINS, dtype=torch.int64) for _ in range(vectors)]
    counts = [0] * vectors
    for tensors in stream():
        for index, tensor in enumerate(tensors):
            bits = _bits(tensor)
            counts[index] += bits.numel()
            high[index] += torch.bincount(bits >> 16, minlength=_HIGH_BINS)[:_HIGH_BINS]
    wanted: dict[tuple[int, int], tuple[int, int]] = {}
    for index in range(vectors):
        for k in per_vector[index]:
            if 1 <= k <= counts[index]:
                wanted[(index, k)] = _locate(high[index], k)
    low = {key: torch.zeros(_LOW_BINS, dtype=torch.int64) for key in wanted}
    if wanted:
        for tensors in stream():
            for index, tensor in enumerate(tensors):
                bits = None
                for k in per_vector[index]:
                    if (index, k) not in wanted:
                        continue
                    bits = _bits(tensor) if bits is None else bits
                    in_bin = bits[(bits >> 16) == wanted[(index, k)][0]]
                    low[(index, k)] += torch.bincount(in_bin & 0xFFFF, minlength=_LOW_BINS)
    results = []
    for index in range(vectors):
        values = []
        for k in per_vector[index]:
            if k < 1:
                values.append(math.inf)
            elif k > counts[index]:
                values.append(0.0)
            else:
                bin_, rank = wanted[(index, k)]
                low_bits, _ = _locate(low[(index, k)], rank)
                pattern = torch.tensor([(bin_ << 16) | low_bits], dtype=torch.int32)
                values.append(float(pattern.view(torch.float32)))
        results.append(tuple(values))
    return results
