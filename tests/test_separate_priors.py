"""Source priors: representation, network, training (resume, bad files), storage, guided sampler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from chorus.audio import write_audio
from chorus.data.manifest import Clip
from chorus.separate.errors import ModelLoadError, SeparationError
from chorus.separate.metrics import si_sdr
from chorus.separate.priors.edm import SIGMA_DATA, denoise, karras_sigmas
from chorus.separate.priors.model import SourcePrior
from chorus.separate.priors.network import NetworkConfig, TFAttentionNet
from chorus.separate.priors.sampler import PriorSeparationConfig, PriorSource, separate_with_priors
from chorus.separate.priors.spectral import SpectralConfig, analysis, phase, synthesis
from chorus.separate.priors.train import PriorTrainConfig, train_prior

RATE = 8000
TINY = dict(sample_rate=RATE, segment_seconds=0.25, n_fft=64, hop=16, channels=8, depth=1, heads=2, patch_freq=4,
            patch_time=2, batch_size=2, checkpoint_every=2)


def _tone(freq: float, seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    pulses = (np.sin(2 * np.pi * 3 * t + seed) > 0).astype(np.float64)
    return (0.3 * pulses * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Clips of two classes: low tones ("low") and high tones ("high")."""
    folder = tmp_path_factory.mktemp("sources")
    out = []
    for label, freq in (("low", 500.0), ("high", 2500.0)):
        for k in range(3):
            path = folder / f"{label}{k}.wav"
            write_audio(path, _tone(freq * (1 + 0.05 * k), seed=k), RATE)
            out.append(Clip(path, (label,), "train", label))
    return out


@pytest.fixture(scope="module")
def conditional_prior(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("prior")
    train_prior(clips, out, PriorTrainConfig(**TINY, steps=4, class_conditional=True))
    return out


@pytest.mark.parametrize("representation", ["magnitude", "complex"])
def test_spectral_round_trip_and_differentiable_inverse(representation):
    config = SpectralConfig(n_fft=64, hop=16, alpha=0.5, scale=3.0, representation=representation)
    t = torch.arange(4000, dtype=torch.float64) / RATE
    wave = (0.3 * torch.sin(2 * torch.pi * 700 * t) * torch.sin(torch.pi * t / t[-1]) ** 2)[None]
    spec = analysis(wave, config)
    assert spec.shape == (1, config.channels, 32, wave.shape[1] // 16 + 1)
    phases = phase(wave, config) if representation == "magnitude" else None
    torch.testing.assert_close(synthesis(spec, config, wave.shape[1], phases), wave, atol=1e-5, rtol=0)
    spec = spec.clone().requires_grad_(True)
    synthesis(spec, config, wave.shape[1], phases).square().sum().backward()
    assert torch.isfinite(spec.grad).all() and spec.grad.abs().sum() > 0


def test_network_starts_as_skip_and_keeps_shapes():
    net = TFAttentionNet(NetworkConfig(freq_bins=32, channels=8, depth=1, heads=2, num_classes=2, in_channels=2))
    x = torch.randn(3, 2, 32, 11)
    sigma = torch.full((3,), 0.7)
    out = denoise(net, x, sigma, torch.tensor([0, 1, 0]))
    assert out.shape == x.shape
    torch.testing.assert_close(out, x * SIGMA_DATA ** 2 / (0.7 ** 2 + SIGMA_DATA ** 2))
    with pytest.raises(ValueError, match="class"):
        net(x, sigma)
    sigmas = karras_sigmas(1.0, 0.01, 5)
    assert sigmas[0] == 1.0 and sigmas[-2] == pytest.approx(0.01) and sigmas[-1] == 0 and (sigmas.diff() < 0).all()


def test_training_resumes_to_the_same_bytes_and_reports_bad_files(clips, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really audio")
    data = clips + [Clip(bad, ("low",), "train", "low")]
    straight = train_prior(data, tmp_path / "a", PriorTrainConfig(**TINY, steps=4))
    assert straight.steps == 4 and straight.resumed_from == 0 and straight.clips == 6
    assert [f.clip.path for f in straight.failures] == [bad]
    train_prior(data, tmp_path / "b", PriorTrainConfig(**TINY, steps=2))
    resumed = train_prior(data, tmp_path / "b", PriorTrainConfig(**TINY, steps=4))
    assert resumed.resumed_from == 2
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    with pytest.raises(SeparationError, match="other settings"):
        train_prior(data, tmp_path / "b", PriorTrainConfig(**{**TINY, "channels": 16}, steps=6))


def test_prior_folder_is_validated_on_load(conditional_prior, tmp_path):
    prior = SourcePrior.from_pretrained(conditional_prior)
    assert prior.conditional and prior.labels == ["high", "low"] and prior.class_id("low") == 1
    with pytest.raises(ModelLoadError, match="choose one of"):
        prior.class_id(None)
    copy = prior.save_pretrained(tmp_path / "copy")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "version": 99}))
    with pytest.raises(ModelLoadError, match="version 99"):
        SourcePrior.from_pretrained(copy)
    (copy / "config.json").write_text(json.dumps({**config, "network": {**config["network"], "channels": 16}}))
    with pytest.raises(ModelLoadError, match="do not match"):
        SourcePrior.from_pretrained(copy)
    with pytest.raises(ModelLoadError, match="missing"):
        SourcePrior.from_pretrained(tmp_path / "nowhere")


def test_guided_sampler_reconstructs_the_mixture(conditional_prior):
    prior = SourcePrior.from_pretrained(conditional_prior)
    sources = [PriorSource(prior, "low"), PriorSource(prior, "high")]
    mixture = _tone(500.0, 0.6) + _tone(2500.0, 0.6, seed=1)
    settings = dict(steps=6, window_seconds=0.25)
    unguided = separate_with_priors(mixture, RATE, sources, PriorSeparationConfig(guidance=0.0, **settings))
    guided = separate_with_priors(mixture, RATE, sources, PriorSeparationConfig(guidance=2.0, **settings))
    assert guided.chunks == 3 and guided.evaluations == 2 * 6 * 3
    assert [s.shape for s in guided.sources] == [mixture.shape] * 2
    assert si_sdr(mixture, sum(guided.sources)) > si_sdr(mixture, sum(unguided.sources)) + 3.0
    again = separate_with_priors(mixture, RATE, sources, PriorSeparationConfig(guidance=2.0, **settings))
    assert again.sources[0].tobytes() == guided.sources[0].tobytes()
    with pytest.raises(SeparationError, match="at least two"):
        separate_with_priors(mixture, RATE, sources[:1])


def test_complex_priors_separate_too(clips, tmp_path):
    train_prior(clips, tmp_path, PriorTrainConfig(**TINY, steps=2, class_conditional=True, representation="complex"))
    prior = SourcePrior.from_pretrained(tmp_path)
    assert prior.spectral.representation == "complex" and prior.network.config.in_channels == 2
    mixture = _tone(500.0, 0.3) + _tone(2500.0, 0.3, seed=1)
    result = separate_with_priors(mixture, RATE, [PriorSource(prior, "low"), PriorSource(prior, "high")],
                                  PriorSeparationConfig(steps=3))
    assert [s.shape for s in result.sources] == [mixture.shape] * 2 and all(np.isfinite(s).all() for s in result.sources)
