"""Prediction heads and time alignment for layer-to-layer distillation.

A head maps the student layer's frames to one teacher layer's feature space:
Linear -> GELU -> Linear. Student and teacher frame rates differ, so each clip's valid
student frames are linearly interpolated in time to the teacher's number of valid frames
for that clip (a common length per clip) before the head is applied.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class PredictionHead(nn.Module):
    """``[frames, student features] -> [frames, teacher features]``."""

    def __init__(self, student_dim: int, teacher_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(student_dim, hidden), nn.GELU(), nn.Linear(hidden, teacher_dim))

    def forward(self, frames: Tensor) -> Tensor:
        return self.net(frames)


def align_frames(hidden: Tensor, valid: Tensor, lengths: Sequence[int]) -> Tensor:
    """Each clip's valid student frames resampled to ``lengths[i]`` frames, concatenated.

    ``hidden [batch, frames, features]``, ``valid [batch]`` valid frame counts (at least 1),
    ``lengths``: target frame counts. Returns ``[sum(lengths), features]``; linear
    interpolation with half-frame-centred sample positions (``align_corners=False``).
    """
    pieces = []
    for row, length in enumerate(lengths):
        count = max(1, int(valid[row]))
        clip = hidden[row, :count].transpose(0, 1).unsqueeze(0)  # [1, features, frames]
        if count != length:
            clip = nn.functional.interpolate(clip, size=int(length), mode="linear", align_corners=False)
        pieces.append(clip[0].transpose(0, 1))
    return torch.cat(pieces)
