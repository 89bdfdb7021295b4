"""``chorus distill`` end to end on tiny random teachers (a transformer and a CNN) and a tiny student."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from chorus.distill import DistillConfig, DistillError, compute_targets, distill, distill_to_directory, \
    load_student_init
from chorus.distill.session import INIT_FILE, RECORD_FILE, STUDENT_FILE, VECTOR_DIR
from chorus.encoders import EncoderLoadError, EncoderNotFound, load_encoder
from chorus.errors import ChorusError
from chorus.taskvec import TaskVector, apply, base_fingerprint
from chorus.tensorfile import load_tensors

from _toydata import tone_manifest

TEACHERS = ["hubert-tiny", "crepe-micro"]
CONFIG = DistillConfig(epochs=3, batch_size=8, head_hidden=16, lr=3e-3)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tones")
    tone_manifest(root)
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def ensemble_run(data, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ensemble")
    record = distill_to_directory(TEACHERS, "student-cnn-tiny", data, out, CONFIG, seed=3, teacher_hop=800)
    return out, record


def test_loss_decreases_with_a_transformer_teacher():
    teacher = load_encoder("hubert-tiny")
    student = load_encoder("student-cnn-tiny", pretrained=False, seed=0)
    t = torch.arange(8000) / 16_000
    waves = [(torch.sin(2 * torch.pi * (200 + 300 * k) * t) * (0.2 + 0.1 * (k % 3))).numpy() for k in range(12)]
    targets = compute_targets(teacher, "hubert-tiny", ("layer1", "layer2"), waves)
    result = distill(student, [targets], waves, DistillConfig(epochs=10, batch_size=4, head_hidden=32, lr=3e-2))
    assert result.losses[-1] < 0.92 * result.losses[0]
    cosines = [entry["hubert-tiny/layer2 cosine"] for entry in result.history]
    assert cosines[-1] > cosines[0] + 0.15


def test_teacher_stays_frozen_and_student_init_is_untouched():
    teacher = load_encoder("crepe-micro")
    before = base_fingerprint(teacher.state_dict())
    student = load_encoder("student-cnn-tiny", pretrained=False, seed=0)
    theta0 = base_fingerprint(student.state_dict())
    waves = [torch.randn(4000).numpy() for _ in range(4)]
    targets = compute_targets(teacher, "crepe-micro", ("conv6",), waves)
    result = distill(student, [targets], waves, DistillConfig(epochs=1, batch_size=2, head_hidden=8))
    assert base_fingerprint(teacher.state_dict()) == before
    assert base_fingerprint(student.state_dict()) == theta0
    assert base_fingerprint(result.student.state_dict()) != theta0


def test_every_student_starts_from_the_same_theta0_bytes(tmp_path):
    first = load_student_init("student-cnn", seed=0).state_dict()
    again = load_student_init("student-cnn", seed=0).state_dict()
    other = load_student_init("student-cnn", seed=1).state_dict()
    assert base_fingerprint(first) == base_fingerprint(again)
    assert base_fingerprint(first) != base_fingerprint(other)


def test_task_vector_is_relative_to_the_init(ensemble_run):
    out, record = ensemble_run
    theta0 = load_student_init("student-cnn-tiny", seed=3)
    vector = TaskVector.load(out / VECTOR_DIR)
    assert vector.fingerprint == base_fingerprint(theta0.state_dict()) == record["task_vector"]["base_fingerprint"]
    assert base_fingerprint(load_tensors(out / INIT_FILE)) == vector.fingerprint
    rebuilt = apply(theta0, [vector]).state_dict()
    student = load_tensors(out / STUDENT_FILE)
    floating = [name for name in student if student[name].is_floating_point()]  # not num_batches_tracked
    assert floating and all(torch.equal(rebuilt[name], student[name]) for name in floating)
    assert any(vector.tensor(name).abs().max() > 0 for name in vector.keys())
    loaded = load_encoder("student-cnn-tiny", source=out / STUDENT_FILE)  # what chorus probe --source does
    assert base_fingerprint({k: v for k, v in loaded.state_dict().items() if v.is_floating_point()}) == \
        base_fingerprint({k: v for k, v in student.items() if v.is_floating_point()})
    with pytest.raises(EncoderLoadError, match="do not match"):
        load_encoder("student-cnn", source=out / STUDENT_FILE)


def test_ensemble_predicts_both_teachers_and_carries_a_head(ensemble_run):
    out, record = ensemble_run
    heads = [key for key in record["history"][0] if key.endswith(" cosine")]
    assert {key.split("/")[0] for key in heads} == set(TEACHERS)
    assert [t["teacher"] for t in record["targets"]] == TEACHERS
    assert record["targets"][1]["frame_rates"] == [16_000 / 800] * 3  # the hop reached crepe
    vector = TaskVector.load(out / VECTOR_DIR)
    assert vector.manifest.group == "hubert-tiny+crepe-micro"
    assert vector.heads and sorted(vector.heads[0].labels) == ["g1/high", "g1/low", "g2/buzz", "g2/mid"]
    assert vector.manifest.training.method == "distill"
    assert (out / "report.html").read_text().count("<img") == 1
    assert record["clips"] == 16  # the train split only


def test_same_seed_gives_the_same_bytes(ensemble_run, data, tmp_path):
    out, _ = ensemble_run
    distill_to_directory(TEACHERS, "student-cnn-tiny", data, tmp_path, CONFIG, seed=3, teacher_hop=800)
    for name in (STUDENT_FILE, INIT_FILE, f"{VECTOR_DIR}/deltas.safetensors", f"{VECTOR_DIR}/head.safetensors"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_cli_writes_the_artifacts_and_merge_composes_them(run_cli, data, tmp_path):
    result = run_cli("distill", "--teacher", "crepe-micro", "--student-init", "student-cnn-tiny", "--data", data,
                     "--out", tmp_path / "d", "--epochs", "1", "--batch-size", "8", "--teacher-hop", "800",
                     "--teacher-layers", "crepe-micro=conv4,logits")
    assert result.exit_code == 0, result.output
    for name in (RECORD_FILE, INIT_FILE, STUDENT_FILE, "report.html", "loss.png", f"{VECTOR_DIR}/taskvector.json"):
        assert (tmp_path / "d" / name).is_file(), name
    merged = run_cli("merge", "--method", "task_arithmetic", "-v", tmp_path / "d" / VECTOR_DIR, "--lambda", "0.5",
                     "--base", tmp_path / "d" / INIT_FILE, "--out", tmp_path / "m")
    assert merged.exit_code == 0, merged.output
    merged_student = load_student_init(tmp_path / "m")  # a model directory serves as θ0 too
    theta0 = load_student_init("student-cnn-tiny", seed=0)
    tau = TaskVector.load(tmp_path / "d" / VECTOR_DIR)
    expected = apply(theta0, [tau], [0.5]).state_dict()
    for name, tensor in merged_student.state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, expected[name], atol=1e-6, rtol=0)


@pytest.mark.parametrize("args, message", [
    (["--teacher", "no-such-encoder"], "unknown encoder 'no-such-encoder'"),
    (["--teacher", "crepe-micro", "--teacher-layers", "crepe-micro=conv9"], "no layer(s) ['conv9']"),
    (["--teacher", "crepe-micro", "--teacher-layers", "crepe-micro"], "TEACHER=LAYER"),
    (["--teacher", "hubert-tiny", "--teacher-hop", "800"], "no teacher"),
    (["--teacher", "crepe-micro", "--teacher", "crepe-micro"], "teachers repeat"),
    (["--teacher", "crepe-micro", "--student-layer", "block9"], "no layer 'block9'"),
    (["--teacher", "crepe-micro", "--epochs", "0"], "at least 1"),
])
def test_bad_inputs_give_typed_errors(run_cli, data, tmp_path, args, message):
    result = run_cli("distill", *args, "--student-init", "student-cnn-tiny", "--data", data, "--out", tmp_path)
    assert result.exit_code == 2
    assert message in result.output.replace("\n", "")


def test_missing_manifest_and_bad_init_name_the_problem(tmp_path):
    with pytest.raises(ChorusError, match="missing.csv"):
        distill_to_directory(["crepe-micro"], "student-cnn-tiny", tmp_path / "missing.csv", tmp_path / "o")
    with pytest.raises(EncoderNotFound):
        load_student_init("no-such-student")
    with pytest.raises(DistillError, match="at least one"):
        distill(load_encoder("student-cnn-tiny"), [], [], CONFIG)


def test_bad_head_layer_fails_before_any_training(tmp_path, data, monkeypatch):
    import chorus.distill.session as run

    monkeypatch.setattr(run, "compute_targets", lambda *a, **k: pytest.fail("teachers ran"))
    with pytest.raises(DistillError, match="no layer 'block7'"):
        distill_to_directory(["crepe-micro"], "student-cnn-tiny", data, tmp_path, CONFIG, head_layer="block7")
