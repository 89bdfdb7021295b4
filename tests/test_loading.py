"""chorus.data.loading: clip audio, bad files reported and skipped, header durations."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from chorus.audio import AudioFileNotFound, AudioRangeError, CorruptAudioError, EmptyAudioError
from chorus.data.clips import Clip
from chorus.data.loading import FailedClip, clip_durations, iter_clips, load_clip


@pytest.fixture
def recording(tmp_path):
    rate = 8000
    ramp = np.linspace(-0.5, 0.5, rate * 4, dtype=np.float32)
    path = tmp_path / "rec.wav"
    sf.write(str(path), ramp, rate, subtype="FLOAT")
    return path, ramp, rate


def test_load_clip_reads_its_range_at_the_requested_rate(recording):
    path, ramp, rate = recording
    np.testing.assert_array_equal(load_clip(Clip(path, ("x",), start=1.0, end=1.5), rate), ramp[rate:rate + rate // 2])
    assert len(load_clip(Clip(path, ("x",)), 16000)) == 4 * 16000


def test_iter_clips_reports_bad_files_and_finishes_the_rest(recording, tmp_path):
    path, _, rate = recording
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF nonsense" * 20)
    (tmp_path / "empty.wav").write_bytes(b"")
    clips = [Clip(path, ("a",)), Clip(tmp_path / "gone.wav", ("a",)), Clip(tmp_path / "corrupt.wav", ("a",)),
             Clip(path, ("b",), start=3.0), Clip(tmp_path / "empty.wav", ("a",))]
    failures: list[FailedClip] = []
    loaded = [(index, len(wave)) for index, wave in iter_clips(clips, rate, failures)]
    assert loaded == [(0, 4 * rate), (3, rate)]
    assert [(f.index, type(f.error)) for f in failures] == [
        (1, AudioFileNotFound), (2, CorruptAudioError), (4, EmptyAudioError)]
    assert all(f.clip is clips[f.index] and str(f.clip.path) in str(f.error) for f in failures)


def test_clip_durations_from_headers(recording, tmp_path):
    path, _, _ = recording
    clips = [Clip(path), Clip(path, start=1.0, end=2.5), Clip(path, start=3.0, end=9.0), Clip(path, start=5.0),
             Clip(tmp_path / "gone.wav")]
    failures: list[FailedClip] = []
    ticks = []

    class Bar:
        def update(self, n=1):
            ticks.append(n)

        def close(self):
            ticks.append("closed")

    durations = clip_durations(clips, failures, lambda total, desc: Bar())
    assert durations == [4.0, 1.5, 1.0, None, None]
    assert [(f.index, type(f.error)) for f in failures] == [(3, AudioRangeError), (4, AudioFileNotFound)]
    assert ticks == [1] * 5 + ["closed"]
