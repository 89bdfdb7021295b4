"""Batches of windows filled from several open recordings at once.

Up to ``open_files`` recordings stream side by side; each batch takes windows from them
in turn, so short files do not leave batches half empty and the model always sees full
batches. Every batch has the same shape ``[batch_size, window_samples]`` (the last one
is filled with silent rows whose scores are dropped): a window's scores then never
depend on which other windows share its batch, so reruns and other engines give the
same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..errors import ChorusError
from .stream import AudioWindow, WindowSpec, stream_windows

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(waveforms [batch, samples], lengths [batch]) -> scores [batch, classes]``."""


@dataclass
class RecordingScores:
    """Scores of every window of one recording (or why it failed).

    ``starts [windows]`` and ``valid [windows]``: first sample and audio samples of each
    window at ``rate``; ``scores [windows, classes]`` float32; ``samples``: length of the
    decoded recording at ``rate``.
    """

    index: int
    path: Path
    rate: int
    starts: np.ndarray
    valid: np.ndarray
    scores: np.ndarray
    samples: int
    error: str | None = None


@dataclass
class _Open:
    index: int
    path: Path
    windows: Iterator[AudioWindow]
    starts: list[int] = field(default_factory=list)
    valid: list[int] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    exhausted: bool = False
    failed: str | None = None

    @property
    def samples(self) -> int:
        return self.starts[-1] + self.valid[-1] if self.starts else 0


def score_recordings(score: ScoreFn, recordings: Sequence[tuple[int, Path]], spec: WindowSpec, classes: int,
                     batch_size: int = 16, open_files: int = 4) -> Iterator[RecordingScores]:
    """Score every window of every ``(index, path)`` recording; yield each recording's
    :class:`RecordingScores` as soon as its last window is scored (completion order).

    A recording whose audio fails (at opening or mid-stream) is yielded with ``error``
    set and no scores; the others go on.
    """
    if batch_size < 1 or open_files < 1:
        raise ValueError(f"batch_size and open_files must be >= 1, got {batch_size}, {open_files}")
    queue = list(recordings)[::-1]
    active: list[_Open] = []
    batch = np.zeros((batch_size, spec.window_samples), np.float32)
    lengths = np.full(batch_size, spec.window_samples, np.int64)
    turn = 0
    while queue or active:
        while queue and len(active) < open_files:
            index, path = queue.pop()
            try:
                active.append(_Open(index, path, stream_windows(path, spec)))
            except ChorusError as exc:
                yield _failed(index, path, spec, str(exc))
        owners: list[_Open] = []
        while len(owners) < batch_size and any(not f.exhausted for f in active):
            stream = active[turn % len(active)]
            turn += 1
            if stream.exhausted:
                continue
            window = _next_window(stream)
            if window is None:
                continue
            batch[len(owners)] = window.samples
            lengths[len(owners)] = window.valid
            stream.starts.append(window.start)
            stream.valid.append(window.valid)
            owners.append(stream)
        if owners:
            batch[len(owners):] = 0.0
            lengths[len(owners):] = spec.window_samples
            values = score(torch.from_numpy(batch), torch.from_numpy(lengths)).float().cpu().numpy()
            for row, stream in enumerate(owners):
                stream.scores.append(values[row:row + 1])
        for stream in [f for f in active if f.exhausted]:
            active.remove(stream)
            yield _finished(stream, spec, classes)
        turn = 0


def _next_window(stream: _Open) -> AudioWindow | None:
    """The stream's next window, or None once it is exhausted or has failed."""
    try:
        return next(stream.windows)
    except StopIteration:
        stream.exhausted = True
    except ChorusError as exc:
        stream.exhausted, stream.failed = True, str(exc)
    return None


def _failed(index: int, path: Path, spec: WindowSpec, error: str) -> RecordingScores:
    return RecordingScores(index, path, spec.rate, np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros((0, 0), np.float32), 0, error)


def _finished(stream: _Open, spec: WindowSpec, classes: int) -> RecordingScores:
    if stream.failed is not None:
        return _failed(stream.index, stream.path, spec, stream.failed)
    scores = np.concatenate(stream.scores) if stream.scores else np.zeros((0, classes), np.float32)
    return RecordingScores(stream.index, stream.path, spec.rate, np.asarray(stream.starts, np.int64),
                           np.asarray(stream.valid, np.int64), scores, stream.samples)
