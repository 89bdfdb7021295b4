"""chorus.audio: typed errors naming the file, formats, rates, range reads, streaming."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chorus import audio
from chorus.audio import (
    AudioError,
    AudioFileNotFound,
    AudioRangeError,
    CorruptAudioError,
    EmptyAudioError,
    NonFiniteAudioError,
    UnsupportedAudioError,
    audio_info,
    load_audio,
    resample,
    stream_audio,
    write_audio,
)
from chorus.errors import ChorusError

LOSSY = {"ogg": {"format": "OGG", "subtype": "VORBIS"}, "mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III"}}


def chirp(rate: int, seconds: float, f0: float = 300.0, f1: float = 900.0) -> np.ndarray:
    """A slowly modulated linear chirp, float32 ``[samples]`` in [-0.3, 0.3]."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.3 * np.sin(phase) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)


def write(path: Path, data: np.ndarray, rate: int, **kwargs) -> Path:
    sf.write(str(path), data, rate, **kwargs)
    return path


def peak_hz(waveform: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.fft.rfftfreq(len(waveform), 1 / rate)[np.argmax(spectrum)])


# --- every failure is typed and names the file ---------------------------------------

def _corrupt(tmp: Path) -> Path:
    path = tmp / "corrupt.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    return path


def _empty_bytes(tmp: Path) -> Path:
    path = tmp / "empty.flac"
    path.write_bytes(b"")
    return path


def _zero_frames(tmp: Path) -> Path:
    return write(tmp / "zero.wav", np.zeros(0, np.float32), 16000)


def _nan(tmp: Path) -> Path:
    data = chirp(8000, 1.0)
    data[4000] = np.nan
    return write(tmp / "nan.wav", data, 8000, subtype="FLOAT")


def _missing(tmp: Path) -> Path:
    return tmp / "missing.wav"


def _unsupported(tmp: Path) -> Path:
    path = tmp / "notes.txt"
    path.write_text("not audio")
    return path


@pytest.mark.parametrize("make, error, words", [
    (_corrupt, CorruptAudioError, "corrupt"),
    (_empty_bytes, EmptyAudioError, "0 bytes"),
    (_zero_frames, EmptyAudioError, "0 samples"),
    (_nan, NonFiniteAudioError, "0.500000 s"),
    (_missing, AudioFileNotFound, "not found"),
    (_unsupported, UnsupportedAudioError, "'.txt'"),
])
def test_each_bad_file_raises_its_typed_error_naming_the_file(tmp_path, make, error, words):
    path = make(tmp_path)
    with pytest.raises(error) as caught:
        load_audio(path)
    assert isinstance(caught.value, AudioError) and isinstance(caught.value, ChorusError)
    assert str(caught.value).startswith(str(path)) and caught.value.path == path
    assert words in str(caught.value)


def test_streaming_reports_the_time_of_an_infinite_sample(tmp_path):
    data = chirp(8000, 3.0)
    data[2 * 8000 + 80] = np.inf
    path = write(tmp_path / "inf.wav", data, 8000, subtype="FLOAT")
    blocks = stream_audio(path, 0.5)
    with pytest.raises(NonFiniteAudioError, match=r"inf\.wav: .* at 2\.010000 s"):
        list(blocks)


def test_bad_channel_index_is_rejected_before_decoding(tmp_path):
    path = write(tmp_path / "stereo.wav", np.stack([chirp(8000, 1), chirp(8000, 1)], axis=1), 8000)
    for channel in (2, -1):
        with pytest.raises(UnsupportedAudioError, match=r"stereo\.wav: channel .* has 2"):
            load_audio(path, channel=channel)
        with pytest.raises(UnsupportedAudioError, match=r"stereo\.wav"):
            stream_audio(path, 0.5, channel=channel)  # raised at the call, not at the first block


def test_unreadable_file_says_permission_not_corrupt(tmp_path, monkeypatch):
    path = _corrupt(tmp_path)
    monkeypatch.setattr(audio.os, "access", lambda *_: False)
    with pytest.raises(AudioError, match="permission denied") as caught:
        audio_info(path)
    assert not isinstance(caught.value, CorruptAudioError)


