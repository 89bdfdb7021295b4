"""Split a long signal into overlapping windows and join processed windows by cross-fading.

Windows start a fixed stride apart and are all full except the last, which stops at the
end of the signal (it still reaches at least one sample past the window before it). With
an overlap of at most half a window only neighbours overlap, and a raised-cosine fade hands
over from one to the next: the weights sum to one at every sample, so a signal processed
by the identity comes back unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from pydantic import model_validator

from ..audio import resample
from ..progress import ProgressFactory, resolve
from ..schema import FrozenModel
from .errors import SeparationError
from ..errors import InvalidInput


@dataclass(frozen=True)
class Chunk:
    """Samples ``[start, end)`` of the signal."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def plan_chunks(total: int, window: int, overlap: int) -> list[Chunk]:
    """Windows of ``window`` samples, consecutive starts ``window − overlap`` apart.

    A signal no longer than ``window`` is one chunk of its own length.
    """
    if window < 1 or total < 1:
        raise InvalidInput(f"need a positive window and signal length, got window={window}, total={total}")
    if not 0 <= overlap <= window // 2:
        raise InvalidInput(f"overlap must lie in [0, window / 2], got overlap={overlap}, window={window}")
    if total <= window:
        return [Chunk(0, total)]
    stride = window - overlap
    count = 1 + math.ceil((total - window) / stride)
    return [Chunk(i * stride, min(i * stride + window, total)) for i in range(count)]


def _ramp(length: int) -> np.ndarray:
    """Rising half of a raised cosine over ``length`` samples (0 excluded, 1 excluded)."""
    phase = (np.arange(length, dtype=np.float64) + 0.5) / length
    return np.sin(0.5 * np.pi * phase) ** 2


def crossfade_weights(chunks: list[Chunk]) -> list[np.ndarray]:
    """Per-chunk ``[chunk.length]`` weights that sum to one over the whole signal."""
    weights = []
    for k, chunk in enumerate(chunks):
        w = np.ones(chunk.length, dtype=np.float64)
        if k > 0:
            fade_in = chunks[k - 1].end - chunk.start
            w[:fade_in] *= _ramp(fade_in)
        if k + 1 < len(chunks):
            fade_out = chunk.end - chunks[k + 1].start
            w[chunk.length - fade_out:] *= 1.0 - _ramp(fade_out)
        weights.append(w)
    return weights


def crossfade_join(pieces: list[np.ndarray], chunks: list[Chunk], total: int) -> np.ndarray:
    """Join processed chunks ``[..., chunk.length]`` into ``[..., total]`` float32.

    Leading axes (e.g. sources) are carried through.
    """
    if len(pieces) != len(chunks):
        raise ValueError(f"{len(pieces)} pieces for {len(chunks)} chunks")
    lead = np.asarray(pieces[0]).shape[:-1]
    out = np.zeros(lead + (total,), dtype=np.float64)
    for piece, chunk, weight in zip(pieces, chunks, crossfade_weights(chunks)):
        out[..., chunk.start:chunk.end] += np.asarray(piece, dtype=np.float64) * weight
    return out.astype(np.float32)


def fit_length(signal: np.ndarray, length: int) -> np.ndarray:
    """``[samples]`` cut or zero-padded to exactly ``length`` samples."""
    if signal.shape[0] >= length:
        return signal[:length]
    return np.pad(signal, (0, length - signal.shape[0]))


class ChunkedSettings(FrozenModel):
    """Settings every separation sampler shares.

    ``window_seconds``: chunk length (default: the model's own); ``overlap_seconds``:
    cross-fade between chunks (default: 1/8 window).
    """

    steps: int = 50
    seed: int = 0
    window_seconds: float | None = None
    overlap_seconds: float | None = None

    @model_validator(mode="after")
    def _check_steps(self) -> "ChunkedSettings":
        if self.steps < 1:
            raise SeparationError(f"steps must be at least 1, got {self.steps}")
        return self

    def plan(self, total: int, rate: int, default_window: int) -> list[Chunk]:
        window = default_window if self.window_seconds is None else int(round(self.window_seconds * rate))
        overlap = window // 8 if self.overlap_seconds is None else int(round(self.overlap_seconds * rate))
        return plan_chunks(total, window, overlap)


def process_in_chunks(waveform: np.ndarray, sample_rate: int, model_rate: int, settings: ChunkedSettings,
                      default_window: int, gain: Callable[[np.ndarray], float],
                      process: Callable[[np.ndarray, int, Callable[[], None]], np.ndarray],
                      progress: ProgressFactory | None = None, desc: str = "separating",
                      ticks_per_chunk: int = 1) -> tuple[list[np.ndarray], int]:
    """Run a separator over a long ``[samples]`` signal chunk by chunk.

    The signal is resampled to ``model_rate``, scaled by ``gain(signal)`` and cut into
    chunks; ``process(chunk [samples], index, tick)`` returns ``[N, samples]`` sources and
    calls ``tick()`` ``ticks_per_chunk`` times to advance the progress bar. The sources are
    cross-faded, unscaled, resampled back and fitted to the input length. Returns the
    sources and the number of chunks.
    """
    x = resample(waveform, sample_rate, model_rate)
    scale = float(gain(x))
    x = (x * scale).astype(np.float32)
    chunks = settings.plan(len(x), model_rate, default_window)
    bar = resolve(progress)(ticks_per_chunk * len(chunks), desc)
    try:
        pieces = [process(x[chunk.start:chunk.end], k, lambda: bar.update(1)) for k, chunk in enumerate(chunks)]
    finally:
        bar.close()
    joined = crossfade_join(pieces, chunks, len(x)) / scale
    return [fit_length(resample(s, model_rate, sample_rate), len(waveform)) for s in joined], len(chunks)
