"""Fine-tuning mechanics on toy-cnn and tone data: learning, reproducibility, exact task
vectors, head-only / LoRA / frozen runs, resume, joint and multi-label training, bad files."""

from __future__ import annotations

import json

import pytest
import torch
from _toydata import multilabel_manifest, tone_manifest

from chorus.encoders import load_encoder
from chorus.model import ClassifierModel
from chorus.taskvec import TaskVector, apply, compose_model
from chorus.finetune.config import FinetuneConfig
from chorus.finetune.errors import FinetuneError
from chorus.finetune.runner import finetune, with_valid_split

QUICK = dict(encoder="toy-cnn", epochs=3, batch_size=4, lr=3e-3, head_lr=1e-2, warmup=0.0, patience=None,
             keep_probe=False)  # the mechanics of fine-tuning itself (the fallback: test_finetune_baseline.py)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return tone_manifest(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def reference(tones, tmp_path_factory):
    """One uninterrupted full fine-tuning run on group g1."""
    out = tmp_path_factory.mktemp("reference")
    return finetune(tones, out, FinetuneConfig(groups=["g1"], **QUICK))


def deltas_sha(out_dir) -> str:
    return json.loads((out_dir / "taskvector" / "taskvector.json").read_text())["files"]["deltas.safetensors"]


def test_full_finetune_learns_and_writes_model_and_task_vector(reference):
    out = reference.out_dir
    losses = [row["train_loss"] for row in reference.history]
    assert losses[-1] < losses[0]
    assert reference.labels == ["g1/high", "g1/low"] and reference.task == "multiclass"
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 3 and metrics["monitor"] == "loss"
    assert metrics["test"]["accuracy"] == reference.test_metrics["accuracy"]
    assert not (out / "checkpoint").exists()
    vector = TaskVector.load(out / "taskvector")
    manifest = vector.manifest
    assert manifest.group == "g1" and manifest.training.clips_per_label == {"g1/high": 4, "g1/low": 4}
    assert manifest.heads[0].calibration.clips == 4 and manifest.heads[0].calibration.temperature > 0
    assert manifest.training.best_epoch == reference.best_epoch


def test_apply_reproduces_the_finetuned_model_and_its_predictions(reference):
    tuned = ClassifierModel.from_pretrained(reference.model_dir)
    vector = TaskVector.load(reference.taskvector_dir)
    base = load_encoder("toy-cnn")
    rebuilt = apply(base, [vector])
    for name, value in tuned.encoder.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value), name
    composed = compose_model(base, [vector])
    waves, lengths = torch.randn(3, 8000), torch.tensor([8000, 7000, 5000])
    assert torch.equal(composed.predict_scores(waves, lengths), tuned.predict_scores(waves, lengths))


def test_same_seed_gives_the_same_delta_bytes(tones, reference, tmp_path):
    again = finetune(tones, tmp_path, FinetuneConfig(groups=["g1"], **QUICK))
    assert deltas_sha(again.out_dir) == deltas_sha(reference.out_dir)
    other = finetune(tones, tmp_path / "other", FinetuneConfig(groups=["g1"], **{**QUICK, "seed": 1}))
    assert deltas_sha(other.out_dir) != deltas_sha(reference.out_dir)


class Crash(Exception):
    pass


def crashing_progress(after: int):
    """A progress factory whose training bar raises after ``after`` batches."""
    class Bar:
        def __init__(self, desc):
            self.desc, self.count = desc, 0

        def update(self, n=1):
            self.count += n
            if self.desc == "fine-tuning" and self.count >= after:
                raise Crash()

        def close(self):
            pass

    return lambda total, desc: Bar(desc)


def test_resume_after_a_crash_gives_the_same_bytes(tones, reference, tmp_path):
    config = FinetuneConfig(groups=["g1"], **QUICK)
    with pytest.raises(Crash):
        finetune(tones, tmp_path, config, progress=crashing_progress(after=5))  # 2 batches per epoch
    assert (tmp_path / "checkpoint" / "latest.json").is_file()
    resumed = finetune(tones, tmp_path, config, resume=True)
    assert resumed.resumed_from_epoch == 2
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2]
    assert deltas_sha(tmp_path) == deltas_sha(reference.out_dir)


def test_gradient_accumulation_matches_the_larger_batch(tones, reference, tmp_path):
    whole = reference
    config = FinetuneConfig(groups=["g1"], **{**QUICK, "batch_size": 2}, accumulate=2)
    halves = finetune(tones, tmp_path / "halves", config)
    a, b = TaskVector.load(whole.taskvector_dir), TaskVector.load(halves.taskvector_dir)
    assert [row["step"] for row in halves.history] == [row["step"] for row in whole.history] == [2, 4, 6]
    for name in a.keys():
        assert torch.allclose(a.tensor(name), b.tensor(name), atol=1e-5), name


def test_early_stopping_ends_a_run_without_progress(tones, tmp_path):
    frozen = {**QUICK, "lr": 1e-12, "head_lr": 1e-12, "epochs": 6, "patience": 1}
    result = finetune(tones, tmp_path, FinetuneConfig(groups=["g1"], **frozen))
    assert len(result.history) == 2 and result.best_epoch == 0


