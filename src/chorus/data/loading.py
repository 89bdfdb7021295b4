"""Loading the audio of manifest clips, reporting bad files instead of stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from ..audio import AudioError, AudioInfo, AudioRangeError, audio_info, load_audio
from ..progress import ProgressFactory, resolve
from .clips import Clip


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


def clip_durations(clips: Iterable[Clip], failures: list[FailedClip],
                   progress: ProgressFactory | None = None) -> list[float | None]:
    """Seconds of audio each clip covers, from file headers (no decoding).

    A clip's ``end`` past its file's end is clamped, as :func:`load_clip` does. A clip
    whose header fails, or that starts past its file's end, gets None and is appended
    to ``failures``.
    """
    clips = list(clips)
    infos: dict[object, AudioInfo | AudioError] = {}
    bar = resolve(progress)(len(clips), "reading audio headers")
    durations: list[float | None] = []
    for index, clip in enumerate(clips):
        if clip.path not in infos:
            try:
                infos[clip.path] = audio_info(clip.path)
            except AudioError as exc:
                infos[clip.path] = exc
        info = infos[clip.path]
        start = clip.start or 0.0
        if isinstance(info, AudioInfo) and start >= info.duration:
            info = AudioRangeError(clip.path, f"clip starts at {start:g} s, past the end ({info.duration:g} s)")
        if isinstance(info, AudioError):
            failures.append(FailedClip(index, clip, info))
            durations.append(None)
        else:
            durations.append(min(info.duration, clip.end or math.inf) - start)
        bar.update(1)
    bar.close()
    return durations
