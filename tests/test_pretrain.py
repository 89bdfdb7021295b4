"""``pretrain`` end to end on sfx-cnn-tiny: artifacts, frozen parameters, task vector =
adapted − start (encoder only), same seed -> same bytes, resume after an interruption,
typed errors for bad manifests; and the ``chorus pretrain`` command."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from _toydata import tone_manifest
from chorus.data.manifest import Clip, Manifest
from chorus.encoders import load_encoder
from chorus.errors import ChorusError
from chorus.pretrain import PretrainConfig, PretrainError, load_saved_encoder, pretrain
from chorus.taskvec import TaskVector
from chorus.taskvec.apply import apply
from chorus.tensorfile import load_tensors
from chorus.train.checkpoint import CHECKPOINT_DIR
from chorus.train.schedule import Stage, multi_stage_lr

STAGES = [Stage(steps=2, peak_lr=2e-3, warmup_steps=1, floor=0.1, freeze=("blocks.0.*", "blocks.1.*")),
          Stage(steps=2, peak_lr=1e-3, warmup_steps=1, floor=0.1, freeze=("blocks.0.*",))]
CONFIG = PretrainConfig(encoder="sfx-cnn-tiny", stages=STAGES, batch_size=4, clip_seconds=0.5, seed=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Manifest:
    root = tmp_path_factory.mktemp("pretrain-data")
    labelled = tone_manifest(root, sample_rate=22_050, seconds=0.6)
    return replace(labelled, clips=[replace(clip, labels=(), split=None, group=None) for clip in labelled.clips])


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain-run")
    return pretrain(data, out, CONFIG), out


class Interrupt(Exception):
    pass


def interrupting(after: int):
    """A progress factory whose pre-training bar raises on its ``after``-th update."""

    class Bar:
        count = 0

        def update(self, n: int = 1) -> None:
            Bar.count += n
            if Bar.count >= after:
                raise Interrupt

        def close(self) -> None:
            pass

    class Silent(Bar):
        def update(self, n: int = 1) -> None:
            pass

    return lambda total, desc: Bar() if desc == "pre-training" else Silent()


def test_artifacts_and_per_step_records(run):
    result, out = run
    assert result.objective == "masked-spectrogram"
    for name in ("encoder/encoder.json", "encoder/encoder.safetensors", "taskvector/taskvector.json",
                 "pretrain.json", "lr.png", "loss.png"):
        assert (out / name).is_file(), name
    assert (out / "lr.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / CHECKPOINT_DIR).exists()
    record = json.loads((out / "pretrain.json").read_text())
    assert record["stage_starts"] == [0, 2]
    assert [row["stage"] for row in record["steps"]] == [1, 1, 2, 2]
    assert [row["lr"] for row in record["steps"]] == [multi_stage_lr(step, STAGES) for step in range(4)]
    assert all(np.isfinite(row["loss"]) for row in record["steps"])


def test_task_vector_is_adapted_minus_start_over_the_encoder_only(run):
    _, out = run
    start = load_encoder("sfx-cnn-tiny", seed=3)
    adapted = load_saved_encoder(out / "encoder")
    vector = TaskVector.load(out / "taskvector")
    assert vector.keys() and not any(name.startswith("heads.") for name in vector.keys())
    adapted_state, start_state = adapted.state_dict(), start.state_dict()
    for name, _ in start.named_parameters():
        assert torch.allclose(vector.tensor(name), adapted_state[name] - start_state[name], atol=1e-7), name
    rebuilt = apply(start, [vector])
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in adapted_state.items())


def test_frozen_parameters_do_not_change(run, data, tmp_path):
    _, out = run
    vector = TaskVector.load(out / "taskvector")
    for name in vector.keys():
        changed = bool(vector.tensor(name).abs().max() > 0)
        assert changed == (not name.startswith("blocks.0.")), name  # frozen in both stages
    # blocks.1 is frozen in stage 1 only: unchanged at the stage-1 checkpoint.
    with pytest.raises(Interrupt):
        pretrain(data, tmp_path, CONFIG, progress=interrupting(3))
    folder = tmp_path / CHECKPOINT_DIR / json.loads((tmp_path / CHECKPOINT_DIR / "latest.json").read_text())["folder"]
    state = load_tensors(folder / "model.safetensors")
    start = load_encoder("sfx-cnn-tiny", seed=3).state_dict()
    assert torch.equal(state["encoder.blocks.1.conv1.weight"], start["blocks.1.conv1.weight"])
    assert not torch.equal(state["encoder.blocks.2.conv1.weight"], start["blocks.2.conv1.weight"])

    resumed = pretrain(data, tmp_path, CONFIG, resume=True)  # resume after the interruption
    assert resumed.resumed_from_step == 1
    for name in ("encoder/encoder.safetensors", "taskvector/deltas.safetensors"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    assert json.loads((tmp_path / "pretrain.json").read_text())["steps"] == \
        json.loads((out / "pretrain.json").read_text())["steps"]


def test_same_seed_gives_the_same_bytes(run, data, tmp_path):
    _, out = run
    pretrain(data, tmp_path, CONFIG)
    for name in ("encoder/encoder.safetensors", "taskvector/deltas.safetensors", "pretrain.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_bad_inputs_are_typed_errors(data, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(PretrainError, match="nothing to pre-train on"):
        pretrain(Manifest(clips=[Clip(path=broken, labels=())], root=tmp_path), tmp_path / "out", CONFIG)
    unsplit = Manifest(clips=[replace(clip, labels=("a",)) for clip in data.clips], root=data.root)
    with pytest.raises(ChorusError, match="split"):
        pretrain(data, tmp_path / "out", CONFIG, forgetting=unsplit)
    with pytest.raises(PretrainError, match="matches no encoder parameter"):
        pretrain(data, tmp_path / "out", CONFIG.model_copy(update={"stages": [Stage(2, 1e-3, freeze=("nope.*",))]}))


def test_cli_writes_the_artifacts_and_the_forgetting_check(run_cli, tmp_path):
    original = tone_manifest(tmp_path / "original", sample_rate=22_050, seconds=0.6)
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("path\n" + "".join(f"{clip.path}\n" for clip in original.clips))
    out = tmp_path / "out"
    result = run_cli("pretrain", "--encoder", "sfx-cnn-tiny", "--data", unlabelled, "--out", out,
                     "--stage-steps", "2,2", "--peak-lr", "1e-3,5e-4", "--warmup-steps", "1", "--batch-size", "4",
                     "--clip-seconds", "0.5", "--freeze", "1=blocks.0.*", "--name", "tones",
                     "--forgetting-data", tmp_path / "original" / "manifest.csv")
    assert result.exit_code == 0, result.output
    assert "forgetting check" in result.output
    record = json.loads((out / "pretrain.json").read_text())
    assert record["config"]["stages"][0]["freeze"] == ["blocks.0.*"] and record["config"]["stages"][1]["freeze"] == []
    check = record["forgetting"]
    assert check["metric"] == "accuracy" and 0 <= check["before"]["test"] <= 1 and 0 <= check["after"]["test"] <= 1
    assert check["change"] == pytest.approx(check["after"]["test"] - check["before"]["test"])
    assert sorted(check["layers"]) == ["block1", "block2", "block3", "block4"]
    assert check["layers"][check["before"]["layer"]]["before"] == check["before"]["test"]
    assert not (out / "forgetting-cache").exists()
    assert TaskVector.load(out / "taskvector").manifest.group == "tones"


def test_cli_bad_manifest_names_the_file(run_cli, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\nmissing.wav\n")
    result = run_cli("pretrain", "--encoder", "sfx-cnn-tiny", "--data", manifest, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "missing.wav" in result.output
    result = run_cli("pretrain", "--data", manifest, "--out", tmp_path / "out", "--stage-steps", "2,2",
                     "--peak-lr", "1e-3,1e-3,1e-3")
    assert result.exit_code != 0 and "--peak-lr" in result.output


@pytest.mark.parametrize("encoder", ["hubert-tiny", "wav2vec2-tiny"])
def test_transformer_objectives_run_both_stages_deterministically(data, tmp_path, encoder):
    config = PretrainConfig(encoder=encoder, stages=[Stage(1, 1e-3), Stage(1, 5e-4)], batch_size=2,
                            clip_seconds=0.3, clusters=4, mask_span=3, seed=1)
    first = pretrain(data, tmp_path / "a", config)
    pretrain(data, tmp_path / "b", config)
    assert first.objective == ("contrastive" if encoder == "wav2vec2-tiny" else "masked-prediction")
    assert [row["stage"] for row in first.history] == [1, 2] and all(np.isfinite(r["loss"]) for r in first.history)
    for name in ("encoder/encoder.safetensors", "taskvector/deltas.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert not any(name.startswith("heads.") for name in TaskVector.load(tmp_path / "a" / "taskvector").keys())
