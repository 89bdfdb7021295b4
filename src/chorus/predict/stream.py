"""Sliding windows over a streamed recording, in bounded memory.

The recording is decoded block by block (:func:`chorus.audio.stream_audio`); a tail
buffer of at most ``window - hop`` samples carries over between blocks, so every window
equals the same slice of the whole decoded file, wherever the block seams fall.
Positions are in samples at the model's rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..audio import stream_audio
from ..errors import InvalidInput


@dataclass(frozen=True)
class WindowSpec:
    """Windows of ``window`` seconds every ``hop`` seconds at ``rate`` Hz, decoded in
    blocks of ``block_seconds``."""

    window: float
    hop: float
    rate: int
    block_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.window) and math.isfinite(self.hop) and self.window > 0 and self.hop > 0):
            raise InvalidInput(f"window and hop must be positive seconds, got window={self.window}, hop={self.hop}")
        if self.window_samples < 1 or self.hop_samples < 1:
            raise InvalidInput(f"window {self.window} s / hop {self.hop} s is shorter than one sample at {self.rate} Hz")
        if not self.block_seconds > 0:
            raise InvalidInput(f"block_seconds must be positive, got {self.block_seconds}")

    @property
    def window_samples(self) -> int:
        return int(round(self.window * self.rate))

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop * self.rate))


@dataclass(frozen=True)
class AudioWindow:
    """One window: ``samples [window_samples]`` starting at sample ``start``; the first
    ``valid`` samples are audio, the rest zero padding (only the last window is padded)."""

    start: int
    samples: np.ndarray
    valid: int


def stream_windows(path: str | Path, spec: WindowSpec) -> Iterator[AudioWindow]:
    """Windows over ``path`` at ``spec.rate``: full windows at ``0, hop, 2·hop, ...`` while
    they fit, then one zero-padded window over any uncovered tail (as
    :func:`chorus.data.windows.sliding_windows` with ``partial="pad"``, except that
    no window starts past the end when the hop exceeds the window).

    Memory holds one decoded block plus the tail buffer. Audio errors surface as the
    :class:`chorus.audio.AudioError` family (the header is checked at the call).
    """
    blocks = stream_audio(path, spec.block_seconds, spec.rate)
    return _windows(blocks, spec.window_samples, spec.hop_samples)


def _windows(blocks: Iterator[np.ndarray], window: int, hop: int) -> Iterator[AudioWindow]:
    buffer = np.zeros(0, np.float32)
    offset = 0  # sample index of buffer[0]
    start = 0  # next window start
    covered = 0  # end of the last window yielded
    for block in blocks:
        buffer = np.concatenate([buffer, block]) if buffer.size else block
        while start + window <= offset + buffer.size:
            at = start - offset
            yield AudioWindow(start, buffer[at:at + window].copy(), window)
            covered = start + window
            start += hop
        drop = min(start - offset, buffer.size)
        buffer = buffer[drop:]
        offset += drop
    total = offset + buffer.size
    if covered < total and start < total:
        samples = np.zeros(window, np.float32)
        tail = buffer[start - offset:]
        samples[:tail.size] = tail
        yield AudioWindow(start, samples, int(tail.size))
