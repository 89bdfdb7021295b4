"""Pieces of the training loop: schedule, LoRA, early stopping, metrics, crops, calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from chorus.finetune.calibration import calibration_stats, fit_temperature
from chorus.data.clipset import crop_batch, shuffled_batches
from chorus.train.early_stopping import EarlyStopping
from chorus.train.lora import LoRALayer, inject_lora, merge_lora
from chorus.metrics import average_precision
from chorus.train.metrics import classification_metrics
from chorus.train.probe_init import PENALTIES, probe_head
from chorus.train.schedule import warmup_cosine


def test_warmup_cosine_at_its_boundaries():
    total, warmup = 100, 10
    assert warmup_cosine(0, total, warmup) == pytest.approx(0.1)
    assert warmup_cosine(warmup - 1, total, warmup) == 1.0
    assert warmup_cosine(warmup, total, warmup) == 1.0
    assert warmup_cosine(55, total, warmup) == pytest.approx(0.5)
    assert warmup_cosine(total, total, warmup, floor=0.1) == 0.1
    assert warmup_cosine(total + 7, total, warmup, floor=0.1) == 0.1
    assert warmup_cosine(0, total, 0) == 1.0
    values = [warmup_cosine(s, total, warmup) for s in range(warmup, total + 1)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError):
        warmup_cosine(0, 10, 11)


@pytest.mark.parametrize("layer", [nn.Linear(6, 5), nn.Conv1d(3, 4, 5, stride=2, padding=1),
                                   nn.Conv2d(2, 3, 3, padding=1)])
def test_lora_starts_at_the_base_and_merges_exactly(layer):
    torch.manual_seed(0)
    net = nn.Sequential(layer)
    shape = {nn.Linear: (2, 6), nn.Conv1d: (2, 3, 20), nn.Conv2d: (2, 2, 7, 7)}[type(layer)]
    x = torch.randn(shape)
    before = net(x).detach()
    assert inject_lora(net, rank=2, alpha=4.0) == ["0"]
    assert isinstance(net[0], LoRALayer)
    assert torch.allclose(net(x), before)
    assert {n for n, p in net.named_parameters() if p.requires_grad} == {"0.lora_a", "0.lora_b"}
    with torch.no_grad():
        net[0].lora_b.normal_()
    adapted = net(x).detach()
    assert not torch.allclose(adapted, before)
    merge_lora(net)
    assert type(net[0]) is type(layer)
    assert torch.allclose(net(x), adapted, atol=1e-5)


def test_lora_targets_and_ineligible_layers():
    net = nn.Sequential(nn.Conv1d(4, 4, 3, groups=2), nn.Linear(4, 4), nn.Linear(4, 2))
    assert inject_lora(net, 1, 1.0, targets=["2"]) == ["2"]
    assert not any(p.requires_grad for n, p in net.named_parameters() if not n.startswith("2.lora"))
    with pytest.raises(ValueError, match="no Linear/Conv layer"):
        inject_lora(nn.Sequential(nn.Conv1d(4, 4, 3, groups=2)), 1, 1.0)


def test_early_stopping_counts_epochs_without_improvement():
    stopper = EarlyStopping(patience=2)
    assert stopper.update(0.5, 0) and stopper.update(0.6, 1)
    assert not stopper.update(0.6, 2) and not stopper.should_stop
    assert not stopper.update(0.55, 3) and stopper.should_stop
    assert stopper.best_epoch == 1
    loss = EarlyStopping(patience=None, mode="min")
    assert loss.update(1.0, 0) and loss.update(0.5, 1) and not loss.update(0.7, 2) and not loss.should_stop


def test_metrics_on_hand_computed_examples():
    # AP: positives ranked 1st and 3rd of 4 -> (1/1 + 2/3) / 2
    scores, truth = torch.tensor([0.9, 0.8, 0.7, 0.1]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert float(average_precision(scores[:, None], truth[:, None])[0]) == pytest.approx((1 + 2 / 3) / 2)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0]])
    metrics = classification_metrics(logits, torch.tensor([0, 1, 0, 2]), "multiclass")
    assert metrics["accuracy"] == 0.5
    assert metrics["macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)  # F1 per class: 1/2, 2/3, 0
    multi = classification_metrics(torch.tensor([[3.0, -3.0], [-3.0, 3.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
                                   "multilabel")
    assert multi["map"] == 1.0 and multi["micro_f1"] == 1.0


def test_crops_are_centred_for_evaluation_and_seeded_for_training():
    waves = [np.arange(10, dtype=np.float32), np.arange(4, dtype=np.float32)]
    batch, lengths = crop_batch(waves, [0, 1], 6, None)
    assert batch.shape == (2, 6) and lengths.tolist() == [6, 4]
    assert batch[0].tolist() == [2, 3, 4, 5, 6, 7] and batch[1].tolist() == [0, 1, 2, 3, 0, 0]
    first = crop_batch(waves, [0], 6, torch.Generator().manual_seed(3))[0]
    again = crop_batch(waves, [0], 6, torch.Generator().manual_seed(3))[0]
    assert torch.equal(first, again)
    whole, lengths = crop_batch(waves, [1, 0], None, None)
    assert whole.shape == (2, 10) and lengths.tolist() == [4, 10]
    batches = shuffled_batches(10, 4, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2] and sorted(sum(batches, [])) == list(range(10))


def test_temperature_fit_recovers_overconfidence():
    gen = torch.Generator().manual_seed(0)
    true_logits = torch.randn(2000, 4, generator=gen) * 1.5
    targets = torch.multinomial(true_logits.softmax(dim=1), 1, generator=gen).squeeze(1)
    temperature, before, after = fit_temperature(true_logits * 3.0, targets, "multiclass")
    assert temperature == pytest.approx(3.0, rel=0.15)
    assert after < before
    stats = calibration_stats(true_logits, targets, "multiclass", train_counts=[5, 3, 2, 0], train_clips=10)
    assert stats.priors == [0.5, 0.3, 0.2, 0.0]
    assert stats.valid_counts == torch.bincount(targets, minlength=4).tolist()
    assert stats.logit_std[0] == pytest.approx(float(true_logits[:, 0].std(unbiased=False)), rel=1e-5)
    assert math.isfinite(stats.nll_after)


def test_probe_head_finds_a_small_scale_feature_and_acts_on_raw_features():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (120,), generator=gen)
    signal = torch.nn.functional.one_hot(labels, 3).float() + 0.1 * torch.randn(120, 3, generator=gen)
    noise = 1000.0 * torch.randn(120, 5, generator=gen)
    features = torch.cat([1e-3 * signal, noise], dim=1)
    weight, bias, penalty = probe_head(features[:80], labels[:80], features[80:], labels[80:], "multiclass", 3)
    assert weight.shape == (3, 8) and penalty in PENALTIES
    predicted = (features[80:] @ weight.T + bias).argmax(dim=1)
    assert (predicted == labels[80:]).float().mean() == 1.0