def test_a_folder_is_not_audio(tmp_path):
    folder = tmp_path / "clips.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match="not a regular file"):
        audio_info(folder)


# --- formats, channels, sample rates -------------------------------------------------

@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_decodes_each_format_close_to_the_original(tmp_path, ext):
    original = chirp(16000, 1.5)
    path = write(tmp_path / f"clip.{ext}", original, 16000, **LOSSY.get(ext, {}))
    waveform, rate = load_audio(path)
    assert rate == 16000 and waveform.dtype == np.float32 and waveform.ndim == 1
    assert len(waveform) == len(original)
    error = np.mean((waveform - original) ** 2) / np.mean(original**2)
    assert error < (1e-6 if ext in ("wav", "flac") else 0.05)


def test_downmix_averages_channels_and_channel_picks_one(tmp_path):
    left, right = chirp(8000, 1.0), chirp(8000, 1.0, 1000, 1200)
    path = write(tmp_path / "stereo.flac", np.stack([left, right], axis=1), 8000)
    mono, _ = load_audio(path)
    picked, _ = load_audio(path, channel=1)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-4)
    np.testing.assert_allclose(picked, right, atol=1e-4)


def test_8khz_speech_rate_upsamples_without_moving_the_tone(tmp_path):
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000)).astype(np.float32)
    path = write(tmp_path / "phone.wav", tone, 8000)
    assert audio_info(path).sample_rate == 8000
    waveform, rate = load_audio(path, 16000)
    assert rate == 16000 and len(waveform) == 16000
    assert peak_hz(waveform, 16000) == pytest.approx(1000, abs=2)


