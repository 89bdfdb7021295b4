"""The pieces of ``chorus distill``: the student encoder, time alignment, the loss, target
caching, the notes plan, and interpolation scoring."""

from __future__ import annotations

import math

import mido
import numpy as np
import pytest
import torch

from chorus.distill import DistillConfig, DistillError, compute_targets
from chorus.distill.heads import align_frames
from chorus.distill.loss import frame_loss
from chorus.distill.notes import INSTRUMENTS, NotesConfig, plan_notes, write_midi
from chorus.distill.errors import NotesError
from chorus.distill.targets import load_targets, save_targets, subset_targets
from chorus.distill.tradeoff import Domain, interpolation_sweep, probe_domain, retention
from chorus.encoders import get_spec, load_encoder
from chorus.taskvec import TaskVector


@pytest.mark.parametrize("name", ["student-cnn", "student-cnn-tiny"])
def test_student_layers_padding_and_parameter_count(name):
    student = load_encoder(name, pretrained=False)
    assert student.num_parameters == get_spec(name).num_parameters
    waves = torch.randn(2, 16_000) * 0.3
    lengths = torch.tensor([16_000, 9_600])
    batch = student(waves, lengths)
    alone = student(waves[1:, :9_600], lengths[1:])
    for index, (h, m) in enumerate(zip(batch.hidden, batch.masks)):
        assert h.shape[2] == student.layer_dims[index]
        count = int(m[1].sum())
        assert count == alone.masks[index][0].sum()
        torch.testing.assert_close(h[1, :count], alone.hidden[index][0, :count], atol=1e-5, rtol=1e-4)
    assert batch.hidden[-1].shape[1] == 6  # 1 s at 6.25 Hz, floored


def test_student_cnn_is_about_400k_parameters():
    assert 300_000 <= load_encoder("student-cnn").num_parameters <= 500_000


def test_align_frames_keeps_constants_and_reaches_each_target_length():
    hidden = torch.zeros(2, 10, 3)
    hidden[0, :10] = torch.tensor([1.0, 2.0, 3.0])
    hidden[1, :4] = 5.0  # only 4 valid frames, padding after
    aligned = align_frames(hidden, torch.tensor([10, 4]), [7, 3])
    assert aligned.shape == (10, 3)
    torch.testing.assert_close(aligned[:7], torch.tensor([1.0, 2.0, 3.0]).expand(7, 3))
    torch.testing.assert_close(aligned[7:], torch.full((3, 3), 5.0))  # padding never leaks in


def test_frame_loss_is_l1_minus_log_sigmoid_cosine():
    target = torch.randn(5, 4)
    total, l1, cosine = frame_loss(target.clone(), target)
    assert float(l1) == 0.0 and math.isclose(float(cosine), 1.0, rel_tol=1e-6)
    assert math.isclose(float(total), -math.log(1 / (1 + math.exp(-1.0))), rel_tol=1e-5)
    worse, _, _ = frame_loss(-target, target)
    assert float(worse) > float(total)


def test_default_teacher_layers_spread_over_depth():
    config = DistillConfig()
    assert config.layers_of("crepe", ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "logits")) == \
        ("conv2", "conv5", "logits")
    assert DistillConfig(teacher_layers={"x": ("b",)}).layers_of("x", ("a", "b")) == ("b",)
    with pytest.raises(DistillError, match="no layer"):
        DistillConfig(teacher_layers={"x": ("c",)}).layers_of("x", ("a", "b"))


def test_targets_are_standardised_cached_and_keyed(tmp_path):
    teacher = load_encoder("crepe-micro")
    waves = [np.random.default_rng(i).standard_normal(1600 * (i + 2)).astype(np.float32) for i in range(4)]
    targets = compute_targets(teacher, "crepe-micro", ("conv3", "logits"), waves)
    stacked = torch.cat(targets.frames[1])
    torch.testing.assert_close(stacked.mean(0), torch.zeros(stacked.shape[1]), atol=1e-4, rtol=0)
    assert [f.shape[0] for f in targets.frames[0]] == [1 + len(w) // 160 for w in waves]
    save_targets(tmp_path / "t.safetensors", targets, key="abc")
    loaded = load_targets(tmp_path / "t.safetensors", key="abc")
    assert loaded.layers == targets.layers
    assert all(torch.equal(a, b) for a, b in zip(loaded.frames[1], targets.frames[1]))
    assert load_targets(tmp_path / "t.safetensors", key="other") is None
    assert load_targets(tmp_path / "absent.safetensors", key="abc") is None
    part = subset_targets(targets, [2, 0])
    assert part.clips == 2 and torch.equal(part.frames[0][1], targets.frames[0][0])


def test_notes_plan_is_balanced_seeded_and_becomes_midi(tmp_path):
    config = NotesConfig(clips_per_class=5, seed=4)
    notes = plan_notes(config)
    assert plan_notes(config) == notes and plan_notes(NotesConfig(clips_per_class=5, seed=5)) != notes
    assert [sum(n.pitch_class == c for n in notes) for c in range(12)] == [5] * 12
    assert all(n.midi % 12 == n.pitch_class and n.onset + n.duration < config.seconds for n in notes)
    assert {n.split for n in notes} == {"train", "valid", "test"}
    write_midi(notes, 2.0, tmp_path / "n.mid")
    played = [m for m in mido.MidiFile(tmp_path / "n.mid") if m.type == "note_on" and m.velocity > 0]
    assert [m.note for m in played] == [n.midi for n in notes]
    assert {m.program for m in mido.MidiFile(tmp_path / "n.mid") if m.type == "program_change"} == \
        set(INSTRUMENTS.values())
    with pytest.raises(NotesError):
        NotesConfig(min_note=0.9, max_note=1.5)


def _domain(name: str, freqs: list[float]) -> Domain:
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16_000
    waves, targets = {}, {}
    for split, count in (("train", 6), ("valid", 3), ("test", 3)):
        waves[split] = [(np.sin(2 * np.pi * freqs[k % 2] * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
                        for k in range(count * 2)]
        targets[split] = np.array([k % 2 for k in range(count * 2)])
    return Domain(name, ["a", "b"], waves, targets)


def test_interpolation_sweep_endpoints_are_theta0_and_the_student():
    theta0 = load_encoder("student-cnn-tiny", pretrained=False, seed=0)
    student = load_encoder("student-cnn-tiny", pretrained=False, seed=1)
    vector = TaskVector.from_models(theta0, student)
    domain = _domain("tones", [300.0, 3000.0])
    rows = interpolation_sweep(theta0, [vector], [(0.0,), (1.0,)], [domain])
    assert rows[0]["scores"]["tones"] == probe_domain(theta0, domain)
    assert rows[1]["scores"]["tones"] == probe_domain(student, domain)
    kept = retention(rows, {"tones": 0.5})
    assert kept[1]["worst"] == rows[1]["scores"]["tones"]["accuracy"] / 0.5
    with pytest.raises(DistillError, match="coefficients"):
        interpolation_sweep(theta0, [vector], [(0.5, 0.5)], [domain])
