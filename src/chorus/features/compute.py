"""Per-batch compute: one forward pass of an encoder -> pooled (and frame) features of
every layer. Kept apart from loading and writing so other engines (windows over long
recordings, Ray) can call it on their own batches."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..encoders import Encoder, LayerOutputs, iter_batches


def split_outputs(outputs: LayerOutputs, keep_frames: bool,
                  pooling: str = "mean") -> tuple[list[np.ndarray], list[list[np.ndarray]] | None]:
    """``outputs`` of a batch of ``n`` clips -> (pooled, frames).

    ``pooled[l]``: ``[n, D_l]`` float32 pooled over valid frames by ``pooling`` (mean, max,
    or ``mean+max``: ``[n, 2 D_l]``; :func:`chorus.encoders.pool_frames`).
    ``frames[l][i]``: ``[valid frames of clip i, D_l]`` float32, or None unless ``keep_frames``.
    """
    pooled = [p.float().cpu().numpy() for p in outputs.pooled(pooling)]
    if not keep_frames:
        return pooled, None
    frames = []
    for hidden, mask in zip(outputs.hidden, outputs.masks):
        hidden, mask = hidden.float().cpu().numpy(), mask.cpu().numpy()
        frames.append([hidden[row][mask[row]] for row in range(hidden.shape[0])])
    return pooled, frames


def encode_batches(encoder: Encoder, waveforms: Sequence[np.ndarray], batch_size: int, keep_frames: bool,
                   device: str = "cpu",
                   pooling: str = "mean") -> Iterator[tuple[list[int], list[np.ndarray], list[list[np.ndarray]] | None]]:
    """One forward pass per batch over ``waveforms`` (at the encoder's rate), all layers,
    pooled by ``pooling`` (:func:`split_outputs`).

    Yields ``(indices, pooled, frames)`` per batch; ``indices`` name the input rows.
    """
    for indices, outputs in iter_batches(encoder, waveforms, batch_size, device):
        pooled, frames = split_outputs(outputs, keep_frames, pooling)
        yield indices, pooled, frames
