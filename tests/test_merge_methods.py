"""Merge methods against straightforward reference implementations written here."""

from __future__ import annotations

import math

import pytest
import torch

from chorus.seeding import generator
from chorus.taskvec.merge.core import kept_count
from chorus.taskvec.merge.errors import MergeError
from chorus.taskvec.merge.registry import TensorContext, get_method, method_names
from chorus.taskvec.merge.thresholds import kth_largest_magnitudes

SHAPE = (12, 9)
WEIGHTS = (1.0, 0.5, 2.0)


def _deltas(seed: int = 0, k: int = 3, shape=SHAPE) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(k)]


def _ctx(name="layer.weight", weights=WEIGHTS, bounds=None, seed=7) -> TensorContext:
    return TensorContext(name=name, weights=tuple(weights), vector_ids=tuple(f"v{i}" for i in range(len(weights))),
                         seed=seed, bounds=bounds)


def _merge(method: str, deltas, ctx, **params):
    spec = get_method(method)
    return spec.function(deltas, spec.parse(params), ctx)


# ----------------------------------------------------------------- references
def ref_topk_mask(delta: torch.Tensor, k: int) -> torch.Tensor:
    flat = delta.reshape(-1)
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    mask[torch.topk(flat.abs(), k).indices] = True
    return mask.reshape(delta.shape)


def ref_ties_combine(trimmed: list[torch.Tensor], weights) -> torch.Tensor:
    """Per entry: sign of the weighted sum, then the weighted mean of the agreeing entries."""
    stacked = torch.stack([t.double() for t in trimmed]).reshape(len(trimmed), -1)
    w = torch.tensor(weights, dtype=torch.float64)
    out = torch.zeros(stacked.shape[1], dtype=torch.float64)
    for j in range(stacked.shape[1]):
        column = stacked[:, j]
        elected = math.copysign(1.0, float((w * column).sum())) if float((w * column).sum()) != 0 else 0.0
        agree = [i for i in range(len(trimmed)) if column[i] != 0 and math.copysign(1.0, float(column[i])) == elected]
        if agree:
            out[j] = sum(w[i] * column[i] for i in agree) / sum(w[i] for i in agree)
    return out.reshape(trimmed[0].shape).float()


def ref_dare_drop(delta, density, name, vector_id, seed):
    keep = torch.rand(delta.shape, generator=generator(seed, "dare", vector_id, name)) < density
    return torch.where(keep, delta / density, torch.zeros_like(delta))


def ref_breadcrumbs_mask(delta, density, gamma):
    """Rank entries by magnitude (descending); keep ranks top..kept-1."""
    flat = delta.reshape(-1)
    order = torch.argsort(flat.abs(), descending=True)
    top, kept = kept_count(flat.numel(), gamma), kept_count(flat.numel(), min(1.0, gamma + density))
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    mask[order[top:kept]] = True
    return mask.reshape(delta.shape)


# --------------------------------------------------------------------- tests
def test_registry_lists_every_method_and_rejects_unknowns():
    assert set(method_names()) >= {"mean", "task_arithmetic", "ties", "dare", "breadcrumbs", "tsv", "iso_c", "negation"}
    with pytest.raises(MergeError, match="unknown merge method 'slerpy'"):
        get_method("slerpy")
    with pytest.raises(MergeError, match="density"):
        get_method("ties").parse({"density": 1.5})
    with pytest.raises(MergeError, match="densty: Extra inputs"):
        get_method("ties").parse({"densty": 0.5})


@pytest.mark.parametrize("density", [0.2, 0.55])
def test_ties_per_tensor_matches_reference(density):
    deltas = _deltas(1)
    k = kept_count(deltas[0].numel(), density)
    trimmed = [d * ref_topk_mask(d, k) for d in deltas]
    expected = ref_ties_combine(trimmed, WEIGHTS)
    torch.testing.assert_close(_merge("ties", deltas, _ctx(), density=density), expected, rtol=1e-5, atol=1e-6)


