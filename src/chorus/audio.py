"""Decode, downmix, resample and stream audio.

Waveforms are float32 NumPy arrays of shape ``[samples]`` (mono), nominally in
[-1, 1]; sample rates are in Hz; times are in seconds. Decoding goes through libsndfile
(wav, flac, ogg/vorbis/opus, mp3, aiff, caf, w64, rf64, au); resampling through soxr.
Any sample rate libsndfile can store works, from 8 kHz speech to 384 kHz bat detectors.

Every failure raises an :class:`AudioError` subclass whose message starts with the file.

Range reads seek instead of decoding the whole file. libsndfile 1.2 seeks PCM and FLAC
exactly; MP3 (bit reservoir) and Opus (decoder convergence) come out exact only after a
pre-roll, so decoding starts :data:`SEEK_PREROLL_SECONDS` early and the extra samples
are dropped; Ogg/Vorbis seeks can land a short block (hundreds of samples) off
(libsndfile issue #885), so Vorbis ranges are decoded from the file start, block by
block: memory stays bounded, time grows with the start offset (about 1 ms per second
of audio skipped).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from .errors import FileProblem, InvalidInput
from .fileio import atomic_path

SUPPORTED_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
     ".caf", ".w64", ".rf64", ".au", ".snd"}
)

SEEK_PREROLL_SECONDS = {"MPEG_LAYER_I": 1.0, "MPEG_LAYER_II": 1.0, "MPEG_LAYER_III": 1.0, "OPUS": 1.0}
"""Seconds decoded (and dropped) before a range start, per libsndfile subtype."""

_DECODE_FROM_START = frozenset({"VORBIS"})
_SKIP_FRAMES = 1 << 16
_WRITE_FRAMES = 1 << 16
_WRITE_FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}


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


class AudioWarning(UserWarning):
    """A file is usable but not whole (for example truncated); the message starts with it."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says. ``frames`` counts samples per channel."""

    path: Path
    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str
    truncated: str | None = None
    """Why the file looks cut short (its header announces more audio than it holds), else None."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


_MPEG_EXTENSIONS = frozenset({".mp3"})
_STDERR_GUARD = threading.Lock()


@contextlib.contextmanager
def _decoder_notes(path: Path) -> Iterator[list[str]]:
    """Collect what the MPEG decoder (mpg123) prints on the process's stderr while
    ``path`` is opened, instead of letting it through; other formats pass untouched."""
    notes: list[str] = []
    if path.suffix.lower() not in _MPEG_EXTENSIONS:
        yield notes
        return
    with _STDERR_GUARD, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield notes
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            notes += [line.removeprefix("Note: ").strip() for line in sink.read().decode(errors="replace").splitlines()]


def _decode_failure(path: Path, exc: Exception, notes: list[str]) -> str:
    """The real reason libsndfile could not open an existing file: its own message, except
    for MPEG, where libsndfile says "file does not exist" and mpg123 knows better."""
    message = str(exc)
    if path.suffix.lower() in _MPEG_EXTENSIONS and "does not exist" in message:
        detail = next((note for note in notes if note and not note.startswith("Trying")), None)
        return "not an MPEG audio stream" + (f" ({detail})" if detail else "")
    return message.replace(f"Error opening {str(path)!r}: ", "")


_SHORT_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _truncation(log: str) -> str | None:
    """From libsndfile's header log: "truncated ..." when the data chunk announces more
    bytes than the file holds (a copy or download cut short), else None."""
    found = _SHORT_CHUNK.search(log or "")
    if found is None or int(found.group(2)) >= int(found.group(1)):
        return None
    return (f"truncated: the header announces {int(found.group(1))} bytes of audio, the file holds "
            f"{int(found.group(2))}; only what is there is used")


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
        with _decoder_notes(path) as notes:
            raw = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        if not os.access(path, os.R_OK):
            raise AudioError(path, "cannot read the file (permission denied)") from exc
        reason = _decode_failure(path, exc, notes)
        raise CorruptAudioError(path, f"corrupt or not a {path.suffix.lstrip('.')} file: {reason}") from exc
    info = AudioInfo(path, int(raw.samplerate), int(raw.frames), int(raw.channels), raw.format, raw.subtype,
                     _truncation(raw.extra_info))
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


def _target_rate(info: AudioInfo, sample_rate: int | None) -> int:
    if sample_rate is None:
        return info.sample_rate
    if int(sample_rate) <= 0:
        raise InvalidInput(f"sample_rate must be positive, got {sample_rate}")
    return int(sample_rate)


def _check_channel(info: AudioInfo, channel: int | None) -> None:
    if channel is not None and not 0 <= channel < info.channels:
        raise UnsupportedAudioError(
            info.path, f"channel {channel} requested but the file has {info.channels} (valid: 0..{info.channels - 1})"
        )


def _to_mono(block: np.ndarray, channel: int | None) -> np.ndarray:
    """``[frames, channels]`` -> contiguous ``[frames]``, averaging channels or picking one."""
    if channel is None and block.shape[1] > 1:
        return block.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(block[:, channel or 0])


def _check_finite(block: np.ndarray, info: AudioInfo, first_frame: int) -> None:
    """Raise on NaN/Inf in a ``[frames, channels]`` block that starts at ``first_frame``."""
    finite = np.isfinite(block).all(axis=1)
    if not finite.all():
        at = (first_frame + int(np.argmin(finite))) / info.sample_rate
        raise NonFiniteAudioError(info.path, f"non-finite sample (NaN or Inf) at {at:.6f} s")


def _open(info: AudioInfo) -> sf.SoundFile:
    try:
        with _decoder_notes(info.path) as notes:
            return sf.SoundFile(str(info.path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise CorruptAudioError(info.path, f"cannot decode: {_decode_failure(info.path, exc, notes)}") from exc


def _read(handle: sf.SoundFile, frames: int, path: Path) -> np.ndarray:
    """Decode up to ``frames`` frames at the current position as ``[frames, channels]``.

    Calls libsndfile's ``sf_readf_float`` directly: ``SoundFile.read`` seeks to its own
    position before and after every read, and on MP3 and Vorbis such a seek restarts
    the decoder, so consecutive reads through it do not join up (garbled audio at
    every block boundary).
    """
    out = np.empty((frames, handle.channels), dtype=np.float32)
    got = sf._snd.sf_readf_float(handle._file, sf._ffi.cast("float *", out.ctypes.data), frames)
    error = sf._snd.sf_error(handle._file)
    if error:
        message = sf._ffi.string(sf._snd.sf_error_number(error)).decode(errors="replace")
        raise CorruptAudioError(path, f"decoding failed: {message}")
    return out[:got]


def _seek(handle: sf.SoundFile, info: AudioInfo, first: int) -> None:
    """Position ``handle`` so that its next read starts exactly at frame ``first``."""
    if info.subtype in _DECODE_FROM_START:
        target = 0
    else:
        target = max(0, first - int(SEEK_PREROLL_SECONDS.get(info.subtype, 0.0) * info.sample_rate))
    if target:
        try:
            handle.seek(target)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise CorruptAudioError(info.path, f"cannot seek to {target / info.sample_rate:.3f} s: {exc}") from exc
    remaining = first - target
    while remaining > 0:
        skipped = _read(handle, min(remaining, _SKIP_FRAMES), info.path).shape[0]
        if skipped == 0:
            break
        remaining -= skipped


def _frame_range(info: AudioInfo, start: float, end: float | None) -> tuple[int, int]:
    """``[first, last)`` frames of ``[start, end)`` seconds; ``end`` past the file is clamped."""
    if not (math.isfinite(start) and start >= 0) or (end is not None and not (math.isfinite(end) and end > start)):
        raise AudioRangeError(info.path, f"invalid time range [{start}, {end}) s")
    first = int(round(start * info.sample_rate))
    if first >= info.frames:
        raise AudioRangeError(info.path, f"start {start:.3f} s is past the end ({info.duration:.3f} s)")
    last = info.frames if end is None else min(info.frames, int(round(end * info.sample_rate)))
    if last <= first:
        raise AudioRangeError(info.path, f"time range [{start}, {end}) s is shorter than one sample")
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

    Only the requested range is decoded (the file is seeked, not read whole; see the
    module notes for Vorbis). ``end`` past the end of the file is clamped to it.
    ``channel=None`` averages all channels; an int picks one. Returns ``(waveform
    [samples], rate)`` where rate is ``sample_rate`` if given, else the file's own.
    """
    info = audio_info(path)
    rate = _target_rate(info, sample_rate)
    _check_channel(info, channel)
    first, last = _frame_range(info, start, end)
    with _open(info) as handle:
        _seek(handle, info, first)
        block = _read(handle, last - first, info.path)
    if block.shape[0] == 0:
        raise CorruptAudioError(info.path, f"no samples decode at {start:.3f} s although the header says {info.duration:.3f} s")
    _check_finite(block, info, first)
    return resample(_to_mono(block, channel), info.sample_rate, rate), rate


