"""Model stock, DELLA, SLERP, Karcher and WUDI against references written from the papers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from chorus.seeding import generator
from chorus.taskvec.merge.errors import MergeError
from chorus.taskvec.merge.registry import TensorContext, get_method, method_names


def _ctx(k: int, weights=None, name="enc.w", seed=3) -> TensorContext:
    return TensorContext(name=name, weights=tuple(weights or [1.0] * k), vector_ids=tuple(f"v{i}" for i in range(k)),
                         seed=seed)


def _merge(method: str, deltas, ctx, **params):
    spec = get_method(method)
    return spec.function(deltas, spec.parse(params), ctx)


def _random(seed: int, shape, k: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(k)]


def test_new_methods_are_registered():
    assert {"iso_cts", "wudi", "model_stock", "della", "slerp", "karcher"} <= set(method_names())


# --------------------------------------------------------------- model stock
def test_model_stock_matches_the_papers_ratio():
    shared = _random(0, (6, 5), 1)[0]
    deltas = [shared + 0.7 * noise for noise in _random(1, (6, 5), 3)]
    weights = (1.0, 2.0, 1.0)
    flat = [d.double().reshape(-1).numpy() for d in deltas]
    cosines = [flat[i] @ flat[j] / np.linalg.norm(flat[i]) / np.linalg.norm(flat[j])
               for i in range(3) for j in range(i + 1, 3)]
    cos = float(np.mean(cosines))
    t = 3 * cos / (1 + 2 * cos)
    average = sum(w * f for w, f in zip(weights, flat)) / sum(weights)
    got = _merge("model_stock", deltas, _ctx(3, weights))
    np.testing.assert_allclose(got.double().reshape(-1).numpy(), t * average, rtol=1e-5, atol=1e-6)
    assert 0.2 < t < 1.0


def test_model_stock_keeps_identical_updates_and_drops_orthogonal_ones():
    (delta,) = _random(2, (4, 4), 1)
    torch.testing.assert_close(_merge("model_stock", [delta, delta], _ctx(2)), delta)
    a, b = torch.zeros(4, 4), torch.zeros(4, 4)
    a[0], b[1] = 1.0, 2.0
    assert not _merge("model_stock", [a, b], _ctx(2)).any()


# --------------------------------------------------------------------- DELLA
def ref_magprune(delta: torch.Tensor, density: float, epsilon: float, gen: torch.Generator) -> torch.Tensor:
    rows = delta.reshape(delta.shape[0], -1).double()
    keep = torch.zeros_like(rows)
    for r in range(rows.shape[0]):
        n = rows.shape[1]
        order = sorted(range(n), key=lambda j: (-abs(float(rows[r, j])), j))
        for rank, j in enumerate(order):
            keep[r, j] = 1.0 - ((1.0 - density) - epsilon / 2 + epsilon * rank / n)
    draws = torch.rand(delta.shape, generator=gen, dtype=torch.float64).reshape(rows.shape)
    return torch.where(draws < keep, rows / keep, 0.0).reshape(delta.shape)


def test_della_sum_matches_reference_with_the_same_draws():
    deltas = _random(3, (5, 2, 4), 2)
    weights = (1.0, 0.5)
    ctx = _ctx(2, weights)
    got = _merge("della", deltas, ctx, density=0.4, epsilon=0.3, ties=False)
    expected = sum(w * ref_magprune(d, 0.4, 0.3, generator(ctx.seed, "della", vid, ctx.name))
                   for w, d, vid in zip(weights, deltas, ctx.vector_ids))
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)


def test_della_keeps_large_entries_more_often_and_keeps_the_mean():
    (delta,) = _random(4, (400, 50), 1)
    pruned = _merge("della", [delta], _ctx(1), density=0.5, epsilon=0.8, ties=False)
    order = torch.argsort(delta.abs(), dim=1, descending=True)
    kept = (pruned != 0).gather(1, order).double().mean(dim=0)
    assert kept[:10].mean() > 0.8 and kept[-10:].mean() < 0.2  # keep 0.9 … 0.1
    assert abs(float(pruned.sum() - delta.sum())) < 0.05 * float(delta.abs().sum())


def test_della_ties_elects_signs_over_the_pruned_deltas():
    deltas = _random(5, (6, 6), 3)
    ctx = _ctx(3)
    got = _merge("della", deltas, ctx)
    pruned = [ref_magprune(d, 0.5, 0.1, generator(ctx.seed, "della", vid, ctx.name)) for d, vid in
              zip(deltas, ctx.vector_ids)]
    stacked = torch.stack(pruned)
    sign = torch.sign(stacked.sum(0))
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    expected = torch.where(agree.any(0), (stacked * agree).sum(0) / agree.sum(0).clamp(min=1), 0.0)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)


def test_della_rejects_probabilities_outside_zero_one():
    with pytest.raises(MergeError, match="epsilon"):
        get_method("della").parse({"density": 0.9, "epsilon": 0.4})


# --------------------------------------------------------------------- SLERP
def test_slerp_matches_the_formula_and_keeps_equal_norms():
    a, b = _random(6, (7, 3), 2)
    b = b * (a.norm() / b.norm())
    x, y = a.double().reshape(-1).numpy(), b.double().reshape(-1).numpy()
    omega = math.acos(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
    for t in (0.0, 0.3, 1.0):
        got = _merge("slerp", [a, b], _ctx(2), t=t).double().reshape(-1).numpy()
        expected = (math.sin((1 - t) * omega) * x + math.sin(t * omega) * y) / math.sin(omega)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert abs(np.linalg.norm(got) - np.linalg.norm(x)) < 1e-4
    parallel = _merge("slerp", [a, 2 * a], _ctx(2), t=0.5)
    torch.testing.assert_close(parallel, 1.5 * a)


def test_slerp_needs_exactly_two_vectors():
    with pytest.raises(MergeError, match="exactly two"):
        _merge("slerp", _random(7, (3,), 3), _ctx(3))


# ------------------------------------------------------------------- Karcher
def test_karcher_of_two_directions_is_the_weighted_geodesic_point():
    a, b = _random(8, (5, 4), 2)
    weights = (1.0, 3.0)
    got = _merge("karcher", [a, b], _ctx(2, weights)).double().reshape(-1).numpy()
    ua = a.double().reshape(-1).numpy() / float(a.norm())
    ub = b.double().reshape(-1).numpy() / float(b.norm())
    omega = math.acos(ua @ ub)
    t = weights[1] / sum(weights)
    point = (math.sin((1 - t) * omega) * ua + math.sin(t * omega) * ub) / math.sin(omega)
    mean_norm = (weights[0] * float(a.norm()) + weights[1] * float(b.norm())) / sum(weights)
    np.testing.assert_allclose(got, mean_norm * point, rtol=1e-5, atol=1e-6)


def test_karcher_minimizes_the_sum_of_squared_geodesic_distances():
    deltas = _random(9, (3,), 4)
    weights = np.array([1.0, 2.0, 0.5, 1.5])
    units = [d.double().numpy() / np.linalg.norm(d.double().numpy()) for d in deltas]

    def cost(z):
        x = z / np.linalg.norm(z)
        return sum(w * math.acos(np.clip(x @ u, -1, 1)) ** 2 for w, u in zip(weights, units))

    start = sum(w * u for w, u in zip(weights, units))
    best = minimize(cost, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000}).x
    best /= np.linalg.norm(best)
    got = _merge("karcher", deltas, _ctx(4, tuple(weights))).double().numpy()
    np.testing.assert_allclose(got / np.linalg.norm(got), best, atol=1e-4)
    assert cost(got) <= cost(best) + 1e-9


def test_karcher_refuses_negative_weights():
    with pytest.raises(MergeError, match="non-negative"):
        _merge("karcher", _random(10, (3,), 2), _ctx(2, (1.0, -1.0)))


# ---------------------------------------------------------------------- WUDI
def ref_wudi(deltas, weights, steps, lr, dtype):
    """Adam on Σ_i ‖(τ_m − τ_i) τ_iᵀ‖² / ‖τ_i‖² through autograd, from the sum."""
    tasks = [w * d.to(dtype).reshape(d.shape[0], -1) for w, d in zip(weights, deltas)]
    merged = torch.nn.Parameter(sum(tasks).clone())
    optimizer = torch.optim.Adam([merged], lr=lr)
    for _ in range(steps):
        loss = 0.0
        for task in tasks:
            loss = loss + torch.sum(((merged - task) @ task.T) ** 2) / torch.sum(task ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return merged.detach(), tasks


@pytest.mark.parametrize("shape", [(6, 20), (12, 2, 2)])
def test_wudi_matches_adam_on_the_papers_loss(shape):
    deltas = _random(11, shape, 3)
    weights = (1.0, 0.5, 2.0)
    got = _merge("wudi", deltas, _ctx(3, weights), steps=25, lr=1e-2, precision="float64")
    expected, _ = ref_wudi(deltas, weights, 25, 1e-2, torch.float64)
    torch.testing.assert_close(got.double().reshape(shape[0], -1), expected, rtol=1e-5, atol=1e-6)


def test_wudi_lowers_the_interference_toward_its_minimum_and_is_deterministic():
    deltas = _random(12, (4, 30), 3)
    ctx = _ctx(3)
    got = _merge("wudi", deltas, ctx, steps=400, lr=2e-2)
    assert torch.equal(got, _merge("wudi", deltas, ctx, steps=400, lr=2e-2))
    tasks = [d.double() for d in deltas]

    def loss(x):
        return float(sum(torch.sum(((x - t) @ t.T) ** 2) / torch.sum(t ** 2) for t in tasks))

    # closed-form minimum: τ_m G = Σ τ_i τ_iᵀ τ_i / ‖τ_i‖², G = Σ τ_iᵀ τ_i / ‖τ_i‖²
    gram = sum(t.T @ t / torch.sum(t ** 2) for t in tasks)
    rhs = sum(t @ t.T @ t / torch.sum(t ** 2) for t in tasks)
    optimum = rhs @ torch.linalg.pinv(gram)
    start = loss(sum(tasks))
    assert loss(got.double()) < loss(optimum) + 0.05 * (start - loss(optimum))