def test_head_only_run_leaves_the_task_vector_zero(tones, tmp_path):
    result = finetune(tones, tmp_path, FinetuneConfig(groups=["g2"], method="head-only", **QUICK))
    vector = TaskVector.load(result.taskvector_dir)
    assert all(not vector.tensor(name).any() for name in vector.keys())
    assert vector.manifest.training.method == "head-only"
    assert vector.manifest.labels == ["g2/buzz", "g2/mid"]


def test_lora_run_changes_only_the_adapted_layer(tones, tmp_path):
    config = FinetuneConfig(groups=["g1"], method="lora", lora_rank=2, lora_targets=["blocks.1.0"],
                            **{**QUICK, "lr": 1e-2})
    result = finetune(tones, tmp_path, config)
    vector = TaskVector.load(result.taskvector_dir)
    changed = {name for name in vector.keys() if vector.tensor(name).any()}
    assert changed == {"blocks.1.0.weight"}
    assert torch.linalg.matrix_rank(vector.tensor("blocks.1.0.weight").reshape(32, -1)) <= 2
    tuned = ClassifierModel.from_pretrained(result.model_dir)
    rebuilt = apply(load_encoder("toy-cnn"), [vector])
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in tuned.encoder.state_dict().items())


def test_frozen_layers_and_trained_bn_statistics(tones, tmp_path):
    config = FinetuneConfig(groups=["g1"], freeze=["blocks.0.*"], train_bn_stats=True, **QUICK)
    vector = TaskVector.load(finetune(tones, tmp_path, config).taskvector_dir)
    assert not vector.tensor("blocks.0.0.weight").any() and vector.tensor("blocks.2.0.weight").any()
    buffers = [name for name in vector.keys() if name.startswith("buffers.")]
    assert "buffers.blocks.1.1.running_mean" in buffers
    assert not any(name.endswith("num_batches_tracked") for name in buffers)
    assert vector.manifest.training.method == "full (frozen: blocks.0.*)"


def test_joint_training_over_all_groups_has_one_head_over_the_union(tones, tmp_path):
    result = finetune(tones, tmp_path, FinetuneConfig(**{**QUICK, "epochs": 1}))
    vector = TaskVector.load(result.taskvector_dir)
    assert vector.manifest.group == "g1+g2" and len(vector.heads) == 1
    assert vector.manifest.labels == ["g1/high", "g1/low", "g2/buzz", "g2/mid"]
    assert vector.manifest.training.groups == ["g1", "g2"]


def test_multilabel_data_trains_a_sigmoid_head(tmp_path):
    manifest = multilabel_manifest(tmp_path / "data")
    result = finetune(manifest, tmp_path / "out", FinetuneConfig(**{**QUICK, "epochs": 2}))
    assert result.task == "multilabel" and {"map", "micro_f1"} <= set(result.valid_metrics)
    model = ClassifierModel.from_pretrained(result.model_dir)
    scores = model.predict_scores(torch.randn(2, 6400), torch.tensor([6400, 6400]))
    assert scores.shape == (2, 3) and not torch.allclose(scores.sum(dim=1), torch.ones(2))


def test_bad_files_are_reported_and_the_rest_trains(tones, tmp_path):
    from dataclasses import replace

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    clips = tones.clips + [replace(tones.clips[0], path=broken)]
    config = FinetuneConfig(groups=["g1"], **{**QUICK, "epochs": 1})
    result = finetune(replace(tones, clips=clips), tmp_path / "out", config)
    assert [failure.clip.path for failure in result.failures] == [broken]
    skipped = json.loads((tmp_path / "out" / "finetune.json").read_text())["failed_files"]
    assert skipped[0]["path"] == str(broken)


def test_a_validation_split_is_carved_when_missing(tones, tmp_path):
    from dataclasses import replace

    no_valid = replace(tones, clips=[c for c in tones.clips if c.split != "valid"])
    selected, origin = with_valid_split(no_valid.select(group="g1"), seed=0)
    valid = selected.select(split="valid")
    assert "15 % of train" in origin and sorted(valid.labels) == ["g1/high", "g1/low"]
    assert len(selected.select(split="train")) + len(valid) == 8
    unsplit = replace(tones, clips=[replace(c, split=None) for c in tones.clips])
    selected, origin = with_valid_split(unsplit, seed=0)
    assert {c.split for c in selected.clips} == {"train", "valid", "test"} and "70/15/15" in origin


def test_unusable_selections_raise_typed_errors(tones, tmp_path):
    with pytest.raises(FinetuneError, match="groups not in the manifest: nope"):
        finetune(tones, tmp_path, FinetuneConfig(groups=["nope"], **QUICK))
    from dataclasses import replace

    no_train = replace(tones, clips=[c for c in tones.clips if c.split != "train"])
    with pytest.raises(FinetuneError, match="no usable train clips"):
        finetune(no_train, tmp_path, FinetuneConfig(groups=["g1"], **QUICK))
    with pytest.raises(FinetuneError, match="has no layer"):
        finetune(tones, tmp_path, FinetuneConfig(groups=["g1"], layer="conv9", **QUICK))
