"""In-memory clip sets and fixed-duration batches for training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .labels import LabelMap
from .loading import FailedClip, iter_clips
from .manifest import Clip
from ..progress import ProgressFactory, resolve


@dataclass
class ClipSet:
    """Decoded clips of one split, kept in memory.

    ``waveforms``: ``[samples]`` float32 arrays at ``sample_rate``. ``targets``: ``[clips]``
    int64 class indices (multiclass) or ``[clips, classes]`` float 0/1 (multilabel).
    """

    clips: list[Clip]
    waveforms: list[np.ndarray]
    targets: Tensor
    sample_rate: int

    def __len__(self) -> int:
        return len(self.waveforms)

    @property
    def hours(self) -> float:
        return sum(w.shape[0] for w in self.waveforms) / self.sample_rate / 3600.0


def load_clipset(clips: Sequence[Clip], labels: Sequence[str], task: str, sample_rate: int,
                 failures: list[FailedClip], progress: ProgressFactory | None = None, desc: str = "loading") -> ClipSet:
    """Decode ``clips`` at ``sample_rate``; clips that fail go to ``failures`` and are left out."""
    bar = resolve(progress)(len(clips), desc)
    kept: list[Clip] = []
    waveforms: list[np.ndarray] = []
    try:
        for index, waveform in iter_clips(clips, sample_rate, failures):
            kept.append(clips[index])
            waveforms.append(waveform)
            bar.update(1)
    finally:
        bar.close()
    targets = torch.from_numpy(LabelMap(tuple(labels)).encode(kept, multi_hot=task == "multilabel"))
    return ClipSet(kept, waveforms, targets, sample_rate)


def shuffled_batches(count: int, batch_size: int, gen: torch.Generator) -> list[list[int]]:
    """A random permutation of ``range(count)`` cut into batches (the last may be short)."""
    order = torch.randperm(count, generator=gen).tolist()
    return [order[start:start + batch_size] for start in range(0, count, batch_size)]


def crop_batch(waveforms: Sequence[np.ndarray], indices: Sequence[int], clip_samples: int | None,
               gen: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """``([batch, samples] float32, lengths [batch])`` of fixed-duration crops.

    Clips longer than ``clip_samples`` are cropped at a random offset drawn from ``gen``
    (training) or centred (``gen=None``, evaluation); shorter clips are zero-padded and
    their ``lengths`` say how much is real. ``clip_samples=None`` keeps whole clips,
    padded to the longest in the batch.
    """
    pieces = []
    for index in indices:
        waveform = waveforms[index]
        excess = 0 if clip_samples is None else waveform.shape[0] - clip_samples
        if excess > 0:
            start = (int(torch.randint(excess + 1, (1,), generator=gen)) if gen is not None else excess // 2)
            waveform = waveform[start:start + clip_samples]
        pieces.append(waveform)
    width = clip_samples if clip_samples is not None else max(p.shape[0] for p in pieces)
    batch = torch.zeros(len(pieces), width, dtype=torch.float32)
    for row, piece in enumerate(pieces):
        batch[row, : piece.shape[0]] = torch.from_numpy(np.ascontiguousarray(piece, dtype=np.float32))
    return batch, torch.tensor([p.shape[0] for p in pieces], dtype=torch.int64)


@dataclass
class EvalAudio:
    """Decoded clips at ``sample_rate`` (``waveforms[i]``: ``[samples]`` float32 of ``clips[i]``);
    ``failures``: clips that could not be decoded (left out, reported)."""

    clips: list[Clip]
    waveforms: list[np.ndarray]
    sample_rate: int
    failures: list[FailedClip] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    def subset(self, keep: Sequence[int]) -> "EvalAudio":
        return EvalAudio([self.clips[i] for i in keep], [self.waveforms[i] for i in keep], self.sample_rate,
                         self.failures)

    def rows_of_groups(self, groups: Sequence[str]) -> list[int]:
        """Indices of the clips whose group is in ``groups``, in clip order."""
        wanted = set(groups)
        return [i for i, clip in enumerate(self.clips) if clip.group in wanted]

    def of_groups(self, groups: Sequence[str]) -> "EvalAudio":
        """The clips whose group is in ``groups``."""
        return self.subset(self.rows_of_groups(groups))


def load_eval_audio(clips: Sequence[Clip], sample_rate: int, progress: ProgressFactory | None = None,
                    desc: str = "loading clips") -> EvalAudio:
    """Decode ``clips`` at ``sample_rate``; clips that fail are reported in ``failures``."""
    failures: list[FailedClip] = []
    labels = sorted({label for clip in clips for label in clip.labels})
    loaded = load_clipset(list(clips), labels, "multilabel", sample_rate, failures, progress, desc)
    return EvalAudio(loaded.clips, loaded.waveforms, sample_rate, failures)
