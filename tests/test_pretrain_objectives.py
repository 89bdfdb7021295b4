"""Each self-supervised objective on a tiny model: finite loss that decreases over a few
steps on a fixed batch; the right objective per family; refusals are typed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chorus.encoders import load_encoder
from chorus.encoders.speech_ssl import random_speech_encoder, tiny_config_values
from chorus.encoders.wav2vec2 import WAV2VEC2
from chorus.pretrain import PretrainError, resolve_objective
from chorus.pretrain.contrastive import Contrastive
from chorus.pretrain.masked_prediction import MaskedPrediction, fit_teacher
from chorus.pretrain.masked_spectrogram import MaskedSpectrogram
from chorus.pretrain.masking import numpy_seeded, patch_mask


def tones(sample_rate: int, seconds: float, count: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return [(0.4 * np.sin(2 * np.pi * (300 + 250 * i) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
            for i in range(count)]


def batch(sample_rate: int, seconds: float) -> tuple[torch.Tensor, torch.Tensor]:
    waves = torch.from_numpy(np.stack(tones(sample_rate, seconds)))
    return waves, torch.full((waves.shape[0],), waves.shape[1])


def losses(objective, waveforms, lengths, steps: int = 6, lr: float = 2e-3) -> list[float]:
    """Adam on one fixed batch with fixed masks (the same seeds every step)."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(objective.parameters(), lr=lr)
    objective.train()
    values = []
    for _ in range(steps):
        torch.manual_seed(1)
        with numpy_seeded(2):
            loss = objective.loss(waveforms, lengths, torch.Generator().manual_seed(3))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(float(loss.detach()))
    return values


def check_decreases(values: list[float]) -> None:
    assert all(np.isfinite(values)), values
    assert values[-1] < values[0], values


def test_masked_spectrogram_loss_decreases():
    encoder = load_encoder("sfx-cnn-tiny")
    torch.manual_seed(0)
    objective = MaskedSpectrogram(encoder, ratio=0.4)
    check_decreases(losses(objective, *batch(encoder.sample_rate, 0.6)))


def test_masked_prediction_loss_decreases():
    student, teacher = load_encoder("hubert-tiny"), load_encoder("hubert-tiny")
    waveforms, lengths = batch(16_000, 0.5)
    targets = fit_teacher(teacher, 1, list(waveforms.numpy()), 8000, clusters=8, max_frames=1000, batch_size=4,
                          seed=0, device=torch.device("cpu"))
    assert targets.centroids.shape == (8, 32)
    torch.manual_seed(0)
    objective = MaskedPrediction(student, targets, probability=0.5, span=4)
    check_decreases(losses(objective, waveforms, lengths))


def test_contrastive_loss_decreases():
    values = tiny_config_values(feat_extract_norm="group", num_codevectors_per_group=16, num_codevector_groups=2,
                                codevector_dim=32, proj_codevector_dim=32, num_negatives=8)
    torch.manual_seed(0)
    encoder = random_speech_encoder(WAV2VEC2, values)
    objective = Contrastive(encoder, probability=0.5, span=4)
    assert sorted(objective.heads) == ["dropout_features", "project_hid", "project_q", "quantizer"]
    assert not any(name.startswith("heads.") and "wav2vec2" in name for name in objective.state_dict())
    check_decreases(losses(objective, *batch(16_000, 0.5)))


def test_span_masks_are_seeded_and_patch_masks_count():
    from chorus.pretrain.masking import span_mask

    valid = torch.ones(3, 50, dtype=torch.bool)
    valid[2, 30:] = False
    with numpy_seeded(5):
        first = span_mask(valid, 0.5, 4)
    with numpy_seeded(5):
        second = span_mask(valid, 0.5, 4)
    assert torch.equal(first, second) and first.any(dim=1).all() and not first[2, 30:].any()
    with pytest.raises(PretrainError, match="at least 4"):
        span_mask(torch.ones(2, 3, dtype=torch.bool), 0.5, 4)
    cells = patch_mask(2, 4, 12, 0.25, torch.Generator().manual_seed(0))
    assert cells.shape == (2, 4, 12) and cells.sum(dim=(1, 2)).tolist() == [12, 12]


def test_auto_picks_the_objective_per_family_and_refuses_the_rest():
    assert resolve_objective("auto", load_encoder("sfx-cnn-tiny")) == "masked-spectrogram"
    assert resolve_objective("auto", load_encoder("wav2vec2-tiny")) == "contrastive"
    assert resolve_objective("auto", load_encoder("hubert-tiny")) == "masked-prediction"
    with pytest.raises(PretrainError, match="no self-supervised objective"):
        resolve_objective("auto", load_encoder("toy-cnn"))
    with pytest.raises(PretrainError, match="needs a wav2vec2 encoder"):
        Contrastive(load_encoder("hubert-tiny"))
    with pytest.raises(PretrainError, match="sfx-cnn"):
        MaskedSpectrogram(load_encoder("hubert-tiny"))


def test_contrastive_heads_come_from_the_checkpoint_when_it_has_them(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    values = tiny_config_values(feat_extract_norm="group", num_codevectors_per_group=16, codevector_dim=32,
                                proj_codevector_dim=32, num_negatives=8)
    torch.manual_seed(0)
    saved = Wav2Vec2ForPreTraining(Wav2Vec2Config(**values))
    saved.save_pretrained(tmp_path / "full")
    saved.wav2vec2.save_pretrained(tmp_path / "encoder-only")
    with_heads = Contrastive(load_encoder("wav2vec2-base", source=tmp_path / "full"), source=str(tmp_path / "full"))
    assert with_heads.heads_source == str(tmp_path / "full")
    for name in ("quantizer", "project_hid", "project_q"):
        for key, value in getattr(saved, name).state_dict().items():
            assert torch.equal(with_heads.heads[name].state_dict()[key], value), f"{name}.{key}"
    without = Contrastive(load_encoder("wav2vec2-base", source=tmp_path / "encoder-only"),
                          source=str(tmp_path / "encoder-only"))
    assert without.heads_source == "random"
    assert not torch.equal(without.heads["project_q"].weight, saved.project_q.weight)
