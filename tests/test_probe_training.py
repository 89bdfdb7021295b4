"""Batched probes: each probe trains exactly as if alone; width groups, T-WA, layer sum,
early stopping, and agreement with scikit-learn's logistic regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chorus.probe.inputs import Standardizer
from chorus.probe.models import (AttentiveProbes, BatchedProbes, LayerSumProbes, LinearProbes, SplitInputs, build_probes,
                                  probe_rates)
from chorus.probe.optim import BatchedAdam
from chorus.probe.train import TrainConfig, predict_logits, train_probes, validate


def _blobs(widths, n, classes=3, seed=0, spread=0.6):
    """Per-layer Gaussian blobs around class centres (harder in later layers)."""
    rng = np.random.default_rng(seed)
    centres = [rng.standard_normal((classes, w)) * spread / (1 + i) for i, w in enumerate(widths)]
    targets = rng.integers(0, classes, n)
    return [c[targets] + rng.standard_normal((n, c.shape[1])) for c in centres], targets


def _inputs(widths, n, seed=0, **kw):
    pooled, targets = _blobs(widths, n, seed=seed, **kw)
    return Standardizer.fit(pooled).inputs(pooled, targets), (pooled, targets)


def _alone(x, targets, rate, steps, l2=0.0):
    """One zero-initialised linear probe trained alone with torch's own Adam (its coupled
    ``weight_decay`` is the L2 penalty, on the weight only)."""
    single = torch.nn.Linear(x.shape[1], 3)
    torch.nn.init.zeros_(single.weight), torch.nn.init.zeros_(single.bias)
    adam = torch.optim.Adam([{"params": [single.weight], "weight_decay": l2}, {"params": [single.bias]}], lr=rate)
    for _ in range(steps):
        adam.zero_grad()
        torch.nn.functional.cross_entropy(single(x), targets).backward()
        adam.step()
    return single(x).detach()


@pytest.mark.parametrize("l2", [0.0, 0.2])
def test_batched_steps_equal_each_probe_trained_alone_also_after_others_stop(l2):
    torch.manual_seed(0)
    inputs = SplitInputs([torch.randn(20, 5), torch.randn(20, 7)], torch.randint(0, 3, (20,)))
    rates = (0.1, 0.01)
    batched = LinearProbes([5, 7], 2, 3)
    optimizer = BatchedAdam(batched, probe_rates(batched, rates))
    for step in range(5):
        if step == 2:  # probes 1 and 2 stop: the others go on as if nothing happened
            optimizer.drop(batched.drop(torch.tensor([False, True, True, False])))
        batched.gradient(inputs, l2)
        optimizer.step()
    assert batched.live_probes().tolist() == [0, 3]
    logits = batched(inputs).detach()
    for row, (layer, r) in enumerate([(0, 0), (1, 1)]):
        expected = _alone(inputs.pooled[layer], inputs.targets, rates[r], 5, l2)
        np.testing.assert_allclose(logits[row], expected, rtol=1e-5, atol=1e-6)
    batched.restore(torch.zeros(batched.full_size))
    assert batched(inputs).shape == (4, 20, 3)


def test_validated_and_kept_weights_are_the_running_average_of_the_steps():
    torch.manual_seed(2)
    inputs = SplitInputs([torch.randn(40, 5)], torch.randint(0, 3, (40,)))
    config = TrainConfig(learning_rates=(0.1,), epochs=6, eval_every=1000, batch_size=64, average=0.7, weight_decay=0.01)
    model = LinearProbes([5], 1, 3)
    result = train_probes(model, probe_rates(model, (0.1,)), inputs, inputs, config)  # one check, after step 6
    assert result.best_step.tolist() == [6]
    manual = LinearProbes([5], 1, 3)
    adam, average = BatchedAdam(manual, probe_rates(manual, (0.1,))), torch.zeros(manual.full_size)
    for _ in range(6):
        manual.gradient(inputs, 0.01)
        adam.step()
        average.lerp_(manual.flat.detach(), 0.3)
    np.testing.assert_allclose(model.flat.detach(), average, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(average, manual.flat.detach(), atol=1e-3)


@pytest.mark.parametrize("multi_hot, l2", [(False, 0.0), (True, 0.0), (False, 0.3), (True, 0.3)])
def test_closed_form_gradient_equals_autograd(multi_hot, l2):
    torch.manual_seed(1)
    targets = (torch.rand(16, 3) > 0.5).float() if multi_hot else torch.randint(0, 3, (16,))
    inputs = SplitInputs([torch.randn(16, 4), torch.randn(16, 6), torch.randn(16, 4)], targets)
    model = LinearProbes([4, 6, 4], 2, 3)
    with torch.no_grad():
        model.flat.normal_()
    model.drop(torch.tensor([False, False, True, False, False, True]))
    model.gradient(inputs, l2)
    closed = model.flat.grad.clone()
    BatchedProbes.gradient(model, inputs, l2)
    np.testing.assert_allclose(closed, model.flat.grad, rtol=1e-5, atol=1e-7)
    model.gradient(inputs)  # the penalty adds l2 * W on the weights, nothing on the biases
    penalty = {name: block for name, block in model.blocks(closed - model.flat.grad).items()}
    for name, block in model.blocks().items():
        expected = l2 * block.detach() if name.startswith("weight") else torch.zeros_like(block)
        np.testing.assert_allclose(penalty[name], expected, rtol=1e-4, atol=1e-6)


def test_dropping_probes_keeps_the_others_logits_and_restore_brings_all_back():
    """Each layer is one product with its live probes' columns; dropping some changes
    nothing for the rest, and no layer is padded to another's width."""
    torch.manual_seed(0)
    inputs = SplitInputs([torch.randn(6, 4), torch.randn(6, 8), torch.randn(6, 4)], torch.zeros(6, dtype=torch.int64))
    model = LinearProbes([4, 8, 4], 2, 3)
    with torch.no_grad():
        model.flat.normal_()
    full = model.flat.detach().clone()
    before = model(inputs).detach()
    for layer in range(3):
        for rate in range(2):
            weight, bias = model.blocks()[f"weight_{layer}"][:, rate], model.blocks()[f"bias_{layer}"][rate]
            np.testing.assert_allclose(before[layer * 2 + rate], (inputs.pooled[layer] @ weight + bias).detach(),
                                       rtol=1e-5, atol=1e-5)
    stopped = torch.tensor([True, False, False, True, True, False])
    model.drop(stopped)
    assert model.flat.numel() == sum(w * 3 + 3 for w in (4, 8, 4))  # probes 1, 2, 5 remain
    np.testing.assert_allclose(model(inputs).detach(), before[~stopped], rtol=1e-6)
    model.restore(full)
    np.testing.assert_allclose(model(inputs).detach(), before, rtol=1e-6)


