"""The streaming merge driver on saved toy-cnn task vectors: equivalences, buffers, refusals,
the streamed safetensors writer and fingerprint."""

from __future__ import annotations

import pytest
import torch
from _mergedata import saved_vectors, toy_vector
from safetensors.torch import load_file

from chorus.encoders import load_encoder
from chorus.fileio import sha256_file
from chorus.taskvec import BaseMismatchError, IncompatibleVectorsError, TaskVector, apply, base_fingerprint
from chorus.taskvec.merge.core import kept_count
from chorus.taskvec.merge.errors import MergeError
from chorus.taskvec.merge.sources import FingerprintHasher, SafetensorsFile, StateDictSource
from chorus.taskvec.merge.stream import apply_directions, plan_merge, write_merged_encoder
from chorus.taskvec.merge.writer import StreamingSafetensorsWriter


@pytest.fixture(scope="module")
def base():
    return load_encoder("toy-cnn")


@pytest.fixture(scope="module")
def vectors(base, tmp_path_factory):
    return [TaskVector.load(path) for path in saved_vectors(tmp_path_factory.mktemp("tv"), base, buffers=True)]


def merged(tmp_path, base, vectors, method, lam=None, name="out", **kwargs):
    path = tmp_path / f"{name}.safetensors"
    write_merged_encoder(plan_merge(vectors, method, **kwargs), StateDictSource(base.state_dict()), path, lam)
    return load_file(str(path)), path


def test_mean_equals_task_arithmetic_with_lambda_one_over_k(tmp_path, base, vectors):
    mean, _ = merged(tmp_path, base, vectors, "mean", name="mean")
    ta, _ = merged(tmp_path, base, vectors, "task_arithmetic", lam=1 / len(vectors), name="ta")
    assert mean.keys() == ta.keys() == base.state_dict().keys()
    for name in mean:
        torch.testing.assert_close(mean[name], ta[name], rtol=1e-6, atol=1e-7)


def test_streamed_file_equals_the_in_memory_merge_and_task_arithmetic_equals_apply(tmp_path, base, vectors):
    plan = plan_merge(vectors, "task_arithmetic", weights=[1.0, -0.5, 2.0])
    streamed, _ = merged(tmp_path, base, vectors, "task_arithmetic", lam=0.3, weights=[1.0, -0.5, 2.0])
    in_memory = apply_directions(base.state_dict(), plan.directions(), 0.3)
    assert all(torch.equal(streamed[name], in_memory[name]) for name in streamed)
    reference = apply(base, vectors, [0.3, -0.15, 0.6]).state_dict()
    parameters = dict(base.named_parameters())
    for name in parameters:
        torch.testing.assert_close(streamed[name], reference[name], rtol=1e-5, atol=1e-6)


def test_buffers_take_the_convex_mean_of_their_deltas_whatever_the_method_and_lambda(tmp_path, base, vectors):
    state = base.state_dict()
    name = "blocks.0.1.running_var"
    weights = [1.0, 3.0, 0.0]
    expected = state[name] + sum(w * v.tensor("buffers." + name) for w, v in zip(weights, vectors)) / 4.0
    for method, lam in (("ties", 1.0), ("task_arithmetic", 0.1)):
        out, _ = merged(tmp_path, base, vectors, method, lam=lam, name=method, weights=weights)
        torch.testing.assert_close(out[name], expected)
        assert torch.equal(out["blocks.0.1.num_batches_tracked"], state["blocks.0.1.num_batches_tracked"])


def test_dare_merges_are_reproducible_and_global_ties_reads_thresholds_first(tmp_path, base, vectors):
    _, first = merged(tmp_path, base, vectors, "dare", name="d1", seed=3, params={"density": 0.5})
    _, again = merged(tmp_path, base, vectors, "dare", name="d2", seed=3, params={"density": 0.5})
    _, other = merged(tmp_path, base, vectors, "dare", name="d3", seed=4, params={"density": 0.5})
    assert sha256_file(first) == sha256_file(again) != sha256_file(other)
    plan = plan_merge(vectors, "ties", params={"density": 0.1, "scope": "global"})
    total = sum(t.numel() for t in base.parameters())
    for vector, bounds in zip(vectors, plan.bounds):
        threshold = bounds["kept"]
        whole = torch.cat([vector.tensor(name).reshape(-1) for name in plan.parameters]).abs()
        assert int((whole >= threshold).sum()) == kept_count(total, 0.1)