def test_ties_count_sign_rule_differs_from_mass_where_votes_disagree():
    deltas = [torch.tensor([3.0, 0.1]), torch.tensor([-1.0, -0.2]), torch.tensor([-1.0, 0.3])]
    ctx = _ctx(weights=(1.0, 1.0, 1.0))
    mass = _merge("ties", deltas, ctx, density=1.0, sign="mass")
    count = _merge("ties", deltas, ctx, density=1.0, sign="count")
    torch.testing.assert_close(mass, torch.tensor([3.0, 0.2]))
    torch.testing.assert_close(count, torch.tensor([-1.0, 0.2]))


def test_global_thresholds_are_the_exact_kth_magnitudes_of_each_whole_vector():
    vectors = [_deltas(seed, k=2, shape=(40, 25)) for seed in range(3)]
    vectors[0][1][:5] = 0.0
    vectors[1][0][3:9] = 0.75  # repeated magnitudes
    ranks = (1, 37, 500, 1999, 2000, 2001, 0)

    def stream():
        for j in range(2):
            yield [vectors[i][j] for i in range(3)]

    found = kth_largest_magnitudes(stream, 3, ranks)
    for i in range(3):
        flat = torch.cat([t.reshape(-1) for t in vectors[i]]).abs()
        ordered = torch.sort(flat, descending=True).values
        expected = tuple(math.inf if k < 1 else 0.0 if k > flat.numel() else float(ordered[k - 1]) for k in ranks)
        assert found[i] == expected


def test_ties_global_scope_uses_one_threshold_per_whole_vector():
    vectors = [_deltas(seed, k=2) for seed in range(3)]  # 3 vectors of 2 tensors each
    density = 0.3
    method = get_method("ties")
    params = method.parse({"density": density, "scope": "global"})
    numel = 2 * vectors[0][0].numel()
    rank = method.ranks(params, numel)["kept"]
    assert rank == kept_count(numel, density)

    def stream():
        for j in range(2):
            yield [vectors[i][j] for i in range(3)]

    bounds = tuple({"kept": value} for (value,) in kth_largest_magnitudes(stream, 3, (rank,)))
    for j in range(2):
        trimmed = []
        for i in range(3):
            whole = torch.cat([t.reshape(-1) for t in vectors[i]])
            mask = ref_topk_mask(whole, rank)[j * vectors[i][0].numel():(j + 1) * vectors[i][0].numel()]
            trimmed.append(vectors[i][j] * mask.reshape(SHAPE))
        got = method.function([vectors[i][j] for i in range(3)], params, _ctx(name=f"t{j}", bounds=bounds))
        torch.testing.assert_close(got, ref_ties_combine(trimmed, WEIGHTS), rtol=1e-5, atol=1e-6)


def test_dare_alone_matches_reference_with_the_same_masks():
    deltas = _deltas(2)
    ctx = _ctx()
    expected = sum(w * ref_dare_drop(d, 0.3, ctx.name, f"v{i}", ctx.seed) for i, (w, d) in enumerate(zip(WEIGHTS, deltas)))
    torch.testing.assert_close(_merge("dare", deltas, ctx, density=0.3), expected, rtol=1e-5, atol=1e-6)


def test_dare_ties_matches_reference_with_the_same_masks():
    deltas = _deltas(3)
    ctx = _ctx()
    dropped = [ref_dare_drop(d, 0.6, ctx.name, f"v{i}", ctx.seed) for i, d in enumerate(deltas)]
    expected = ref_ties_combine(dropped, WEIGHTS)
    torch.testing.assert_close(_merge("dare", deltas, ctx, density=0.6, ties=True), expected, rtol=1e-5, atol=1e-6)