def test_an_epoch_shuffles_only_the_layers_that_live_probes_read():
    inputs = SplitInputs([torch.randn(6, 4), torch.randn(6, 8)], torch.arange(6) % 3)
    model = LinearProbes([4, 8], 2, 3)
    assert model.layers_read() == [True, True]
    model.drop(torch.tensor([True, True, False, True]))  # layer 0 has no live probe left
    assert model.layers_read() == [False, True]
    order = torch.tensor([5, 4, 3, 2, 1, 0])
    taken = inputs.take(order, model.layers_read())
    assert taken.pooled[0] is inputs.pooled[0]
    assert torch.equal(taken.pooled[1], inputs.pooled[1].flip(0)) and torch.equal(taken.targets, inputs.targets.flip(0))


def test_every_element_belongs_to_its_probe():
    model = LinearProbes([4, 8, 4], 2, 3)
    counts = torch.bincount(model.owner, minlength=model.num_probes)
    expected = torch.tensor([w * 3 + 3 for w in (4, 8, 4) for _ in range(2)])
    assert torch.equal(counts, expected)


def test_attention_with_zero_scorer_is_the_masked_mean():
    frames = torch.randn(3, 5, 4)
    masks = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    means = torch.stack([frames[i][masks[i]].mean(0) for i in range(3)])
    inputs = SplitInputs([means], torch.zeros(3, dtype=torch.int64), [frames], [masks])
    attentive, linear = AttentiveProbes([4], 1, 2), LinearProbes([4], 1, 2)
    with torch.no_grad():
        attentive.blocks()["weight_0"].normal_()
        linear.blocks()["weight_0"].copy_(attentive.blocks()["weight_0"].permute(1, 0, 2))
    np.testing.assert_allclose(attentive(inputs).detach(), linear(inputs).detach(), rtol=1e-5, atol=1e-6)
    assert sum(b.numel() for n, b in attentive.blocks().items() if n.startswith("scorer")) == 4 + 1


def test_attention_learns_to_find_the_informative_frame():
    """Class shows only in one frame among noise: T-WA beats T-A."""
    rng = np.random.default_rng(1)
    n, length, width = 240, 24, 6
    targets = rng.integers(0, 2, n)
    frames = rng.standard_normal((n, length, width)).astype(np.float32)
    where = rng.integers(0, length, n)
    frames[np.arange(n), where, 0] = 6.0  # a marker frame the scorer can find
    frames[np.arange(n), where, 1] = np.where(targets == 1, 2.0, -2.0)
    split = {"train": slice(0, 160), "valid": slice(160, 200), "test": slice(200, 240)}
    per_clip = lambda s: [list(frames[s])]  # noqa: E731
    standardizer = Standardizer.fit([frames[split["train"]].mean(1)], per_clip(split["train"]))
    data = {k: standardizer.inputs([frames[s].mean(1)], targets[s], per_clip(s)) for k, s in split.items()}
    config = TrainConfig(learning_rates=(0.03,), epochs=60, patience=60, batch_size=32)
    accuracy = {}
    for pooling in ("mean", "attention"):
        model = build_probes(pooling, [width], 1, 2)
        train_probes(model, probe_rates(model, config.learning_rates), data["train"], data["valid"], config)
        accuracy[pooling] = (predict_logits(model, data["test"])[0].argmax(-1) == data["test"].targets).float().mean()
    assert accuracy["attention"] > 0.85 and accuracy["mean"] < accuracy["attention"] - 0.15


