"""RegMean and RegMean++: the closed form against the paper's, exactness cases, Gram checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _mergedata import saved_vectors

from chorus.encoders import load_encoder
from chorus.taskvec import TaskVector
from chorus.taskvec.gram import GramStatistics, write_gram
from chorus.taskvec.merge.errors import MergeError
from chorus.taskvec.merge.registry import TensorContext, get_method
from chorus.merging.recipe_run import open_vectors
from chorus.taskvec.merge.stream import plan_merge


def _ctx(grams, weights=None) -> TensorContext:
    k = len(grams)
    return TensorContext(name="w", weights=tuple(weights or [1.0] * k), vector_ids=tuple(f"v{i}" for i in range(k)),
                         gram=lambda i: None if grams[i] is None else grams[i].clone())


def _merge(method, deltas, ctx, **params):
    spec = get_method(method)
    return spec.function(deltas, spec.parse(params), ctx)


def _inputs(seed: int, rows: int, width: int) -> torch.Tensor:
    return torch.randn(rows, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def ref_regmean(base: np.ndarray, finetuned, grams, weights, alpha) -> np.ndarray:
    """W_m = (Σ w_i W_i G̃_i)(Σ w_i G̃_i)⁻¹ on the full weights, minus the base."""
    shrunk = [alpha * g + (1 - alpha) * np.diag(np.diag(g)) for g in grams]
    numerator = sum(w * W @ g for w, W, g in zip(weights, finetuned, shrunk))
    total = sum(w * g for w, g in zip(weights, shrunk))
    return numerator @ np.linalg.inv(total) - base


@pytest.mark.parametrize("alpha", [1.0, 0.9, 0.3])
def test_regmean_matches_the_papers_closed_form(alpha):
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(5, 3, 2, generator=gen)  # a conv kernel [out, in, k], read as [5, 6]
    deltas = [0.1 * torch.randn(5, 3, 2, generator=gen) for _ in range(3)]
    grams = [(x.T @ x) for x in (_inputs(i, 20, 6) for i in range(3))]
    weights = (1.0, 0.5, 2.0)
    got = _merge("regmean", deltas, _ctx(grams, weights), alpha=alpha)
    finetuned = [(base + d).double().reshape(5, 6).numpy() for d in deltas]
    expected = ref_regmean(base.double().reshape(5, 6).numpy(), finetuned, [g.numpy() for g in grams], weights, alpha)
    np.testing.assert_allclose(got.double().reshape(5, 6).numpy(), expected, atol=2e-6)


def test_regmean_with_identical_grams_is_the_weighted_mean():
    deltas = [torch.randn(4, 7, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    x = _inputs(5, 30, 7)
    weights = (1.0, 3.0, 0.5)
    got = _merge("regmean", deltas, _ctx([x.T @ x] * 3, weights))
    torch.testing.assert_close(got, sum(w * d for w, d in zip(weights, deltas)) / sum(weights), rtol=1e-5, atol=1e-6)


def test_regmean_recovers_each_task_on_inputs_disjoint_in_feature_space():
    a, b = torch.zeros(25, 8, dtype=torch.float64), torch.zeros(30, 8, dtype=torch.float64)
    a[:, :3] = _inputs(1, 25, 3)  # task A's inputs live in features 0-2
    b[:, 3:] = _inputs(2, 30, 5)  # task B's in features 3-7
    tau_a, tau_b = (torch.randn(6, 8, generator=torch.Generator().manual_seed(s)) for s in (3, 4))
    merged = _merge("regmean", [tau_a, tau_b], _ctx([a.T @ a, b.T @ b])).double()
    torch.testing.assert_close(a @ merged.T, a @ tau_a.double().T, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(b @ merged.T, b @ tau_b.double().T, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(a @ merged.T, a @ (tau_a + tau_b).double().T / 2)  # the mean does not


def test_features_no_data_reaches_take_the_mean_and_tensors_without_grams_too():
    x = torch.zeros(10, 4, dtype=torch.float64)
    x[:, :2] = _inputs(6, 10, 2)
    deltas = [torch.randn(3, 4, generator=torch.Generator().manual_seed(s)) for s in (7, 8)]
    got = _merge("regmean", deltas, _ctx([x.T @ x, 2 * x.T @ x]))
    torch.testing.assert_close(got[:, 2:], (deltas[0][:, 2:] + deltas[1][:, 2:]) / 2)
    biases = [torch.randn(3), torch.randn(3)]
    torch.testing.assert_close(_merge("regmean", biases, _ctx([None, None])), (biases[0] + biases[1]) / 2)
    with pytest.raises(MergeError, match="task vector 1 has no Gram"):
        _merge("regmean", deltas, _ctx([x.T @ x, None]))
    with pytest.raises(MergeError, match="positive weights"):
        _merge("regmean", deltas, _ctx([x.T @ x] * 2, (1.0, -1.0)))


def _stats(vector: TaskVector, seed: int) -> GramStatistics:
    grams = {}
    for index, name in enumerate(n for n in vector.keys() if len(vector.shape(n)) >= 2):
        width = int(np.prod(vector.shape(name)[1:]))
        rows = _inputs(100 * seed + index, width + 5, width)
        grams[name] = rows.T @ rows
    return GramStatistics(grams, {n: 1 for n in grams}, clips=3)


def test_merges_read_the_stored_grams_and_name_vectors_without_them(tmp_path):
    base = load_encoder("toy-cnn")
    paths = saved_vectors(tmp_path, base)
    for seed, path in enumerate(paths[:2]):
        write_gram(path, _stats(TaskVector.load(path), seed))
    vectors, _ = open_vectors(paths)
    with pytest.raises(MergeError, match=r"needs Gram statistics, which task vector 2 \(bugs\) lack"):
        plan_merge(vectors, "regmean")
    plan = plan_merge(vectors[:2], "regmean", {"alpha": 0.8})
    name = "blocks.1.0.weight"
    grams = [v.gram(name).numpy() for v in vectors[:2]]
    finetuned = [(base.state_dict()[name] + v.tensor(name)).double().reshape(32, -1).numpy() for v in vectors[:2]]
    expected = ref_regmean(base.state_dict()[name].double().reshape(32, -1).numpy(), finetuned, grams, (1, 1), 0.8)
    np.testing.assert_allclose(plan.direction(name).double().reshape(32, -1).numpy(), expected, atol=2e-6)
    with pytest.raises(MergeError, match="one merged encoder"):
        plan_merge(vectors[:2], "regmean_pp")


def test_regmean_pp_reads_grams_computed_on_one_merged_encoder(tmp_path):
    base = load_encoder("toy-cnn")
    paths = saved_vectors(tmp_path, base)[:2]
    merged_a, merged_b = "a" * 64, "b" * 64
    write_gram(paths[0], _stats(TaskVector.load(paths[0]), 0), computed_on=merged_a)
    write_gram(paths[1], _stats(TaskVector.load(paths[1]), 1), computed_on=merged_b)
    with pytest.raises(MergeError, match=r"one merged encoder.*task vector [01]"):
        plan_merge(open_vectors(paths)[0], "regmean_pp")
    write_gram(paths[1], _stats(TaskVector.load(paths[1]), 1), computed_on=merged_a)
    vectors, _ = open_vectors(paths)
    with pytest.raises(MergeError, match="own fine-tuned encoder"):
        plan_merge(vectors, "regmean")
    pp = plan_merge(vectors, "regmean_pp").direction("blocks.2.0.weight")
    ctx = _ctx([v.gram("blocks.2.0.weight") for v in vectors])
    torch.testing.assert_close(pp, _merge("regmean", [v.tensor("blocks.2.0.weight") for v in vectors], ctx))


def test_every_method_streams_through_the_driver_to_finite_weights(tmp_path):
    from chorus.taskvec.merge import method_names, write_merged_encoder
    from chorus.taskvec.merge.sources import SafetensorsFile, StateDictSource
    from safetensors.torch import load_file

    base = load_encoder("toy-cnn")
    paths = saved_vectors(tmp_path, base)
    for seed, path in enumerate(paths):
        write_gram(path, _stats(TaskVector.load(path), seed))
    vectors, _ = open_vectors(paths)
    source = StateDictSource(base.state_dict())
    for method in method_names():
        chosen = vectors[:2] if method == "slerp" else vectors
        if method == "regmean_pp":
            continue  # needs Grams computed on a merged encoder (tested above)
        out = tmp_path / f"{method}.safetensors"
        write_merged_encoder(plan_merge(chosen, method), source, out)
        merged = load_file(out)
        assert all(bool(torch.isfinite(t).all()) for t in merged.values() if t.is_floating_point()), method
        assert not torch.equal(merged["blocks.1.0.weight"], base.state_dict()["blocks.1.0.weight"]), method
    assert sorted(SafetensorsFile(out).keys()) == sorted(base.state_dict())
