"""Seeded random masks for self-supervised objectives.

- :func:`span_mask`: wav2vec 2.0 / HuBERT time-span masks over transformer frames, drawn by
  transformers' own ``_compute_mask_indices`` (it draws from NumPy's global generator, so
  it runs inside :func:`numpy_seeded`);
- :func:`patch_mask`: random rectangular patches of a spectrogram grid, from a torch
  generator.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ..encoders.base import lengths_to_mask
from ..encoders.hf_common import conv_output_lengths
from .errors import PretrainError


@contextlib.contextmanager
def numpy_seeded(seed: int) -> Iterator[None]:
    """Seed NumPy's global generator for the duration, then restore its previous state
    (transformers' mask and negative samplers use it)."""
    state = np.random.get_state()
    np.random.seed(seed % (2**32))
    try:
        yield
    finally:
        np.random.set_state(state)


def frame_mask(encoder, lengths: Tensor, samples: int) -> Tensor:
    """``[batch, frames]`` bool: the valid transformer frames of clips of ``lengths`` samples
    in a batch ``samples`` wide, for a wav2vec2-style encoder (its public ``kernels``,
    ``strides`` and ``min_samples``; short clips are padded to ``min_samples``)."""
    width = torch.tensor([max(samples, encoder.min_samples)])
    frames = int(conv_output_lengths(width, encoder.kernels, encoder.strides)[0])
    valid = conv_output_lengths(lengths.cpu().clamp_min(encoder.min_samples), encoder.kernels, encoder.strides)
    return lengths_to_mask(valid, frames)


def span_mask(valid: Tensor, probability: float, span: int) -> Tensor:
    """``[batch, frames]`` bool mask of spans of ``span`` frames starting at about
    ``probability`` of the valid frames (``valid [batch, frames]``), at least two spans
    per clip, inside its valid frames (wav2vec 2.0 / HuBERT masking). Spans longer than
    half the shortest clip are shortened to that. Uses NumPy's global generator: call
    inside :func:`numpy_seeded`."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

    shortest = int(valid.sum(dim=1).min())
    if shortest < 4:
        raise PretrainError(f"a clip has {shortest} transformer frames; masking needs at least 4 (longer clips "
                            f"or a longer --clip-seconds)")
    span = min(span, shortest // 2)
    mask = _compute_mask_indices(tuple(valid.shape), probability, span, attention_mask=valid.long(), min_masks=2)
    return torch.from_numpy(mask) & valid


def patch_mask(batch: int, rows: int, columns: int, ratio: float, gen: torch.Generator) -> Tensor:
    """``[batch, rows, columns]`` bool: ``round(ratio * rows * columns)`` cells (at least one)
    of each clip's grid chosen at random from ``gen``."""
    cells = rows * columns
    count = min(cells, max(1, round(ratio * cells)))
    order = torch.rand(batch, cells, generator=gen).argsort(dim=1)
    mask = torch.zeros(batch, cells, dtype=torch.bool)
    mask.scatter_(1, order[:, :count], True)
    return mask.view(batch, rows, columns)