def stream_audio(
    path: str | Path,
    block_seconds: float,
    sample_rate: int | None = None,
    *,
    channel: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield consecutive mono ``[samples]`` blocks of ``block_seconds`` at ``sample_rate``.

    Memory stays bounded by one block whatever the file's length: the file is decoded
    block by block and resampled with a streaming soxr resampler (no seams between
    blocks). Every block has exactly ``round(block_seconds * rate)`` samples except the
    last, which holds the remainder. The file is checked (header, channel) when this is
    called, not at the first block.
    """
    info = audio_info(path)
    rate = _target_rate(info, sample_rate)
    _check_channel(info, channel)
    out_block = int(round(block_seconds * rate))
    if out_block <= 0:
        raise InvalidInput(f"block_seconds={block_seconds} gives an empty block at {rate} Hz")
    in_block = max(1, int(math.ceil(block_seconds * info.sample_rate)))
    return _stream_blocks(info, rate, in_block, out_block, channel)


def _stream_blocks(info: AudioInfo, rate: int, in_block: int, out_block: int, channel: int | None) -> Iterator[np.ndarray]:
    stream = None if rate == info.sample_rate else soxr.ResampleStream(info.sample_rate, rate, 1, dtype="float32", quality="HQ")
    pending = np.zeros(0, np.float32)
    read_frames = 0
    with _open(info) as handle:
        while True:
            raw = _read(handle, in_block, info.path)
            last = raw.shape[0] < in_block
            _check_finite(raw, info, read_frames)
            read_frames += raw.shape[0]
            mono = _to_mono(raw, channel)
            out = mono if stream is None else stream.resample_chunk(mono, last=last)
            if out.size:
                pending = np.concatenate([pending, out.astype(np.float32, copy=False)])
            while pending.size >= out_block:
                yield pending[:out_block].copy()
                pending = pending[out_block:]
            if last:
                break
    if read_frames == 0:
        raise EmptyAudioError(info.path, "decoded zero samples")
    if pending.size:
        yield pending.copy()


def write_audio(path: str | Path, waveform: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write a ``[samples]`` or ``[samples, channels]`` waveform atomically.

    The format follows the extension: wav and flac (16-bit PCM by default), ogg
    (Vorbis) or mp3. Samples are written in blocks: libsndfile 1.2 crashes on a single
    Vorbis write of a few million samples.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower().lstrip("."))
    if fmt is None:
        raise UnsupportedAudioError(path, f"chorus writes {', '.join(_WRITE_FORMATS)}, not {path.suffix!r}")
    data = np.asarray(waveform, dtype=np.float32)
    if data.ndim not in (1, 2) or data.shape[0] == 0:
        raise ValueError(f"{path}: expected a non-empty [samples] or [samples, channels] waveform, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise NonFiniteAudioError(path, "refusing to write non-finite samples")
    channels = 1 if data.ndim == 1 else data.shape[1]
    with atomic_path(path) as tmp:
        with sf.SoundFile(str(tmp), "w", int(sample_rate), channels, subtype=subtype, format=fmt) as handle:
            for begin in range(0, data.shape[0], _WRITE_FRAMES):
                handle.write(data[begin:begin + _WRITE_FRAMES])
