"""Ablation transforms: seeded noise at an exact SNR, frequency scaling by resampling."""

from __future__ import annotations

import numpy as np
import pytest

from chorus.data.manifest import Clip
from chorus.features import ClipTransform, add_noise
from chorus.features.transforms import coloured_noise


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("snr", [0.0, -5.0, -10.0])
def test_noise_is_mixed_at_the_requested_snr(kind, snr):
    signal = np.sin(2 * np.pi * 440 * np.arange(8000) / 16000).astype(np.float32)
    noisy = add_noise(signal, snr, np.random.default_rng(0), kind)
    measured = 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean((noisy - signal).astype(np.float64) ** 2))
    assert measured == pytest.approx(snr, abs=1e-3)


def test_pink_noise_has_more_low_than_high_frequency_power():
    spectrum = np.abs(np.fft.rfft(coloured_noise(1 << 14, np.random.default_rng(1), "pink"))) ** 2
    assert spectrum[1:200].mean() > 20 * spectrum[-2000:].mean()


def test_noise_is_seeded_per_clip_and_snr():
    wave = np.ones(100, np.float32)
    a, b = Clip("a.wav"), Clip("b.wav")
    transform = ClipTransform(noise_snr=0.0, noise_seed=3)
    np.testing.assert_array_equal(transform.apply(wave, a), transform.apply(wave, a))
    assert not np.array_equal(transform.apply(wave, a), transform.apply(wave, b))
    assert not np.array_equal(transform.apply(wave, a), ClipTransform(noise_snr=-5.0, noise_seed=3).apply(wave, a))
    np.testing.assert_array_equal(ClipTransform().apply(wave, a), wave)


def test_pitch_factor_decodes_at_a_scaled_rate():
    """Half the frequency = twice the samples at the model's rate."""
    assert ClipTransform(pitch_factor=0.5).load_rate(16_000) == 32_000
    assert ClipTransform(pitch_factor=2.0).load_rate(44_100) == 22_050
    with pytest.raises(ValueError, match="pitch factor"):
        ClipTransform(pitch_factor=0.0)


def test_pitch_factor_half_plays_a_tone_an_octave_lower(tmp_path):
    from chorus.audio import load_audio, write_audio

    rate = 16_000
    write_audio(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 2000 * np.arange(rate) / rate), rate, "FLOAT")
    samples, _ = load_audio(tmp_path / "tone.wav", ClipTransform(pitch_factor=0.5).load_rate(rate))
    peak_hz = np.argmax(np.abs(np.fft.rfft(samples))) * rate / len(samples)  # read at the model's rate
    assert len(samples) == 2 * rate and peak_hz == pytest.approx(1000, abs=2)