def test_384khz_bat_recording_keeps_its_ultrasound(tmp_path):
    rate = 384_000
    call = (0.5 * np.sin(2 * np.pi * 50_000 * np.arange(rate // 4) / rate)).astype(np.float32)
    path = write(tmp_path / "bat.wav", call, rate)
    native, native_rate = load_audio(path)
    assert native_rate == rate and len(native) == rate // 4
    assert peak_hz(native, rate) == pytest.approx(50_000, abs=10)
    down, _ = load_audio(path, 192_000)
    assert len(down) == 192_000 // 4 and peak_hz(down, 192_000) == pytest.approx(50_000, abs=10)


def test_resample_keeps_duration_and_is_identity_at_the_same_rate(tmp_path):
    wave = chirp(44100, 1.0)
    assert np.array_equal(resample(wave, 44100, 44100), wave)
    assert len(resample(wave, 44100, 16000)) == 16000
    with pytest.raises(ValueError, match="positive"):
        load_audio(write(tmp_path / "a.wav", wave, 44100), 0)


# --- time ranges -----------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_a_range_is_the_same_samples_as_slicing_the_whole_file(tmp_path, ext):
    rate = 16000
    path = write(tmp_path / f"long.{ext}", chirp(rate, 8.0), rate, **LOSSY.get(ext, {}))
    whole, _ = load_audio(path)
    for start in (0.0, 2.3456, 5.07, 6.5):
        part, _ = load_audio(path, start=start, end=start + 0.75)
        first = round(start * rate)
        np.testing.assert_allclose(part, whole[first:first + len(part)], atol=1e-6)
        assert len(part) == round((start + 0.75) * rate) - first


def test_range_decodes_only_the_range(tmp_path, monkeypatch):
    rate = 8000
    path = write(tmp_path / "hour.wav", np.zeros(rate * 60, np.float32), rate)
    decoded = []
    real_read = audio._read
    monkeypatch.setattr(audio, "_read", lambda handle, frames, p: decoded.append(frames) or real_read(handle, frames, p))
    part, _ = load_audio(path, start=50.0, end=51.0)
    assert len(part) == rate and sum(decoded) == rate


def test_mp3_range_decodes_at_most_one_second_of_preroll(tmp_path, monkeypatch):
    rate = 16000
    path = write(tmp_path / "long.mp3", chirp(rate, 10.0), rate, **LOSSY["mp3"])
    decoded = []
    real_read = audio._read
    monkeypatch.setattr(audio, "_read", lambda handle, frames, p: decoded.append(frames) or real_read(handle, frames, p))
    load_audio(path, start=8.0, end=8.5)
    assert sum(decoded) == int(1.5 * rate)


def test_bad_ranges_raise_range_errors_and_a_late_end_is_clamped(tmp_path):
    path = write(tmp_path / "two.wav", chirp(8000, 2.0), 8000)
    for start, end in ((3.0, None), (1.0, 1.0), (1.5, 0.5), (-0.1, 1.0), (float("nan"), None), (1.0, 1.00001)):
        with pytest.raises(AudioRangeError, match=r"two\.wav"):
            load_audio(path, start=start, end=end)
    tail, _ = load_audio(path, start=1.5, end=9.0)
    assert len(tail) == 4000


# --- streaming -------------------------------------------------------------------------

@pytest.mark.parametrize("ext, rate", [("wav", 44100), ("mp3", 22050), ("ogg", 16000)])
def test_stream_concatenation_equals_whole_load_and_resample(tmp_path, ext, rate):
    path = write(tmp_path / f"rec.{ext}", chirp(rate, 5.3), rate, **LOSSY.get(ext, {}))
    whole, _ = load_audio(path, 16000)
    blocks = list(stream_audio(path, 0.37, 16000))
    assert all(len(block) == round(0.37 * 16000) for block in blocks[:-1])
    assert 0 < len(blocks[-1]) <= round(0.37 * 16000)
    joined = np.concatenate(blocks)
    assert len(joined) == len(whole)
    np.testing.assert_allclose(joined, whole, atol=1e-5)


def test_streaming_a_long_file_keeps_memory_bounded(tmp_path):
    rate, minutes = 8000, 30
    path = tmp_path / "night.wav"
    block = (0.1 * chirp(rate, 10.0)).astype(np.float32)
    with sf.SoundFile(str(path), "w", rate, 1, subtype="PCM_16") as handle:
        for _ in range(minutes * 6):
            handle.write(block)
    decoded_bytes = rate * 60 * minutes * 4
    tracemalloc.start()
    try:
        total = sum(len(b) for b in stream_audio(path, 10.0, 16000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 2 * rate * 60 * minutes
    assert peak < decoded_bytes / 8, f"peak {peak / 1e6:.1f} MB vs {decoded_bytes / 1e6:.0f} MB decoded"


# --- writing ---------------------------------------------------------------------------

def test_write_audio_round_trips_and_leaves_no_temporary_files(tmp_path):
    wave = chirp(16000, 1.0)
    for ext in ("wav", "flac"):
        write_audio(tmp_path / f"out.{ext}", wave, 16000)
        back, _ = load_audio(tmp_path / f"out.{ext}")
        np.testing.assert_allclose(back, wave, atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.flac", "out.wav"]


def test_write_audio_refuses_bad_input_naming_the_file(tmp_path):
    with pytest.raises(UnsupportedAudioError, match=r"out\.aac"):
        write_audio(tmp_path / "out.aac", chirp(8000, 0.1), 8000)
    bad = chirp(8000, 0.1)
    bad[3] = np.nan
    with pytest.raises(NonFiniteAudioError, match=r"out\.wav"):
        write_audio(tmp_path / "out.wav", bad, 8000)
    assert not list(tmp_path.iterdir())


def test_write_audio_survives_a_long_vorbis_file(tmp_path):
    # A single libsndfile Vorbis write of ~2.2 M samples or more crashes the process.
    wave = np.zeros(2_600_000, np.float32)
    wave[::100] = 0.1
    write_audio(tmp_path / "long.ogg", wave, 8000)
    assert audio_info(tmp_path / "long.ogg").frames == len(wave)
