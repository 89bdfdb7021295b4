"""Class statistics in the task vector and the composed LDA head: equal to the LDA head
fitted on every party's clips pooled (reference written with numpy), shared labels pooled,
bad files refused, the encoder protocol of `chorus merge --calibration lda`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _mergedata import calibration, toy_vector
from _toydata import tone_manifest
from chorus.encoders import load_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry
from chorus.taskvec import TaskVector
from chorus.taskvec.classstats import CLASSSTATS_FILE, ClassStatistics, stats_tensors, write_class_stats
from chorus.taskvec.errors import TaskVectorFileError
from chorus.taskvec.fingerprint import base_fingerprint
from chorus.taskvec.merge import compose_heads
from chorus.taskvec.merge.errors import StatisticsError
from chorus.taskvec.merge import load_recipe
from chorus.taskvec.merge.stats_head import DEFAULT_SHRINKAGE, encoder_warnings, lda_head, pool_statistics
from chorus.tensorfile import IntegrityError, save_tensors

D = 6
PARTIES = {"birds": ["birds/a", "birds/b", "shared"], "frogs": ["frogs/a", "shared"], "bugs": ["bugs/a", "bugs/b"]}
FP = "0" * 64


def party_data(seed: int = 0):
    """Per party: features ``[n, D]`` (class-dependent means, one shared covariance) and labels."""
    rng = np.random.default_rng(seed)
    centres = {label: rng.normal(0, 2, D) for labels in PARTIES.values() for label in labels}
    mix = rng.normal(size=(D, D))
    data = {}
    for p, (party, labels) in enumerate(PARTIES.items()):
        rows, names = [], []
        for label in labels:
            n = int(rng.integers(5, 12))
            shift = 0.7 * p if label == "shared" else 0.0  # the shared label differs between parties
            rows.append(centres[label] + shift + rng.normal(size=(n, D)) @ mix)
            names += [label] * n
        data[party] = (np.concatenate(rows), names)
    return data


def numpy_lda(x: np.ndarray, names: list[str], labels: list[str], gamma: float):
    """Reference LDA on pooled clips: class means, within-class covariance / (N − C), ridge
    γ·tr/D·I, W = μᵀΣ⁻¹, b = −½ μᵀΣ⁻¹μ + log π."""
    y = np.array([labels.index(n) for n in names])
    means = np.stack([x[y == c].mean(axis=0) for c in range(len(labels))])
    centred = x - means[y]
    cov = centred.T @ centred / (len(x) - len(labels))
    cov = cov + gamma * np.trace(cov) / len(cov) * np.eye(len(cov))
    inverse = np.linalg.inv(cov)
    weight = means @ inverse
    bias = -0.5 * np.einsum("cd,de,ce->c", means, inverse, means) + np.log(np.bincount(y) / len(y))
    return weight, bias


def party_stats(data) -> list[ClassStatistics]:
    stats = []
    for party, labels in PARTIES.items():
        x, names = data[party]
        stats.append(ClassStatistics.from_features(torch.from_numpy(x), [labels.index(n) for n in names], labels,
                                                   "conv3", "mean", FP))
    return stats


def union(data):
    x = np.concatenate([data[p][0] for p in PARTIES])
    names = [n for p in PARTIES for n in data[p][1]]
    return x, names, list(dict.fromkeys(names))


@pytest.mark.parametrize("gamma", [0.0, 0.1])
def test_composed_lda_head_equals_the_lda_head_of_the_pooled_clips(gamma):
    data = party_data()
    x, names, labels = union(data)
    pooled = pool_statistics(party_stats(data))
    assert pooled.labels == labels
    weight, bias = lda_head(pooled, gamma)
    ref_weight, ref_bias = numpy_lda(x, names, labels, gamma)
    probe = np.random.default_rng(9).normal(0, 3, (50, D))
    logits = probe @ weight.numpy().T + bias.numpy()
    reference = probe @ ref_weight.T + ref_bias
    assert np.abs(logits - reference).max() <= 1e-6 * np.abs(reference).max()
    assert (logits.argmax(1) == reference.argmax(1)).all()


def test_a_label_shared_by_two_parties_pools_counts_means_and_scatter():
    data = party_data(1)
    x, names, labels = union(data)
    pooled = pool_statistics(party_stats(data))
    y = np.array([labels.index(n) for n in names])
    shared = labels.index("shared")
    assert float(pooled.counts[shared]) == (y == shared).sum() == sum(n == "shared" for n in data["birds"][1]) + \
        sum(n == "shared" for n in data["frogs"][1])
    np.testing.assert_allclose(pooled.means[shared].numpy(), x[y == shared].mean(axis=0), rtol=1e-12, atol=1e-12)
    means = np.stack([x[y == c].mean(axis=0) for c in range(len(labels))])
    scatter = (x - means[y]).T @ (x - means[y])
    np.testing.assert_allclose(pooled.scatter.numpy(), scatter, rtol=1e-10, atol=1e-10)
    # simply summing the parties' scatters misses the between-part term of the shared label
    naive = sum(s.scatter for s in party_stats(data)).numpy()
    assert np.abs(naive - scatter).max() > 1e-3 * np.abs(scatter).max()


# ------------------------------------------------------------------- the artifact
@pytest.fixture()
def saved(tmp_path):
    """Three toy-cnn vectors (zero deltas, random heads) carrying class statistics of random
    32-wide features; returns (paths, per-party data)."""
    base = load_encoder("toy-cnn")
    fingerprint = base_fingerprint(base.state_dict())
    rng = np.random.default_rng(3)
    paths, data = [], {}
    for seed, (party, labels) in enumerate(PARTIES.items()):
        vector = toy_vector(base, party, labels, seed)
        zero = TaskVector.from_models(base, base, group=party, classifier=vector.manifest.classifier,
                                      heads=vector.manifest.heads, head_tensors=vector.head_tensors())
        path = zero.save(tmp_path / party)
        names = [label for label in labels for _ in range(6)]
        x = rng.normal(size=(len(names), 32)) + np.array([[labels.index(n) * 0.5] for n in names])
        write_class_stats(path, ClassStatistics.from_features(torch.from_numpy(x), [labels.index(n) for n in names],
                                                              labels, "conv3", "mean", fingerprint))
        paths.append(path)
        data[party] = (x, names)
    return paths, data


def test_statistics_round_trip_and_the_composed_model_head_matches_the_reference(saved, tmp_path):
    paths, data = saved
    vectors = [TaskVector.load(p) for p in paths]
    assert all(v.has_class_stats for v in vectors)
    stats = vectors[1].class_stats()
    assert stats.labels == PARTIES["frogs"] and stats.counts.tolist() == [6, 6] and stats.scatter.dtype == torch.float64
    heads = compose_heads(vectors, "lda", shrinkage=0.1)
    assert heads.calibration == "lda" and heads.shared == {"shared": ["birds", "frogs"]}
    x = np.concatenate([data[p][0] for p in PARTIES])
    names = [n for p in PARTIES for n in data[p][1]]
    ref_weight, ref_bias = numpy_lda(x, names, heads.labels, 0.1)
    reference = x @ ref_weight.T + ref_bias
    logits = heads.logits(torch.from_numpy(x).float()).double().numpy()
    assert np.abs(logits - reference).max() <= 1e-4 * np.abs(reference).max()  # float32 heads
    # a save (convert) of one vector carries its statistics along
    copy = TaskVector.load(paths[0]).save(tmp_path / "copy")
    assert TaskVector.load(copy).class_stats().counts.tolist() == [6, 6, 6]


def _rewrite(path, tensors):
    """Replace the statistics file and its sha256 in the manifest (a consistent forgery)."""
    digest = save_tensors(path / CLASSSTATS_FILE, tensors)
    manifest = json.loads((path / "taskvector.json").read_text())
    manifest["files"][CLASSSTATS_FILE] = digest
    (path / "taskvector.json").write_text(json.dumps(manifest))


def test_bad_statistics_are_refused(saved):
    paths, _ = saved
    path = paths[1]
    good = stats_tensors(TaskVector.load(path).class_stats())
    with open(path / CLASSSTATS_FILE, "r+b") as handle:  # tampered bytes: sha256 differs
        handle.seek(-3, 2)
        handle.write(b"\x01\x02\x03")
    with pytest.raises(IntegrityError):
        TaskVector.load(path)
    _rewrite(path, {**good, "means": torch.zeros(2, 31, dtype=torch.float64)})
    with pytest.raises(TaskVectorFileError, match="means"):
        TaskVector.load(path)
    _rewrite(path, {**good, "counts": torch.tensor([6, 6, 6])})
    with pytest.raises(TaskVectorFileError, match="counts"):
        TaskVector.load(path)
    nan = good["means"].clone()
    nan[0, 3] = float("nan")
    _rewrite(path, {**good, "means": nan})
    with pytest.raises(TaskVectorFileError, match="non-finite"):
        TaskVector.load(path).class_stats()
    skew = good["scatter"].clone()
    skew[0, 1] += 1.0
    _rewrite(path, {**good, "scatter": skew})
    with pytest.raises(TaskVectorFileError, match="not symmetric"):
        TaskVector.load(path).class_stats()
    _rewrite(path, {**good, "counts": torch.tensor([6, 0])})
    with pytest.raises(TaskVectorFileError, match="positive"):
        TaskVector.load(path).class_stats()
    manifest = json.loads((path / "taskvector.json").read_text())
    manifest["classstats"]["labels"] = ["frogs/a", "other"]
    (path / "taskvector.json").write_text(json.dumps(manifest))
    with pytest.raises(TaskVectorFileError, match="labels"):
        TaskVector.load(path)


def test_lda_names_the_vectors_without_statistics_and_of_foreign_encoders(saved, tmp_path):
    paths, _ = saved
    base = load_encoder("toy-cnn")
    plain = toy_vector(base, "plain", ["plain/a", "plain/b"], 7).save(tmp_path / "plain")
    vectors = [TaskVector.load(p) for p in (*paths, plain)]
    with pytest.raises(StatisticsError, match=r"task vector 3 \(plain\) carry none"):
        compose_heads(vectors, "lda")
    vectors = vectors[:3]
    base_fp = vectors[0].manifest.classstats.computed_on
    assert encoder_warnings(vectors, base_fp, base_fp) == []
    warning = encoder_warnings(vectors, base_fp, "f" * 64)
    assert len(warning) == 1 and "describe the base encoder" in warning[0]
    with pytest.raises(StatisticsError, match="neither the base"):
        encoder_warnings(vectors, "e" * 64, "f" * 64)


def test_cli_stats_and_merge_with_lda_calibration(run_cli, tmp_path):
    """`chorus tv stats` on the base encoder; `chorus merge --calibration lda`: exact (no
    warning) when the built encoder is the base, a warning in merge.json when it is not,
    refused for statistics of another encoder (and nothing written)."""
    tone_manifest(tmp_path / "data", seconds=0.3)
    manifest = tmp_path / "data" / "manifest.csv"
    base = load_encoder("toy-cnn")
    paths = []
    for group, labels in {"g1": ["g1/low", "g1/high"], "g2": ["g2/mid", "g2/buzz"]}.items():
        model = ClassifierModel(load_encoder("toy-cnn"), [HeadEntry(group=group, labels=labels)],
                                ClassifierSettings(layer="conv3"))
        paths.append(TaskVector.from_classifier(base, model, group=group).save(tmp_path / group))
        result = run_cli("tv", "stats", paths[-1], "--data", manifest)
        assert result.exit_code == 0, result.output
        assert "2 classes, 8 clips" in result.output
    vectors = sum((["--vector", p] for p in paths), [])
    result = run_cli("merge", "--method", "task_arithmetic", *vectors, "--calibration", "lda", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "m" / "merge.json").read_text())
    assert record["calibration"] == "lda" and record["warnings"] == []
    assert record["class_statistics"]["encoder_fingerprint"] == base_fingerprint(base.state_dict())
    saved_recipe = load_recipe(tmp_path / "m" / "recipe.yaml")
    assert saved_recipe.calibration == "lda" and saved_recipe.shrinkage == DEFAULT_SHRINKAGE
    # the written model's heads are the composed LDA heads of the stored statistics
    model = ClassifierModel.from_pretrained(tmp_path / "m")
    assert model.labels == ["g1/low", "g1/high", "g2/mid", "g2/buzz"]
    expected = compose_heads([TaskVector.load(p) for p in paths], "lda")
    for head, (weight, bias) in zip(model.heads, expected.tensors):
        assert torch.equal(head.weight.detach(), weight) and torch.equal(head.bias.detach(), bias)

    tuned = toy_vector(base, "g3", ["g3/a"], 1)  # parameter deltas: the merged encoder is not the base
    tuned_model = ClassifierModel(load_encoder("toy-cnn"), [HeadEntry(group="g1", labels=["g1/low", "g1/high"])],
                                  ClassifierSettings(layer="conv3"))
    from chorus.taskvec import apply

    tuned_model.encoder = apply(load_encoder("toy-cnn"), [tuned])
    moved = TaskVector.from_classifier(base, tuned_model, group="g1").save(tmp_path / "moved")
    assert run_cli("tv", "stats", moved, "--data", manifest).exit_code == 0
    result = run_cli("merge", "--method", "task_arithmetic", "--vector", moved, "--vector", paths[1],
                     "--calibration", "lda", "--out", tmp_path / "m2")
    assert result.exit_code == 0, result.output
    assert "describe the base encoder" in result.output
    record = json.loads((tmp_path / "m2" / "merge.json").read_text())
    assert any("describe the base encoder" in w for w in record["warnings"])
    # statistics recomputed on the merged model: no warning, same encoder bytes
    for path in (moved, paths[1]):
        assert run_cli("tv", "stats", path, "--data", manifest, "--on", tmp_path / "m2").exit_code == 0
    result = run_cli("merge", "--method", "task_arithmetic", "--vector", moved, "--vector", paths[1],
                     "--calibration", "lda", "--out", tmp_path / "m3")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "m3" / "merge.json").read_text())
    assert not any("class statistics" in w for w in record["warnings"])  # (a norm-mismatch warning stays)
    assert record["class_statistics"]["computed_on"] == [record["class_statistics"]["encoder_fingerprint"]] * 2
    # statistics of that merged model used for a different merge (weights change the encoder): refused
    result = run_cli("merge", "--method", "task_arithmetic", "--vector", moved, "--vector", paths[1],
                     "--weight", "0.5", "--weight", "1", "--calibration", "lda", "--out", tmp_path / "m4")
    assert result.exit_code == 2 and "neither the base" in result.output
    assert not (tmp_path / "m4" / "config.json").exists()


def test_a_sweep_with_auto_calibration_tries_the_statistics_head(run_cli, tmp_path):
    tone_manifest(tmp_path / "data", seconds=0.3)
    manifest = tmp_path / "data" / "manifest.csv"
    base = load_encoder("toy-cnn")
    paths = []
    for seed, (group, labels) in enumerate({"g1": ["g1/low", "g1/high"], "g2": ["g2/mid", "g2/buzz"]}.items()):
        head = HeadEntry(group=group, labels=labels, calibration=calibration(labels, seed))
        model = ClassifierModel(load_encoder("toy-cnn"), [head], ClassifierSettings(layer="conv3"))
        paths.append(TaskVector.from_classifier(base, model, group=group).save(tmp_path / group))
        assert run_cli("tv", "stats", paths[-1], "--data", manifest).exit_code == 0
    result = run_cli("merge", "--method", "mean", "--vector", paths[0], "--vector", paths[1], "--sweep-data", manifest,
                     "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "m" / "merge.json").read_text())["sweep"]["rows"]
    lda = [row for row in rows if row["calibration"] == "lda"]
    assert lda and all(row["gate"] == 0 for row in lda)
    assert {row["calibration"] for row in rows} == {"zscore", "temperature", "none", "lda"}
    saved_recipe = load_recipe(tmp_path / "m" / "recipe.yaml")  # whichever won, the saved recipe is valid
    assert (saved_recipe.shrinkage is not None) == (saved_recipe.calibration == "lda")