@pytest.mark.parametrize("widths", [[6, 6, 6], [4, 6, 8]])
def test_layer_sum_weights_are_a_softmax_and_find_the_useful_layer(widths):
    pooled, targets = _blobs(widths, 300, spread=0.0)
    rng = np.random.default_rng(3)
    pooled[1] = pooled[1] + 2.5 * np.eye(widths[1])[targets % widths[1]] * (rng.random((300, 1)) > 0.1)
    standardizer = Standardizer.fit([p[:200] for p in pooled])
    train = standardizer.inputs([p[:200] for p in pooled], targets[:200])
    valid = standardizer.inputs([p[200:] for p in pooled], targets[200:])
    model = LayerSumProbes(widths, 2, 3)
    config = TrainConfig(learning_rates=(0.05, 0.01), epochs=40)
    train_probes(model, probe_rates(model, config.learning_rates), train, valid, config)
    weights = model.layer_weights().detach()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert int(weights[0].argmax()) == 1


@pytest.mark.parametrize("monitor", ["metric", "loss"])
def test_early_stopping_keeps_each_probes_best_validation_weights(monitor):
    pooled, targets = _blobs([30], 230, spread=0.5)
    standardizer = Standardizer.fit([pooled[0][:30]])  # 30 clips, 30 features: overfits fast
    train = standardizer.inputs([pooled[0][:30]], targets[:30])
    valid = standardizer.inputs([pooled[0][30:]], targets[30:])
    model = LinearProbes([30], 2, 3)
    config = TrainConfig(learning_rates=(0.3, 1e-3), epochs=40, patience=3, batch_size=8, monitor=monitor)
    result = train_probes(model, probe_rates(model, config.learning_rates), train, valid, config)
    scores, losses = validate(model, valid)
    np.testing.assert_allclose(scores, result.valid_score, rtol=1e-6)
    np.testing.assert_allclose(losses, result.valid_loss, rtol=1e-5)
    if monitor == "metric":  # the accuracy plateaus: every probe stops early (4 steps per epoch)
        assert result.steps < config.epochs * 4
    else:  # the fast rate reaches its lowest loss (then overfits) long before the slow one
        assert result.best_step[0] < 40 <= result.best_step[1]
    for probe, rate in enumerate(config.learning_rates):  # each holds its weights of its best check, as if alone
        alone = LinearProbes([30], 1, 3)
        train_probes(alone, probe_rates(alone, (rate,)), train, valid,
                     TrainConfig(learning_rates=(rate,), epochs=int(result.best_step[probe]) // 4, patience=40, batch_size=8,
                                 monitor=monitor))
        np.testing.assert_allclose(predict_logits(alone, valid)[0], predict_logits(model, valid)[probe], rtol=1e-5, atol=1e-5)


def test_batched_probes_agree_with_sklearn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    widths = [16, 32]
    pooled, targets = _blobs(widths, 600, classes=4, seed=5, spread=0.5)
    parts = {"train": slice(0, 300), "valid": slice(300, 400), "test": slice(400, 600)}
    standardizer = Standardizer.fit([p[parts["train"]] for p in pooled])
    data = {k: standardizer.inputs([p[s] for p in pooled], targets[s]) for k, s in parts.items()}
    config = TrainConfig(epochs=40, patience=5, weight_decay=1 / 300)  # scikit-learn's C = 1 / (l2 · 300 rows)
    rates = len(config.learning_rates)
    model = LinearProbes(widths, rates, 4)
    train_probes(model, probe_rates(model, config.learning_rates), data["train"], data["valid"], config)
    ours = (predict_logits(model, data["test"]).argmax(-1) == data["test"].targets).float().mean(-1)
    for layer in range(2):
        x = {k: d.pooled[layer].numpy() for k, d in data.items()}
        reference = LogisticRegression(C=1.0, max_iter=500).fit(x["train"], targets[parts["train"]])
        sk = reference.score(x["test"], targets[parts["test"]])
        assert abs(float(ours[layer * rates:(layer + 1) * rates].max()) - sk) < 0.05


@pytest.mark.parametrize("field, value", [("monitor", "accuracy"), ("eval_every", 0), ("min_delta", 1.0), ("patience", 0),
                                          ("weight_decay", -0.1), ("weight_decay", float("nan")), ("average", 1.0)])
def test_train_config_refuses_bad_settings(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        TrainConfig(**{field: value})
