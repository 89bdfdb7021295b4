"""Teacher targets: a frozen teacher's chosen layers, computed once per clip and kept.

Each target layer is standardised per feature (mean and standard deviation over every
valid frame of the distillation clips), so that teachers and layers of very different
scales (ReLU maps, pitch logits) weigh alike in the L1 term of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..encoders import Encoder, iter_batches
from ..progress import ProgressFactory, resolve
from .errors import DistillError

_MIN_STD = 1e-4


@dataclass
class TeacherTargets:
    """Standardised features of one teacher's chosen layers for a fixed list of clips.

    ``frames[l][i]``: ``[valid frames, features_l]`` float32 of layer ``layers[l]`` for clip
    ``i`` (only the clip's valid frames). ``mean[l]``/``std[l]``: ``[features_l]`` used to
    standardise. ``frame_rates[l]``: Hz.
    """

    teacher: str
    layers: tuple[str, ...]
    frames: list[list[Tensor]]
    mean: list[Tensor]
    std: list[Tensor]
    frame_rates: tuple[float, ...]

    @property
    def clips(self) -> int:
        return len(self.frames[0]) if self.frames else 0

    @property
    def dims(self) -> list[int]:
        return [int(m.shape[0]) for m in self.mean]

    def batch(self, layer: int, indices: Sequence[int]) -> list[Tensor]:
        """Targets of ``indices`` for layer number ``layer`` (one ``[frames, features]`` each)."""
        return [self.frames[layer][i] for i in indices]

    def summary(self) -> dict:
        return {"teacher": self.teacher, "layers": list(self.layers), "dims": self.dims,
                "frame_rates": list(self.frame_rates),
                "frames_per_clip": [float(np.mean([f.shape[0] for f in layer])) for layer in self.frames]}


def compute_targets(teacher: Encoder, name: str, layers: Sequence[str], waveforms: Sequence[np.ndarray],
                    batch_size: int = 16, progress: ProgressFactory | None = None) -> TeacherTargets:
    """Run ``teacher`` (frozen, eval mode, no gradients) once over ``waveforms``
    (``[samples]`` each, at the teacher's rate) and keep the standardised ``layers``."""
    index = {layer: i for i, layer in enumerate(teacher.layer_names)}
    missing = [layer for layer in layers if layer not in index]
    if missing:
        raise DistillError(f"teacher {name!r} has no layer(s) {missing}; layers: {', '.join(teacher.layer_names)}")
    teacher.eval()
    raw: list[list[Tensor | None]] = [[None] * len(waveforms) for _ in layers]
    bar = resolve(progress)(len(waveforms), f"teacher {name}")
    for rows, outputs in iter_batches(teacher, waveforms, batch_size):
        for slot, layer in enumerate(layers):
            hidden, mask = outputs.hidden[index[layer]], outputs.masks[index[layer]]
            for position, row in enumerate(rows):
                raw[slot][row] = hidden[position][mask[position]].float().clone()
        bar.update(len(rows))
    bar.close()
    empty = [i for i in range(len(waveforms)) if any(raw[s][i].shape[0] == 0 for s in range(len(layers)))]
    if empty:
        raise DistillError(f"{len(empty)} clip(s) too short for teacher {name!r} (no valid frame), e.g. clip {empty[0]}")
    means, stds, frames = [], [], []
    for per_clip in raw:
        stacked = torch.cat(per_clip).double()
        mean, std = stacked.mean(dim=0), stacked.std(dim=0, unbiased=False).clamp_min(_MIN_STD)
        means.append(mean.float())
        stds.append(std.float())
        frames.append([((f.double() - mean) / std).float() for f in per_clip])
    return TeacherTargets(name, tuple(layers), frames, means, stds,
                          tuple(float(teacher.frame_rates[index[layer]]) for layer in layers))


def subset_targets(targets: TeacherTargets, indices: Sequence[int]) -> TeacherTargets:
    """The targets of the clips ``indices`` (standardisation statistics kept)."""
    return TeacherTargets(targets.teacher, targets.layers, [[layer[i] for i in indices] for layer in targets.frames],
                          targets.mean, targets.std, targets.frame_rates)


def save_targets(path: str | Path, targets: TeacherTargets, key: str) -> None:
    """Write ``targets`` to a safetensors file; ``key`` names what they were computed from
    (teacher, settings, clips) so that :func:`load_targets` never returns stale ones."""
    from ..tensorfile import save_tensors

    tensors: dict[str, Tensor] = {}
    for slot, per_clip in enumerate(targets.frames):
        tensors[f"{slot}.frames"] = torch.cat(per_clip)
        tensors[f"{slot}.counts"] = torch.tensor([f.shape[0] for f in per_clip], dtype=torch.int64)
        tensors[f"{slot}.mean"], tensors[f"{slot}.std"] = targets.mean[slot], targets.std[slot]
    save_tensors(path, tensors, {"key": key, "teacher": targets.teacher, "layers": list(targets.layers),
                                 "frame_rates": list(targets.frame_rates)})


def load_targets(path: str | Path, key: str) -> TeacherTargets | None:
    """Targets saved by :func:`save_targets` under the same ``key``; None when the file is
    absent or was computed from something else."""
    from ..tensorfile import load_tensors, read_metadata

    path = Path(path)
    if not path.is_file():
        return None
    meta = read_metadata(path)
    if meta.get("key") != key:
        return None
    tensors = load_tensors(path)
    frames = [list(torch.split(tensors[f"{s}.frames"], tensors[f"{s}.counts"].tolist())) for s in range(len(meta["layers"]))]
    return TeacherTargets(meta["teacher"], tuple(meta["layers"]), frames,
                          [tensors[f"{s}.mean"] for s in range(len(frames))],
                          [tensors[f"{s}.std"] for s in range(len(frames))], tuple(meta["frame_rates"]))
