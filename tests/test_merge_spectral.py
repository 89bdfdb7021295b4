"""Spectral merges (Iso-C, Iso-CTS, TSV) stay in the span of the deltas; references in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chorus.taskvec.merge.registry import TensorContext, get_method

SPECTRAL = ("iso_c", "iso_cts", "tsv")


def _ctx(k: int, weights=None) -> TensorContext:
    return TensorContext(name="w", weights=tuple(weights or [1.0] * k), vector_ids=tuple(f"v{i}" for i in range(k)))


def _merge(method: str, deltas, ctx, **params):
    spec = get_method(method)
    return spec.function(deltas, spec.parse(params), ctx)


def _random(seed: int, shape, k: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(k)]


def _span_residual(result: torch.Tensor, deltas) -> float:
    """Largest part of ``result`` outside the row and column spaces of the stacked deltas."""
    stacked_cols = np.concatenate([d.double().numpy() for d in deltas], axis=1)
    stacked_rows = np.concatenate([d.double().numpy() for d in deltas], axis=0)
    u = np.linalg.svd(stacked_cols, full_matrices=False)[0]
    u = u[:, : np.linalg.matrix_rank(stacked_cols)]
    vt = np.linalg.svd(stacked_rows, full_matrices=False)[2]
    vt = vt[: np.linalg.matrix_rank(stacked_rows)]
    x = result.double().numpy()
    outside = x - u @ (u.T @ x)
    outside_rows = x - (x @ vt.T) @ vt
    return float(max(np.abs(outside).max(), np.abs(outside_rows).max()))


@pytest.mark.parametrize("method", SPECTRAL)
def test_rows_and_columns_no_delta_touches_stay_exactly_zero(method):
    deltas = _random(0, (16, 9), 3)
    for delta in deltas:
        delta[6:] = 0.0
        delta[:, 2] = 0.0
    got = _merge(method, deltas, _ctx(3, (1.0, 0.5, 2.0)))
    assert got[6:].abs().max() == 0.0
    assert got[:, 2].abs().max() == 0.0
    assert got[:6].abs().max() > 0.1
    assert _span_residual(got, deltas) < 1e-5


@pytest.mark.parametrize("method", SPECTRAL)
def test_conv_kernel_with_dead_output_channels_stays_zero(method):
    deltas = _random(1, (8, 3, 3, 3), 2)
    for delta in deltas:
        delta[5:] = 0.0
    got = _merge(method, deltas, _ctx(2))
    assert got[5:].abs().max() == 0.0 and got[:5].abs().max() > 0


def test_iso_c_of_a_rank_deficient_sum_flattens_only_its_span():
    a, b = _random(2, (10, 7), 2)
    low = b[:, :2] @ _random(3, (2, 7), 1)[0]  # rank 2
    deltas = [a, low, -a]  # the sum is `low`: rank 2 of 7
    got = _merge("iso_c", deltas, _ctx(3)).double().numpy()
    u, s, vt = np.linalg.svd(low.double().numpy())
    expected = s[:2].mean() * u[:, :2] @ vt[:2]
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert np.linalg.matrix_rank(got, tol=1e-4) == 2


def test_tsv_of_tasks_sharing_one_subspace_stays_in_it():
    basis = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0))).Q
    right = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(1))).Q
    a = basis[:, :2] @ torch.diag(torch.tensor([3.0, 1.0])) @ right[:, :2].T
    c = basis[:, :2] @ torch.diag(torch.tensor([2.0, 0.5])) @ right[:, :2].T
    got = _merge("tsv", [a, c], _ctx(2), rank_fraction=1.0)  # 4 stacked columns spanning 2 dimensions
    assert _span_residual(got, [a, c]) < 1e-5
    assert torch.linalg.matrix_rank(got.double(), atol=1e-4) == 2


def ref_tsv_more_tasks_than_rank(deltas) -> np.ndarray:
    """Each task's top component, the min(m, n) largest overall, Procrustes on U and V."""
    triples = []
    for delta in deltas:
        u, s, vt = np.linalg.svd(delta.double().numpy(), full_matrices=False)
        triples.append((s[0], u[:, 0], vt[0]))
    full = min(deltas[0].shape)
    order = sorted(range(len(triples)), key=lambda i: -triples[i][0])[:full]
    order.sort()
    s = np.array([triples[i][0] for i in order])
    u = np.stack([triples[i][1] for i in order], axis=1)
    v = np.stack([triples[i][2] for i in order], axis=1)

    def procrustes(x):
        p, _, qt = np.linalg.svd(x, full_matrices=False)
        return p @ qt

    return procrustes(u) @ np.diag(s) @ procrustes(v).T