def test_a_vector_from_another_base_is_refused_naming_both_fingerprints(tmp_path, base, vectors):
    other_base = load_encoder("toy-cnn", pretrained=False, seed=5)
    stranger = toy_vector(other_base, "owls", ["owls/a"], seed=9)
    with pytest.raises(BaseMismatchError) as caught:
        plan_merge([vectors[0], stranger], "mean")
    assert vectors[0].fingerprint in str(caught.value) and stranger.fingerprint in str(caught.value)
    assert "task vector 1 (owls)" in str(caught.value)
    out = tmp_path / "wrong-base.safetensors"
    with pytest.raises(BaseMismatchError) as caught:
        write_merged_encoder(plan_merge(vectors, "mean"), StateDictSource(other_base.state_dict()), out)
    assert base_fingerprint(other_base.state_dict()) in str(caught.value)
    assert not out.exists() and not list(tmp_path.glob(".wrong-base*"))


def test_vectors_with_other_tensors_are_refused(base, vectors):
    # same base fingerprint, but a vector that lacks a tensor
    partial = toy_vector(base, "partial", ["p"], seed=4)
    del partial.manifest.tensors["blocks.2.0.bias"]
    with pytest.raises(IncompatibleVectorsError, match=r"task vector 1 \(partial\) does not match .*missing: blocks.2.0.bias"):
        plan_merge([vectors[0], partial], "mean")
    with pytest.raises(MergeError, match="weights"):
        plan_merge(vectors, "mean", weights=[1.0])


def test_streaming_writer_round_trips_is_deterministic_and_leaves_nothing_on_failure(tmp_path):
    tensors = {"b": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a": torch.tensor([1, 2], dtype=torch.int64),
               "c": torch.zeros(0), "d": torch.ones(3, dtype=torch.bfloat16)}
    entries = [(name, t.dtype, t.shape) for name, t in tensors.items()]
    digests = []
    for attempt in range(2):
        path = tmp_path / f"out{attempt}.safetensors"
        with StreamingSafetensorsWriter(path, entries) as writer:
            for name, tensor in tensors.items():
                writer.write(name, tensor)
            digests.append(writer.commit())
        assert digests[-1] == sha256_file(path)
        loaded = load_file(str(path))
        assert all(torch.equal(loaded[name], tensors[name]) for name in tensors)
        assert SafetensorsFile(path).info("b") == (torch.float32, (2, 3))
    assert digests[0] == digests[1]
    with pytest.raises(MergeError, match="expected"):
        with StreamingSafetensorsWriter(tmp_path / "bad.safetensors", entries) as writer:
            writer.write("a", tensors["a"])
    with pytest.raises(MergeError, match="never written"):
        with StreamingSafetensorsWriter(tmp_path / "short.safetensors", entries) as writer:
            writer.write("b", tensors["b"])
            writer.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out0.safetensors", "out1.safetensors"]


def test_streamed_fingerprint_equals_base_fingerprint(base):
    hasher = FingerprintHasher()
    for name, tensor in sorted(base.state_dict().items()):
        hasher.update(name, tensor)
    assert hasher.hexdigest() == base_fingerprint(base.state_dict())


def test_stored_deltas_read_exactly_what_the_task_vector_reads(base, tmp_path):
    from chorus.taskvec.merge.sources import StoredDeltas

    vector = toy_vector(base, "birds", ["a", "b"], seed=3)
    for kind, options in (("dense", {}), ("bf16", {"dtype": "bfloat16"}), ("sparse", {"density": 0.3})):
        loaded = TaskVector.load(vector.save(tmp_path / kind, **options))
        stored = StoredDeltas(loaded, tmp_path / kind)
        assert stored.heads == loaded.heads and stored.fingerprint == loaded.fingerprint
        for name in loaded.keys():
            assert torch.equal(stored.tensor(name), loaded.tensor(name)), (kind, name)


def test_file_tensors_are_private_copies_in_effect_and_a_cut_file_is_an_error(tmp_path):
    from safetensors.torch import save_file

    from chorus.tensorfile import TensorFileError

    path = tmp_path / "t.safetensors"
    save_file({"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(5000, dtype=torch.float32)},
              str(path))
    source = SafetensorsFile(path)
    a = source.tensor("a")
    a.mul_(10)  # an in-place change stays in this process
    assert torch.equal(SafetensorsFile(path).tensor("a"), torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert torch.equal(load_file(str(path))["a"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    with open(path, "r+b") as handle:  # cut after the header was read
        handle.truncate(path.stat().st_size - 4 * 1000)
    with pytest.raises(TensorFileError, match="ends before"):
        source.tensor("b")
