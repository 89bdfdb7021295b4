"""Fine-tuning against its frozen-probe baseline: recorded in the result, metrics.json and
the task vector; a warning when the run ends below it; the baseline kept when no epoch
matches it on validation; the documented defaults; mean+max pooling."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from _toydata import tone_manifest

from chorus.finetune.config import DEFAULT_LR, FinetuneConfig
from chorus.finetune.errors import FinetuneWarning
from chorus.finetune.runner import finetune
from chorus.model import ClassifierModel
from chorus.taskvec import TaskVector
from chorus.taskvec.manifest import TrainingSummary

QUICK = dict(encoder="toy-cnn", groups=["g1"], epochs=3, batch_size=4, warmup=0.0, patience=None)
STILL = dict(lr=1e-12, head_lr=1e-12)  # nothing moves: the run ends exactly at its probe
WILD = dict(lr=30.0, head_lr=30.0, max_grad_norm=None)  # destroys the probe it starts from


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return tone_manifest(tmp_path_factory.mktemp("tones"))


def test_baseline_is_recorded_in_result_metrics_and_task_vector(tones, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FinetuneWarning)
        result = finetune(tones, tmp_path, FinetuneConfig(**QUICK, **STILL))
    assert result.warning is None and not result.kept_probe
    assert result.probe_valid_metrics["accuracy"] == result.valid_metrics["accuracy"]
    assert result.probe_test_metrics["accuracy"] == result.test_metrics["accuracy"]
    probe = json.loads((tmp_path / "metrics.json").read_text())["probe"]
    assert probe["valid"] == result.probe_valid_metrics and probe["test"] == result.probe_test_metrics
    assert probe["kept"] is False and probe["penalty"] > 0
    training = TaskVector.load(result.taskvector_dir).manifest.training
    assert training.probe_metrics == {**{f"valid_{k}": v for k, v in result.probe_valid_metrics.items()},
                                      **{f"test_{k}": v for k, v in result.probe_test_metrics.items()}}
    assert training.kept_probe is False


def test_warning_when_the_run_ends_below_its_probe(tones, tmp_path):
    with pytest.warns(FinetuneWarning, match="below its frozen-probe baseline on test"):
        result = finetune(tones, tmp_path, FinetuneConfig(**QUICK, **WILD, keep_probe=False))
    assert result.test_metrics["accuracy"] < result.probe_test_metrics["accuracy"]
    assert "below its frozen-probe baseline" in result.warning and not result.kept_probe


def test_the_probe_is_kept_when_fine_tuning_loses_on_validation(tones, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FinetuneWarning)
        result = finetune(tones, tmp_path, FinetuneConfig(**QUICK, **WILD))  # monitor: validation loss
    assert result.kept_probe and result.best_epoch is None
    assert result.valid_metrics["accuracy"] == result.probe_valid_metrics["accuracy"]
    assert result.test_metrics["accuracy"] == result.probe_test_metrics["accuracy"]
    vector = TaskVector.load(result.taskvector_dir)
    assert all(not vector.tensor(name).any() for name in vector.keys())  # the encoder is unchanged
    assert vector.manifest.training.kept_probe is True
    assert json.loads((tmp_path / "metrics.json").read_text())["probe"]["kept"] is True


def test_vectors_without_a_baseline_still_load_and_bad_baselines_are_refused():
    record = {"method": "full", "clips_per_label": {"a": 3}, "hours": 0.1, "epochs": 2}
    old = TrainingSummary.model_validate(record)
    assert old.probe_metrics is None and old.kept_probe is None
    with pytest.raises(ValueError, match="probe_metrics"):
        TrainingSummary.model_validate({**record, "probe_metrics": {"valid_accuracy": float("nan")}})


def test_defaults_are_the_documented_ones():
    config = FinetuneConfig()
    assert DEFAULT_LR["full"] == config.encoder_lr == 3e-5 and config.head_lr == 1e-4
    assert (config.monitor, config.keep_probe, config.train_bn_stats, config.layer_decay, config.ema) == (
        "loss", True, False, 1.0, None)


def test_mean_max_pooling_doubles_the_head_input(tones, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FinetuneWarning)
        result = finetune(tones, tmp_path, FinetuneConfig(**QUICK, pooling="mean+max", lr=3e-3, head_lr=1e-2))
    model = ClassifierModel.from_pretrained(result.model_dir)
    assert model.settings.pooling == "mean+max"
    assert model.heads[0].in_features == 2 * model.encoder.layer_dims[model.layer_index]
    scores = model.predict_scores(torch.randn(2, 8000), torch.tensor([8000, 6000]))
    assert torch.allclose(scores.sum(dim=1), torch.ones(2))


def test_an_epoch_must_match_the_probe_on_the_monitor_and_on_accuracy():
    from chorus.finetune.baseline import matches_probe

    probe = {"loss": 0.977, "accuracy": 0.667}
    assert not matches_probe({"valid_loss": 0.969, "valid_accuracy": 0.5}, probe, "loss", "multiclass")
    assert not matches_probe({"valid_loss": 1.1, "valid_accuracy": 0.75}, probe, "loss", "multiclass")
    assert matches_probe({"valid_loss": 0.977, "valid_accuracy": 0.667}, probe, "loss", "multiclass")
    assert matches_probe({"valid_loss": 1.1, "valid_accuracy": 0.75}, probe, "accuracy", "multiclass")


def test_layerwise_decay_scales_each_unit_below_the_last():
    from chorus.encoders import load_encoder
    from chorus.finetune.layerwise import layerwise_scale, unit_of

    assert unit_of("blocks.3.conv1.weight") == "blocks.3" and unit_of("stem.weight") == "stem"
    encoder = load_encoder("toy-cnn")
    units = list(dict.fromkeys(unit_of(name) for name, _ in encoder.named_parameters()))
    scale = layerwise_scale(encoder, 0.5)
    firsts = {unit_of(name): name for name, _ in reversed(list(encoder.named_parameters()))}
    assert [scale(f"encoder.{firsts[u]}") for u in units] == [0.5 ** (len(units) - 1 - i) for i in range(len(units))]


def test_the_weight_average_is_what_is_kept(tones, tmp_path):
    settings = dict(**QUICK, lr=3e-3, head_lr=1e-2, keep_probe=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FinetuneWarning)
        raw = finetune(tones, tmp_path / "raw", FinetuneConfig(**settings))
        averaged = finetune(tones, tmp_path / "ema", FinetuneConfig(**settings, ema=0.5))
    a, b = TaskVector.load(raw.taskvector_dir), TaskVector.load(averaged.taskvector_dir)
    assert any(b.tensor(name).any() for name in b.keys())
    assert any(not torch.equal(a.tensor(name), b.tensor(name)) for name in a.keys())
    assert b.manifest.training.settings["ema"] == 0.5