def test_tsv_with_more_tasks_than_the_rank_keeps_the_largest_directions_orthonormal():
    deltas = _random(4, (3, 5), 5)  # K = 5 > min(m, n) = 3: rank 1 per task, 3 kept overall
    for i, delta in enumerate(deltas):
        delta.mul_(1.0 + i)
    got = _merge("tsv", deltas, _ctx(5))
    np.testing.assert_allclose(got.double().numpy(), ref_tsv_more_tasks_than_rank(deltas), atol=1e-4)
    # three components, orthonormal singular vectors: the singular values are exactly the kept ones
    kept = sorted((float(torch.linalg.svdvals(d.double())[0]) for d in deltas), reverse=True)[:3]
    np.testing.assert_allclose(np.linalg.svd(got.double().numpy(), compute_uv=False), kept, rtol=1e-4)


def ref_iso_cts(deltas, weights, common_fraction) -> np.ndarray:
    """Iso-CTS as the paper writes it, full-rank inputs, float64."""
    tasks = [w * d.double().numpy().reshape(d.shape[0], -1) for w, d in zip(weights, deltas)]
    total = sum(tasks)
    full, count = min(total.shape), len(tasks)
    common = int(common_fraction * full)
    specific = round((full - common) / count) * count
    common = full - specific
    per_task = specific // count
    u, s, vt = np.linalg.svd(total, full_matrices=False)
    u_c, s_c, vt_c = u[:, :common], s[:common], vt[:common]
    blocks_u, blocks_s, blocks_v = [], [], []
    for task in tasks:
        ut, st, vtt = np.linalg.svd(task - u_c @ u_c.T @ task, full_matrices=False)
        blocks_u.append(ut[:, :per_task]), blocks_s.append(st[:per_task]), blocks_v.append(vtt[:per_task])
    big_u = np.concatenate(blocks_u + [u_c], axis=1)
    big_v = np.concatenate(blocks_v + [vt_c], axis=0)
    sigma = np.concatenate(blocks_s + [s_c]).mean()
    pu, _, qu = np.linalg.svd(big_u, full_matrices=False)
    pv, _, qv = np.linalg.svd(big_v, full_matrices=False)
    return sigma * (pu @ qu) @ (pv @ qv)


@pytest.mark.parametrize("fraction", [0.8, 0.5, 0.0])
def test_iso_cts_matches_the_papers_definition(fraction):
    deltas = _random(5, (12, 2, 5), 3)  # a 1-D conv kernel, read as [12, 10]
    weights = (1.0, 0.5, 2.0)
    got = _merge("iso_cts", deltas, _ctx(3, weights), common_fraction=fraction)
    np.testing.assert_allclose(got.double().numpy().reshape(12, -1), ref_iso_cts(deltas, weights, fraction), atol=1e-4)


def test_iso_cts_with_an_all_common_subspace_is_iso_c():
    deltas = _random(6, (9, 7), 2)
    ctx = _ctx(2)
    torch.testing.assert_close(_merge("iso_cts", deltas, ctx, common_fraction=1.0), _merge("iso_c", deltas, ctx),
                               atol=1e-5, rtol=1e-4)
