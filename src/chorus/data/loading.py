"""Loading the audio of manifest clips, reporting bad files instead of stopping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from ..audio import AudioError, load_audio
from .manifest import Clip


@dataclass(frozen=True)
class FailedClip:
    """A clip that could not be loaded, and why."""

    index: int
    clip: Clip
    error: AudioError


def load_clip(clip: Clip, sample_rate: int) -> np.ndarray:
    """The clip's ``[samples]`` mono float32 waveform at ``sample_rate``."""
    waveform, _ = load_audio(clip.path, sample_rate, start=clip.start or 0.0, end=clip.end)
    return waveform


def iter_clips(clips: Iterable[Clip], sample_rate: int, failures: list[FailedClip]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, waveform)`` for every loadable clip.

    A clip whose audio fails (missing, corrupt, empty, NaN...) is appended to ``failures``
    and skipped; the rest go on.
    """
    for index, clip in enumerate(clips):
        try:
            yield index, load_clip(clip, sample_rate)
        except AudioError as exc:
            failures.append(FailedClip(index, clip, exc))