def test_dare_masks_depend_on_tensor_name_and_seed_not_on_call_order():
    deltas = _deltas(4)
    first = _merge("dare", deltas, _ctx(name="a"), density=0.5)
    _merge("dare", deltas, _ctx(name="b"), density=0.5)
    again = _merge("dare", deltas, _ctx(name="a"), density=0.5)
    assert torch.equal(first, again)
    assert not torch.equal(first, _merge("dare", deltas, _ctx(name="b"), density=0.5))
    assert not torch.equal(first, _merge("dare", deltas, _ctx(name="a", seed=8), density=0.5))


@pytest.mark.parametrize("ties", [False, True])
def test_breadcrumbs_matches_reference(ties):
    deltas = _deltas(5)
    masks = [ref_breadcrumbs_mask(d, 0.6, 0.05) for d in deltas]
    kept = [d * m for d, m in zip(deltas, masks)]
    expected = ref_ties_combine(kept, WEIGHTS) if ties else sum(w * k for w, k in zip(WEIGHTS, kept))
    got = _merge("breadcrumbs", deltas, _ctx(), density=0.6, gamma=0.05, ties=ties)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert int((got != 0).sum()) <= int(sum(m.sum() for m in masks))


def test_mean_task_arithmetic_and_negation_are_weighted_sums():
    deltas = _deltas(6)
    ctx = _ctx()
    total = sum(w * d for w, d in zip(WEIGHTS, deltas))
    torch.testing.assert_close(_merge("task_arithmetic", deltas, ctx), total)
    torch.testing.assert_close(_merge("negation", deltas, ctx), -total)
    torch.testing.assert_close(_merge("mean", deltas, ctx), total / sum(WEIGHTS))


def test_iso_c_flattens_the_spectrum_of_the_summed_matrix():
    deltas = _deltas(7, shape=(6, 2, 3, 3))  # a conv kernel, read as [6, 18]
    got = _merge("iso_c", deltas, _ctx())
    total = sum(w * d for w, d in zip(WEIGHTS, deltas)).reshape(6, -1)
    singular = torch.linalg.svdvals(got.reshape(6, -1))
    torch.testing.assert_close(singular, torch.full((6,), float(torch.linalg.svdvals(total).mean())), rtol=1e-4, atol=1e-5)
    u, _, vh = torch.linalg.svd(total, full_matrices=False)
    torch.testing.assert_close(got.reshape(6, -1), singular.mean() * u @ vh, rtol=1e-4, atol=1e-5)


def test_spectral_methods_average_vectors_and_keep_frozen_tensors_zero():
    deltas = _deltas(8, shape=(10,))
    ctx = _ctx()
    for method in ("tsv", "iso_c"):
        torch.testing.assert_close(_merge(method, deltas, ctx), sum(w * d for w, d in zip(WEIGHTS, deltas)) / sum(WEIGHTS))
        assert not _merge(method, [torch.zeros(4, 5)] * 3, ctx).any()


def test_tsv_of_one_full_rank_task_gives_it_back_and_decorrelates_several():
    (delta,) = _deltas(9, k=1, shape=(8, 5))
    torch.testing.assert_close(_merge("tsv", [delta], _ctx(weights=(1.0,)), rank_fraction=1.0), delta, rtol=1e-4, atol=1e-5)
    # each task keeps 3 of 6 components; with orthogonal task subspaces the result is their sum
    basis = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0))).Q
    right = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1))).Q
    a = basis[:, :3] @ torch.diag(torch.tensor([3.0, 2.0, 1.0])) @ right[:, :3].T
    b = basis[:, 3:6] @ torch.diag(torch.tensor([2.5, 1.5, 0.5])) @ right[:, 3:6].T
    torch.testing.assert_close(_merge("tsv", [a, b], _ctx(weights=(1.0, 1.0))), a + b, rtol=1e-4, atol=1e-5)
    # overlapping subspaces are decorrelated: the result differs from the plain sum
    c = basis[:, :3] @ torch.diag(torch.tensor([2.5, 1.5, 0.5])) @ right[:, :3].T
    assert not torch.allclose(_merge("tsv", [a, c], _ctx(weights=(1.0, 1.0))), a + c, atol=1e-3)
