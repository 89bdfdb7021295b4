"""Task vectors: fingerprint, from_models/apply exactness, arithmetic, storage, refusals."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
import torch

from chorus.encoders import load_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry
from chorus.taskvec import (BaseMismatchError, IncompatibleVectorsError, TaskVector, TaskVectorError,
                            TaskVectorFileError, apply, base_fingerprint, compose_model)
from chorus.taskvec.stats import compare, tensor_stats
from chorus.tensorfile import IntegrityError, NotSafetensorsError, TensorFileError

SETTINGS = ClassifierSettings(layer="conv3", pooling="mean", clip_seconds=0.5, task="multiclass")


def perturbed(base, seed: int, scale: float = 0.01):
    """A 'fine-tuned' copy of ``base``: every parameter moved by seeded noise."""
    tuned = copy.deepcopy(base)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=gen))
    return tuned


def classifier(encoder, labels, seed=0, group="g"):
    torch.manual_seed(seed)
    return ClassifierModel(encoder, [HeadEntry(group=group, labels=labels)], SETTINGS).eval()


@pytest.fixture(scope="module")
def base():
    return load_encoder("toy-cnn")


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fingerprint_is_order_independent_and_sensitive_to_one_bit(base):
    state = base.state_dict()
    reordered = dict(reversed(list(state.items())))
    assert base_fingerprint(reordered) == base_fingerprint(state)
    flipped = {k: v.clone() for k, v in state.items()}
    flipped["blocks.0.0.weight"].view(-1).view(torch.int32)[7] ^= 1
    assert base_fingerprint(flipped) != base_fingerprint(state)
    renamed = {("x." + k if k.endswith("bias") else k): v for k, v in state.items()}
    assert base_fingerprint(renamed) != base_fingerprint(state)


def test_apply_reproduces_the_finetuned_encoder_bit_exactly(base, tmp_path):
    tuned = perturbed(base, seed=1)
    # weights that shrink by orders of magnitude are where float32 base + delta misses
    with torch.no_grad():
        tuned.blocks[0][0].weight[0, 0, :50] = base.blocks[0][0].weight[0, 0, :50] * 1e-6
    vector = TaskVector.from_models(base, tuned)
    assert vector.manifest.tensors["blocks.0.0.weight"].residuals > 0
    delta = vector.tensor("blocks.0.0.weight")
    assert torch.equal(delta, tuned.blocks[0][0].weight - base.blocks[0][0].weight)
    assert same_weights(apply(base, [vector]), tuned)
    vector.save(tmp_path / "tv")
    loaded = TaskVector.load(tmp_path / "tv")
    rebuilt = apply(base, [loaded])
    assert same_weights(rebuilt, tuned)
    waves, lengths = torch.randn(3, 8000), torch.tensor([8000, 6000, 4000])
    model_a, model_b = classifier(tuned, ["a", "b"]), classifier(rebuilt, ["a", "b"])
    assert torch.equal(model_a.predict_scores(waves, lengths), model_b.predict_scores(waves, lengths))


def test_keys_are_parameters_and_integer_buffers_never_appear(base):
    vector = TaskVector.from_models(base, perturbed(base, seed=2))
    assert set(vector.keys()) == {name for name, _ in base.named_parameters()}
    assert not any("num_batches_tracked" in name for name in vector.keys())


def test_arithmetic_matches_elementwise_operations(base):
    a = TaskVector.from_models(base, perturbed(base, seed=3))
    b = TaskVector.from_models(base, perturbed(base, seed=4))
    name = "blocks.1.0.weight"
    ta, tb = a.tensor(name), b.tensor(name)
    assert torch.allclose((a + b).tensor(name), ta + tb)
    assert torch.allclose((0.5 * a).tensor(name), 0.5 * ta)
    assert torch.equal((-a).tensor(name), -ta)
    assert torch.equal((a - a).tensor(name), torch.zeros_like(ta))
    assert torch.allclose(sum([a, b]).tensor(name), ta + tb)
    merged = apply(base, [a, b], [0.3, 0.7])
    expected = base.blocks[1][0].weight + 0.3 * ta + 0.7 * tb
    assert torch.allclose(merged.blocks[1][0].weight, expected, atol=1e-6)
    assert same_weights(apply(base, [a + b]), apply(base, [a, b]))


def test_vectors_of_different_bases_refuse_to_combine(base):
    other = load_encoder("toy-cnn", seed=1)
    a = TaskVector.from_models(base, perturbed(base, seed=5))
    b = TaskVector.from_models(other, perturbed(other, seed=5))
    with pytest.raises(BaseMismatchError):
        a + b
    with pytest.raises(BaseMismatchError) as caught:
        apply(other, [a])
    message = str(caught.value)
    assert a.fingerprint in message and base_fingerprint(other.state_dict()) in message


def test_models_of_different_architectures_are_incompatible(base):
    from chorus.encoders import build_encoder

    wide = build_encoder({"family": "toy-cnn", "channels": [16, 32, 48]})
    with pytest.raises(IncompatibleVectorsError, match="blocks.2.0.weight"):
        TaskVector.from_models(base, wide)
    with pytest.raises(TaskVectorError):
        TaskVector.from_models(base, perturbed(base, seed=6)) * float("nan")


def test_sparse_and_low_precision_storage(base, tmp_path):
    vector = TaskVector.from_models(base, perturbed(base, seed=7))
    vector.save(tmp_path / "sparse", density=0.1)
    vector.save(tmp_path / "bf16", dtype="bfloat16")
    sparse, half = TaskVector.load(tmp_path / "sparse"), TaskVector.load(tmp_path / "bf16")
    name = "blocks.0.0.weight"
    full, kept = vector.tensor(name), sparse.tensor(name)
    count = int((kept != 0).sum())
    assert count == 640  # ceil(10 % of 6400)
    assert torch.equal(kept[kept != 0], full[kept != 0])
    assert kept.abs().max() == full.abs().max()
    assert full[kept == 0].abs().max() <= full[kept != 0].abs().min()
    assert sparse.manifest.tensors[name].residuals == 0
    assert torch.equal(half.tensor(name), full.to(torch.bfloat16).float())
    vector.save(tmp_path / "full")
    size = {kind: (tmp_path / kind / "deltas.safetensors").stat().st_size for kind in ("full", "bf16", "sparse")}
    assert size["bf16"] < 0.55 * size["full"] and size["sparse"] < 0.35 * size["full"]


def test_saving_is_deterministic(base, tmp_path):
    tuned = perturbed(base, seed=8)
    for index in range(2):
        TaskVector.from_models(base, tuned, group="g").save(tmp_path / f"v{index}")
    first, second = (json.loads((tmp_path / f"v{i}" / "taskvector.json").read_text())["files"] for i in range(2))
    assert first == second


def test_bn_statistics_merge_as_a_weighted_mean(base):
    def with_stats(seed):
        tuned = perturbed(base, seed=seed)
        tuned.train()
        with torch.no_grad():
            tuned(torch.randn(4, 4000) * (seed % 5 + 1), torch.full((4,), 4000))
        return tuned.eval()

    a = TaskVector.from_models(base, with_stats(10))
    b = TaskVector.from_models(base, with_stats(11))
    name = "buffers.blocks.0.1.running_var"
    assert name in a.keys() and not any(k.endswith("num_batches_tracked") for k in a.keys())
    merged = apply(base, [a, b], [2.0, 1.0])
    expected = base.blocks[0][1].running_var + (2 * a.tensor(name) + b.tensor(name)) / 3
    assert torch.allclose(merged.blocks[0][1].running_var, expected, atol=1e-6)
    assert torch.allclose((3 * a).tensor(name), a.tensor(name))  # scaling leaves statistics alone
    assert torch.equal(merged.blocks[0][1].num_batches_tracked, base.blocks[0][1].num_batches_tracked)
    assert torch.allclose((a + b).tensor(name), apply(base, [a, b]).blocks[0][1].running_var
                          - base.blocks[0][1].running_var, atol=1e-6)


def test_heads_travel_with_the_vector_and_compose(base, tmp_path):
    tuned_a, tuned_b = perturbed(base, seed=12), perturbed(base, seed=13)
    model_a = classifier(tuned_a, ["a1", "a2"], seed=1, group="A")
    model_b = classifier(tuned_b, ["b1"], seed=2, group="B")
    vec_a = TaskVector.from_classifier(base, model_a)
    vec_b = TaskVector.from_classifier(base, model_b)
    vec_a.save(tmp_path / "a", creator="lab A", license="cc-by-4.0")
    loaded = TaskVector.load(tmp_path / "a")
    assert loaded.manifest.labels == ["a1", "a2"] and loaded.manifest.group == "A"
    assert loaded.manifest.creator == "lab A"
    solo = compose_model(base, [loaded])
    waves, lengths = torch.randn(2, 6000), torch.tensor([6000, 5000])
    assert torch.equal(solo(waves, lengths), model_a(waves, lengths))
    both = compose_model(base, [loaded, vec_b], [0.5, 0.5])
    assert both.labels == ["a1", "a2", "b1"]
    assert torch.equal(both.heads[1].weight, model_b.heads[0].weight)
    saved = (0.5 * loaded + 0.5 * vec_b).save(tmp_path / "ab")
    combined = TaskVector.load(saved)
    assert combined.manifest.group == "A+B" and combined.manifest.derivation == "0.5*A + 0.5*B"
    assert len(combined.head_tensors()) == 2


def test_compare_reports_cosine_and_labels(base):
    tuned = perturbed(base, seed=14)
    a = TaskVector.from_classifier(base, classifier(tuned, ["x", "y"]))
    result = compare(a, 2 * a)
    assert result.cosine == pytest.approx(1.0)
    assert result.norm_b == pytest.approx(2 * result.norm_a)
    assert result.labels_shared == ["x", "y"]
    stats = {row.name: row for row in tensor_stats(a)}
    assert stats["blocks.0.0.weight"].norm == pytest.approx(float(a.tensor("blocks.0.0.weight").norm()), rel=1e-6)


# ------------------------------------------------------------------ refusals
@pytest.fixture
def saved_vector(base, tmp_path):
    model = classifier(perturbed(base, seed=15), ["a", "b"])
    return TaskVector.from_classifier(base, model).save(tmp_path / "tv")


def test_altered_delta_file_fails_its_integrity_check(saved_vector):
    path = saved_vector / "deltas.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        TaskVector.load(saved_vector)


def test_truncated_delta_file_is_refused(saved_vector):
    path = saved_vector / "deltas.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(TensorFileError, match="truncated"):
        TaskVector.load(saved_vector)


def test_pickle_renamed_to_safetensors_is_refused(saved_vector):
    path = saved_vector / "deltas.safetensors"
    path.write_bytes(pickle.dumps({"blocks.0.0.weight": [1.0, 2.0]}))
    with pytest.raises(NotSafetensorsError, match="pickle"):
        TaskVector.load(saved_vector)
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(NotSafetensorsError, match="zip"):
        TaskVector.load(saved_vector)


def test_manifest_problems_are_typed_and_name_the_file(saved_vector):
    manifest_path = saved_vector / "taskvector.json"
    data = json.loads(manifest_path.read_text())
    broken = {**data, "format_version": 99, "sample_rate": -1}
    manifest_path.write_text(json.dumps(broken))
    with pytest.raises(TaskVectorFileError) as caught:
        TaskVector.load(saved_vector)
    assert str(manifest_path) in str(caught.value)
    assert "format_version" in str(caught.value) and "sample_rate" in str(caught.value)
    manifest_path.write_text("{not json")
    with pytest.raises(TaskVectorFileError, match="not valid JSON"):
        TaskVector.load(saved_vector)


def test_tensors_disagreeing_with_the_manifest_are_refused(saved_vector):
    manifest_path = saved_vector / "taskvector.json"
    data = json.loads(manifest_path.read_text())
    data["tensors"]["blocks.0.0.bias"]["shape"] = [17]
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(TaskVectorFileError, match="wrong dtype/shape: blocks.0.0.bias"):
        TaskVector.load(saved_vector)
