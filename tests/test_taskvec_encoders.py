"""Every registered encoder with a tiny random configuration: one real training step with
the fine-tuning machinery, then τ from the two models, save, load, apply bit for bit; and
LoRA wraps and merges its layers."""

from __future__ import annotations

import copy

import pytest
import torch

from chorus.encoders import encoder_specs, load_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry
from chorus.taskvec import TaskVector, apply
from chorus.train.lora import inject_lora, merge_lora
from chorus.train.metrics import loss_function
from chorus.train.step import TrainStep, classifier_loss, parameter_groups, set_train_mode

TINY = [spec.name for spec in encoder_specs(include_test_configs=True) if spec.weights.startswith("random")]


def one_step(base, seconds: float = 1.0) -> ClassifierModel:
    torch.manual_seed(0)
    model = ClassifierModel(copy.deepcopy(base), [HeadEntry(labels=["a", "b"])],
                            ClassifierSettings(layer=base.layer_names[-1]))
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-2, 1e-2, 0.01))
    step = TrainStep(optimizer, classifier_loss(model, loss_function("multiclass")), lambda s: 1.0)
    set_train_mode(model, frozen_encoder=False, train_bn_stats=False)
    samples = int(seconds * base.sample_rate)
    waves = 0.1 * torch.randn(2, samples)
    step(waves, torch.tensor([samples, samples * 3 // 4]), torch.tensor([0, 1]))
    return model.eval()


def test_tiny_configurations_exist_for_several_families():
    assert len(TINY) >= 2 and "toy-cnn" in TINY


@pytest.mark.parametrize("name", TINY)
def test_task_vector_round_trip_is_exact_for_every_encoder(name, tmp_path):
    base = load_encoder(name, pretrained=False)
    model = one_step(base)
    vector = TaskVector.from_classifier(base, model)
    changed = [key for key in vector.keys() if vector.tensor(key).any()]
    assert changed, "the training step changed nothing"
    assert not any(key.startswith("buffers.") for key in vector.keys())
    vector.save(tmp_path / "tv")
    rebuilt = apply(base, [TaskVector.load(tmp_path / "tv")])
    expected = model.encoder.state_dict()
    for key, value in rebuilt.state_dict().items():
        assert torch.equal(value, expected[key]), key


@pytest.mark.parametrize("name", TINY)
def test_lora_wraps_and_merges_every_encoder(name):
    encoder = load_encoder(name, pretrained=False)
    keys = encoder.state_dict().keys()
    assert inject_lora(encoder, rank=2, alpha=2.0, seed=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter_name, parameter in encoder.named_parameters():
            if parameter_name.endswith("lora_b"):
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=gen))
    samples = encoder.sample_rate
    waves, lengths = 0.1 * torch.randn(1, samples, generator=gen), torch.tensor([samples])
    with torch.no_grad():
        adapted = encoder(waves, lengths).hidden[-1]
        merge_lora(encoder)
        merged = encoder(waves, lengths).hidden[-1]
    assert encoder.state_dict().keys() == keys
    assert torch.allclose(merged, adapted, rtol=1e-3, atol=1e-4)
