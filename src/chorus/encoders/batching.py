"""Padding-correct batching of variable-length clips through an encoder."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from .base import Encoder, LayerOutputs


def pad_batch(waveforms: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
    """Zero-pad ``[samples]`` waveforms into ``([batch, max_samples], lengths [batch])``."""
    tensors = [torch.as_tensor(np.asarray(w, dtype=np.float32)) if not isinstance(w, Tensor) else w.float()
               for w in waveforms]
    lengths = torch.tensor([t.shape[-1] for t in tensors], dtype=torch.int64)
    batch = torch.zeros(len(tensors), int(lengths.max()), dtype=torch.float32)
    for row, t in enumerate(tensors):
        batch[row, : t.shape[-1]] = t
    return batch, lengths


def plan_batches(lengths: Sequence[int], batch_size: int, exact_lengths: bool) -> list[list[int]]:
    """Group clip indices into batches.

    Clips are sorted by length so padding stays small. With ``exact_lengths`` (for
    encoders whose features change under padding) a batch only holds equal lengths.
    Returned indices refer to the input order.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        fits = current is not None and len(current) < batch_size
        if fits and exact_lengths:
            fits = lengths[current[0]] == lengths[index]
        if fits:
            current.append(index)
        else:
            batches.append([index])
    return batches


def iter_batches(encoder: Encoder, waveforms: Sequence[np.ndarray], batch_size: int = 8,
                 device: str | torch.device = "cpu") -> Iterator[tuple[list[int], LayerOutputs]]:
    """Run ``waveforms`` (at the encoder's rate) through ``encoder`` without gradients.

    Yields ``(indices, outputs)`` per batch; ``indices`` say which input each row is.
    """
    lengths = [int(np.asarray(w).shape[-1]) for w in waveforms]
    for indices in plan_batches(lengths, batch_size, exact_lengths=not encoder.pads_exactly):
        batch, batch_lengths = pad_batch([waveforms[i] for i in indices])
        with torch.inference_mode():
            outputs = encoder(batch.to(device), batch_lengths.to(device))
        yield indices, outputs


def pooled_features(encoder: Encoder, waveforms: Sequence[np.ndarray], batch_size: int = 8,
                    device: str | torch.device = "cpu", pooling: str = "mean") -> list[np.ndarray]:
    """Features of every layer pooled over valid frames (``mean``, ``max`` or ``mean+max``,
    see :meth:`LayerOutputs.pooled`): one ``[clips, features_l]`` array per layer, rows in
    input order, from one forward pass per batch."""
    per_layer: list[np.ndarray] | None = None
    for indices, outputs in iter_batches(encoder, waveforms, batch_size, device):
        pooled = [p.float().cpu().numpy() for p in outputs.pooled(pooling)]
        if per_layer is None:
            per_layer = [np.zeros((len(waveforms), p.shape[1]), np.float32) for p in pooled]
        for layer, p in enumerate(pooled):
            per_layer[layer][indices] = p
    return per_layer or []


def equal_length_passes(encoder: Encoder, waveforms: Sequence[np.ndarray], batch_size: int
                        ) -> Iterator[tuple[list[int], LayerOutputs]]:
    """``(indices, outputs)`` of ``encoder`` (in eval mode, without gradients; its mode is
    restored afterwards) over batches of clips of exactly equal length, so padding never
    enters what a caller (or a forward hook) reads."""
    was_training = encoder.training
    encoder.eval()
    try:
        lengths = [int(np.asarray(w).shape[-1]) for w in waveforms]
        for indices in plan_batches(lengths, batch_size, exact_lengths=True):
            batch, batch_lengths = pad_batch([waveforms[i] for i in indices])
            with torch.inference_mode():
                yield indices, encoder(batch, batch_lengths)
    finally:
        encoder.train(was_training)
