"""The batched L-BFGS probe solver reaches scikit-learn's optimum of the same objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chorus.probe.solver import fit_linear

C_VALUES = (0.01, 1.0, 10.0)


def _problem(seed: int, rows: int = 120, classes: int = 4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    narrow = rng.normal(size=(rows, 6))
    narrow[np.arange(rows), labels] += 1.0
    wide = rng.normal(size=(rows, 150))  # wider than the rows: solved in the span of the rows
    wide[:, :classes] += 0.8 * np.eye(classes)[labels]
    wide[:, 10] = wide[:, 11] * 2.0  # a rank deficiency
    return [narrow, wide], labels


def _probabilities(x, weight, bias):
    logits = x @ weight + bias
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-4), (torch.float32, 5e-3)])
def test_every_probe_reaches_the_sklearn_optimum(dtype, tolerance):
    from sklearn.linear_model import LogisticRegression

    features, labels = _problem(0)
    rows = len(labels)
    l2 = torch.tensor([1.0 / (c * rows) for c in C_VALUES], dtype=torch.float64)
    fit = fit_linear([torch.tensor(x, dtype=dtype) for x in features], torch.tensor(labels), l2, 4,
                     tol=1e-7 if dtype == torch.float64 else 1e-5, dtype=dtype)
    assert fit.weights[1].shape == (150, 3, 4) and fit.biases[1].shape == (3, 4)
    for block, x in enumerate(features):
        for r, c in enumerate(C_VALUES):
            reference = LogisticRegression(C=c, tol=1e-10, max_iter=10_000).fit(x, labels)
            weight, bias = fit.weights[block][:, r].numpy(), fit.biases[block][r].numpy()
            ours = _probabilities(x, weight, bias)
            assert np.abs(ours - reference.predict_proba(x)).max() < tolerance, (block, c)
            centred = weight - weight.mean(axis=1, keepdims=True)  # softmax weights are defined up to a shift
            theirs = reference.coef_.T - reference.coef_.T.mean(axis=1, keepdims=True)
            assert np.abs(centred - theirs).max() < 10 * tolerance, (block, c)


def test_multi_hot_targets_match_independent_binary_fits():
    from sklearn.linear_model import LogisticRegression

    features, labels = _problem(1, classes=3)
    targets = np.eye(3)[labels]
    targets[::4, 0] = 1.0  # some rows carry two labels
    rows, classes = len(labels), 3
    c = 1.0
    # our loss averages over classes too, so C per class is scaled by 1 / classes
    l2 = torch.tensor([1.0 / (c * rows)], dtype=torch.float64)
    fit = fit_linear([torch.tensor(features[0])], torch.tensor(targets, dtype=torch.float64), l2, classes,
                     tol=1e-8, dtype=torch.float64)
    for k in range(classes):
        reference = LogisticRegression(C=c / classes, tol=1e-10, max_iter=10_000).fit(features[0], targets[:, k])
        assert np.allclose(fit.weights[0][:, 0, k].numpy(), reference.coef_[0], atol=1e-4)
        assert abs(float(fit.biases[0][0, k]) - reference.intercept_[0]) < 1e-4


def test_same_inputs_same_bytes():
    features, labels = _problem(2)
    inputs = [torch.tensor(x, dtype=torch.float32) for x in features]
    l2 = torch.tensor([0.01, 0.001], dtype=torch.float64)
    first = fit_linear(inputs, torch.tensor(labels), l2, 4)
    second = fit_linear(inputs, torch.tensor(labels), l2, 4)
    assert all(torch.equal(a, b) for a, b in zip(first.weights + first.biases, second.weights + second.biases))


def test_a_block_without_variance_learns_the_class_prior_only():
    labels = np.array([0] * 30 + [1] * 10 + [2] * 20)
    fit = fit_linear([torch.zeros(60, 5)], torch.tensor(labels), torch.tensor([0.01], dtype=torch.float64), 3,
                     tol=1e-7, dtype=torch.float64)
    assert torch.count_nonzero(fit.weights[0]) == 0
    bias = fit.biases[0][0].numpy()
    assert np.allclose(bias - bias.mean(), np.log([0.5, 1 / 6, 1 / 3]) - np.log([0.5, 1 / 6, 1 / 3]).mean(), atol=1e-5)


def _largest_gradient_entry(x, labels, weight, bias, l2):
    """scikit-learn's convergence measure: the largest |entry| of the objective's gradient
    with respect to the original weights ``[D, C]`` and biases."""
    residual = _probabilities(x, weight, bias) - np.eye(weight.shape[1])[labels]
    return max(np.abs(x.T @ residual / len(x) + l2 * weight).max(), np.abs(residual.mean(axis=0)).max())


def test_probes_stop_on_sklearns_test_in_the_original_coordinates():
    features, labels = _problem(3)
    rows = len(labels)
    l2 = torch.tensor([1.0 / (c * rows) for c in C_VALUES], dtype=torch.float64)
    fit = fit_linear([torch.tensor(x) for x in features], torch.tensor(labels), l2, 4, tol=1e-4, dtype=torch.float64)
    assert bool(fit.converged.all())
    largest = [[_largest_gradient_entry(x, labels, fit.weights[b][:, r].numpy(), fit.biases[b][r].numpy(), float(l2[r]))
                for r in range(len(C_VALUES))] for b, x in enumerate(features)]
    assert np.max(largest) <= 1e-4
    # the test itself, not a stricter one, stops them: most end near the tolerance
    assert np.median(largest) > 1e-5


def test_blocks_with_the_same_axes_share_a_bucket_and_match_separate_solves():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 40)
    blocks = [rng.normal(size=(40, width)) + np.eye(3)[labels] @ rng.normal(size=(3, width)) for width in (60, 100)]
    l2 = torch.tensor([0.05, 0.005], dtype=torch.float64)
    together = fit_linear([torch.tensor(x) for x in blocks], torch.tensor(labels), l2, 3, tol=1e-7, dtype=torch.float64)
    for b, x in enumerate(blocks):
        alone = fit_linear([torch.tensor(x)], torch.tensor(labels), l2, 3, tol=1e-7, dtype=torch.float64)
        assert together.weights[b].shape == (x.shape[1], 2, 3)
        assert torch.allclose(together.weights[b], alone.weights[0], atol=1e-5)
        assert torch.allclose(together.biases[b], alone.biases[0], atol=1e-5)
