"""Decode, downmix, resample and stream audio.

Waveforms are float32 NumPy arrays of shape ``[samples]`` (mono), nominally in
[-1, 1]; sample rates are in Hz; times are in seconds. Decoding goes through libsndfile
(wav, flac, ogg/vorbis/opus, mp3, aiff, caf, w64, rf64, au); resampling through soxr.
Any sample rate libsndfile can store works, from 8 kHz speech to 384 kHz bat detectors.

Every failure raises an :class:`AudioError` subclass whose message starts with the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from .errors import FileProblem
from .fileio import atomic_path

SUPPORTED_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
     ".caf", ".w64", ".rf64", ".au", ".snd"}
)


class AudioError(FileProblem):
    """A file could not be used as audio."""


class AudioFileNotFound(AudioError):
    """The file does not exist."""


class UnsupportedAudioError(AudioError):
    """The container, codec or channel layout is not one chorus reads."""


class CorruptAudioError(AudioError):
    """The file claims a supported format but cannot be decoded."""


class EmptyAudioError(AudioError):
    """The file decodes to zero samples."""


class NonFiniteAudioError(AudioError):
    """The file holds NaN or infinite samples."""


class AudioRangeError(AudioError):
    """A requested time range lies outside the file."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says. ``frames`` counts samples per channel."""

    path: Path
    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of ``path`` and check that the file is usable audio."""
    path = Path(path)
    if not path.exists():
        raise AudioFileNotFound(path, "file not found")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise UnsupportedAudioError(
            path, f"unsupported audio format {path.suffix!r}; supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
        )
    if path.stat().st_size == 0:
        raise EmptyAudioError(path, "file is empty (0 bytes)")
    try:
        raw = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptAudioError(path, f"cannot decode: {exc}") from exc
    info = AudioInfo(path, int(raw.samplerate), int(raw.frames), int(raw.channels), raw.format, raw.subtype)
    if info.channels < 1:
        raise UnsupportedAudioError(path, f"unsupported channel layout ({info.channels} channels)")
    if info.sample_rate <= 0:
        raise CorruptAudioError(path, f"invalid sample rate {info.sample_rate}")
    if info.frames == 0:
        raise EmptyAudioError(path, "zero-length audio (0 samples)")
    return info


def resample(waveform: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a ``[samples]`` waveform with soxr (high quality); float32 out."""
    waveform = np.asarray(waveform, dtype=np.float32)
    if from_rate == to_rate:
        return waveform
    return soxr.resample(waveform, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def _to_mono(block: np.ndarray, path: Path, channel: int | None) -> np.ndarray:
    """``[frames, channels]`` -> ``[frames]`` by averaging channels or picking one."""
    if channel is None:
        return block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
    if not 0 <= channel < block.shape[1]:
        raise UnsupportedAudioError(path, f"channel {channel} requested but the file has {block.shape[1]}")
    return np.ascontiguousarray(block[:, channel])


def _check_finite(block: np.ndarray, path: Path, offset_s: float) -> None:
    if not np.isfinite(block).all():
        bad = int(np.argmin(np.isfinite(block).all(axis=-1) if block.ndim > 1 else np.isfinite(block)))
        raise NonFiniteAudioError(path, f"non-finite sample (NaN or Inf) near {offset_s:.3f} s (block sample {bad})")


def _open(info: AudioInfo) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(info.path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptAudioError(info.path, f"cannot decode: {exc}") from exc


def _read(handle: sf.SoundFile, frames: int, path: Path) -> np.ndarray:
    try:
        return handle.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptAudioError(path, f"decoding failed: {exc}") from exc


def _frame_range(info: AudioInfo, start: float, end: float | None) -> tuple[int, int]:
    if start < 0 or (end is not None and end <= start):
        raise AudioRangeError(info.path, f"invalid time range [{start}, {end}) s")
    first = int(round(start * info.sample_rate))
    last = info.frames if end is None else min(info.frames, int(round(end * info.sample_rate)))
    if first >= info.frames:
        raise AudioRangeError(info.path, f"start {start:.3f} s is past the end ({info.duration:.3f} s)")
    return first, last


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    *,
    start: float = 0.0,
    end: float | None = None,
    channel: int | None = None,
) -> tuple[np.ndarray, int]:
    """Decode ``[start, end)`` seconds of ``path`` as mono float32.

    Only the requested range is decoded (the file is seeked, not read whole).
    ``channel=None`` averages all channels; an int picks one. Returns ``(waveform
    [samples], rate)`` where rate is ``sample_rate`` if given, else the file's own.
    """
    info = audio_info(path)
    first, last = _frame_range(info, start, end)
    with _open(info) as handle:
        if first:
            handle.seek(first)
        block = _read(handle, last - first, info.path)
    if block.shape[0] == 0:
        raise EmptyAudioError(info.path, "decoded zero samples")
    _check_finite(block, info.path, start)
    mono = _to_mono(block, info.path, channel)
    rate = info.sample_rate if sample_rate is None else int(sample_rate)
    return resample(mono, info.sample_rate, rate), rate


def stream_audio(
    path: str | Path,
    block_seconds: float,
    sample_rate: int | None = None,
    *,
    channel: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield consecutive mono blocks of ``block_seconds`` at ``sample_rate``.

    Memory stays bounded by one block whatever the file's length: the file is decoded
    block by block and resampled with a streaming soxr resampler (no seams between
    blocks). Every block has exactly ``round(block_seconds * rate)`` samples except the
    last, which holds the remainder.
    """
    info = audio_info(path)
    rate = info.sample_rate if sample_rate is None else int(sample_rate)
    out_block = int(round(block_seconds * rate))
    if out_block <= 0:
        raise ValueError(f"block_seconds={block_seconds} gives an empty block at {rate} Hz")
    in_block = max(1, int(math.ceil(block_seconds * info.sample_rate)))
    stream = None if rate == info.sample_rate else soxr.ResampleStream(info.sample_rate, rate, 1, dtype="float32", quality="HQ")
    pending: list[np.ndarray] = []
    pending_len = 0
    read_frames = 0
    with _open(info) as handle:
        while True:
            raw = _read(handle, in_block, info.path)
            last = raw.shape[0] < in_block
            if raw.shape[0]:
                _check_finite(raw, info.path, read_frames / info.sample_rate)
            read_frames += raw.shape[0]
            mono = _to_mono(raw, info.path, channel) if raw.shape[0] else np.zeros(0, np.float32)
            out = mono if stream is None else stream.resample_chunk(mono, last=last)
            if out.size:
                pending.append(np.asarray(out, dtype=np.float32))
                pending_len += out.size
            while pending_len >= out_block:
                joined = np.concatenate(pending)
                yield joined[:out_block]
                rest = joined[out_block:]
                pending, pending_len = ([rest] if rest.size else []), rest.size
            if last:
                break
    if read_frames == 0:
        raise EmptyAudioError(info.path, "decoded zero samples")
    if pending_len:
        yield np.concatenate(pending)


def write_audio(path: str | Path, waveform: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write a ``[samples]`` or ``[samples, channels]`` waveform atomically.

    The format follows the extension; wav defaults to 16-bit PCM, flac to 16-bit.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in {"wav", "flac", "ogg"}:
        raise UnsupportedAudioError(path, f"chorus writes wav, flac or ogg, not {path.suffix!r}")
    data = np.asarray(waveform, dtype=np.float32)
    if not np.isfinite(data).all():
        raise NonFiniteAudioError(path, "refusing to write non-finite samples")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, int(sample_rate), format=fmt.upper(), subtype=subtype)
