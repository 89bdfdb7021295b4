"""Turning stored features into standardised probe inputs, with train statistics only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .models import SplitInputs

_MIN_STD = 1e-6

FRAME_POOLED = ("max", "mean+max")
"""Linear poolings computed here from the stored valid frames (``mean`` is stored as is)."""


def max_over_frames(per_clip: list[np.ndarray], width: int) -> np.ndarray:
    """``[clips, width]``: each clip's maximum over its valid frames ``[frames, width]``;
    zeros for a clip without any valid frame (as the stored mean)."""
    out = np.zeros((len(per_clip), width), np.float32)
    for row, frames in enumerate(per_clip):
        if len(frames):
            out[row] = frames.max(axis=0)
    return out


def pooled_inputs(pooled: list[np.ndarray], frames: list[list[np.ndarray]] | None, pooling: str) -> list[np.ndarray]:
    """Per layer ``[clips, D_l]`` features of a linear ``pooling``: ``mean`` (the stored
    ``pooled``), ``max`` over valid frames, or ``mean+max`` (``[clips, 2 D_l]``, mean first).
    The last two need ``frames[l][i]`` ``[frames, D_l]``."""
    if pooling not in FRAME_POOLED:
        return pooled
    if frames is None:
        raise ValueError(f"{pooling} pooling needs frame-level features")
    maxed = [max_over_frames(per_clip, mean.shape[1]) for mean, per_clip in zip(pooled, frames)]
    if pooling == "max":
        return maxed
    return [np.concatenate([mean, peak], axis=1) for mean, peak in zip(pooled, maxed)]


@dataclass
class Standardizer:
    """Per-layer feature means and standard deviations measured on the train split.

    ``pooled_*[l]``: ``[D_l]`` over train clips' T-A features; ``frame_*[l]``: ``[D_l]`` over
    all valid train frames (None without frames). Constant features get std 1.
    """

    pooled_mean: list[np.ndarray]
    pooled_std: list[np.ndarray]
    frame_mean: list[np.ndarray] | None = None
    frame_std: list[np.ndarray] | None = None

    @classmethod
    def fit(cls, pooled: list[np.ndarray], frames: list[list[np.ndarray]] | None = None) -> "Standardizer":
        def moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            values = values.astype(np.float64)
            std = values.std(axis=0) if len(values) else np.ones(values.shape[1])
            mean = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
            return mean.astype(np.float32), np.where(std < _MIN_STD, 1.0, std).astype(np.float32)

        pooled_stats = [moments(p) for p in pooled]
        frame_stats = None if frames is None else [moments(np.concatenate(per_clip)) for per_clip in frames]
        return cls([m for m, _ in pooled_stats], [s for _, s in pooled_stats],
                   None if frame_stats is None else [m for m, _ in frame_stats],
                   None if frame_stats is None else [s for _, s in frame_stats])

    def inputs(self, pooled: list[np.ndarray], targets: np.ndarray,
               frames: list[list[np.ndarray]] | None = None) -> SplitInputs:
        """Standardised :class:`SplitInputs` (frames zero-padded to the longest clip per layer)."""
        standard = [torch.from_numpy(((values - mean) / std).astype(np.float32))
                    for values, mean, std in zip(pooled, self.pooled_mean, self.pooled_std)]
        target_tensor = torch.as_tensor(targets, dtype=torch.int64 if targets.ndim == 1 else torch.float32)
        if frames is None:
            return SplitInputs(standard, target_tensor)
        if self.frame_mean is None or self.frame_std is None:
            raise ValueError("this standardizer was fitted without frames")
        padded, masks = [], []
        for layer, per_clip in enumerate(frames):
            longest = max((f.shape[0] for f in per_clip), default=0)
            values = np.zeros((len(per_clip), max(longest, 1), per_clip[0].shape[1]), np.float32)
            mask = np.zeros(values.shape[:2], bool)
            for row, clip_frames in enumerate(per_clip):
                values[row, : clip_frames.shape[0]] = (clip_frames - self.frame_mean[layer]) / self.frame_std[layer]
                mask[row, : clip_frames.shape[0]] = True
            padded.append(torch.from_numpy(values))
            masks.append(torch.from_numpy(mask))
        return SplitInputs(standard, target_tensor, padded, masks)
