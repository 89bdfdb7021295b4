"""Fixed-window models (AST, Whisper, CLAP) on clips of any length.

Such a model takes one fixed-size input. Each clip is cut into consecutive windows (the
last one shorter), each window is prepared on its own from the clip's samples only (never
from the batch's padding), all windows of the batch run through the model as one batch,
and every layer's frames are concatenated back per clip in time order. A clip's features
therefore do not depend on the other clips of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .base import lengths_to_mask


@dataclass(frozen=True)
class WindowPlan:
    """Which clip and which window each model input (segment) is.

    ``rows``, ``index``, ``starts``, ``stops``: ``[segments]`` int64 — the clip's batch row,
    the window's number within the clip, and its sample range ``[start, stop)`` (``stop``
    never beyond the clip's length). ``windows``: the most windows of any clip.
    """

    rows: Tensor
    index: Tensor
    starts: Tensor
    stops: Tensor
    windows: int
    batch: int

    @property
    def lengths(self) -> Tensor:
        """Valid samples of each segment: ``[segments]``."""
        return self.stops - self.starts


def plan_windows(lengths: Tensor, counts: Tensor, hop: int, length: int) -> WindowPlan:
    """Window ``k`` of a clip covers samples ``[k * hop, k * hop + length)`` cut at the clip's
    end; ``counts[b]`` (at least 1) windows for clip ``b``."""
    lengths = lengths.cpu().long()
    counts = counts.cpu().long().clamp_min(1)
    rows = torch.repeat_interleave(torch.arange(len(lengths)), counts)
    index = torch.cat([torch.arange(int(c)) for c in counts])
    starts = index * hop
    stops = torch.minimum(starts + length, lengths[rows])
    return WindowPlan(rows, index, starts, torch.maximum(stops, starts), int(counts.max()), len(lengths))


def window_counts(lengths: Tensor, window: int) -> Tensor:
    """Windows of ``window`` samples (no overlap) needed to cover each clip, at least one."""
    return ((lengths.cpu().long() + window - 1) // window).clamp_min(1)


def cut_segments(waveforms: Tensor, plan: WindowPlan) -> list[np.ndarray]:
    """Each segment's valid samples as float32 numpy (for numpy feature extractors)."""
    data = waveforms.detach().float().cpu().numpy()
    return [data[int(r), int(a):int(b)] for r, a, b in zip(plan.rows, plan.starts, plan.stops)]


def pad_segments(waveforms: Tensor, plan: WindowPlan, length: int) -> Tensor:
    """Segments as a zero-padded ``[segments, length]`` tensor on the input's device."""
    out = waveforms.new_zeros(len(plan.rows), length)
    for row, (clip, start, stop) in enumerate(zip(plan.rows.tolist(), plan.starts.tolist(), plan.stops.tolist())):
        out[row, : stop - start] = waveforms[clip, start:stop]
    return out


def assemble(hidden: Tensor, valid: Tensor, plan: WindowPlan) -> tuple[Tensor, Tensor]:
    """Per-segment ``hidden [segments, frames, features]`` with ``valid [segments]`` leading
    valid frames -> per-clip ``([batch, windows * frames, features], mask [batch, windows * frames])``.
    Windows a clip does not have are zeros, masked out."""
    segments, frames, features = hidden.shape
    slots = (plan.rows * plan.windows + plan.index).to(hidden.device)
    total = plan.batch * plan.windows
    out = hidden.new_zeros(total, frames, features).index_copy(0, slots, hidden)
    seg_mask = lengths_to_mask(valid.to(hidden.device), frames)
    mask = torch.zeros(total, frames, dtype=torch.bool, device=hidden.device).index_copy(0, slots, seg_mask)
    return out.view(plan.batch, plan.windows * frames, features), mask.view(plan.batch, plan.windows * frames)
