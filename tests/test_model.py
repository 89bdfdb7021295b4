"""The chorus model directory: ClassifierModel save/load, pooling, validation on load."""

from __future__ import annotations

import json

import pytest
import torch

from chorus.encoders import load_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry, ModelFileError, pool_frames
from chorus.tensorfile import IntegrityError, save_tensors


def make_model(pooling="mean", task="multiclass"):
    torch.manual_seed(0)
    heads = [HeadEntry(group="a", labels=["a1", "a2"]), HeadEntry(group="b", labels=["b1", "b2", "b3"])]
    settings = ClassifierSettings(layer="conv2", pooling=pooling, task=task)
    return ClassifierModel(load_encoder("toy-cnn"), heads, settings)


def test_pooling_ignores_padded_frames():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]], [[5.0], [7.0], [9.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    assert pool_frames(hidden, mask, "mean").tolist() == [[2.0], [0.0]]
    assert pool_frames(hidden, mask, "max").tolist() == [[3.0], [0.0]]


def test_save_and_load_give_the_same_logits(tmp_path):
    model = make_model(pooling="max", task="multilabel").eval()
    model.save_pretrained(tmp_path / "m")
    loaded = ClassifierModel.from_pretrained(tmp_path / "m")
    waves, lengths = torch.randn(2, 7000), torch.tensor([7000, 3000])
    assert loaded.labels == ["a1", "a2", "b1", "b2", "b3"] and loaded.settings == model.settings
    assert torch.equal(loaded(waves, lengths), model(waves, lengths))
    scores = loaded.predict_scores(waves, lengths)
    assert scores.shape == (2, 5) and torch.equal(scores, model(waves, lengths).detach().sigmoid())
    record = json.loads((tmp_path / "m" / "config.json").read_text())
    assert record["encoder"]["architecture"]["family"] == "toy-cnn" and len(record["heads"]) == 2


def test_loading_validates_every_file(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "classifier": {**record["classifier"], "pooling": "median"}}))
    with pytest.raises(ModelFileError, match="classifier.pooling"):
        ClassifierModel.from_pretrained(tmp_path / "m")
    path.write_text(json.dumps(record))
    tensors = {f"encoder.{name}": value for name, value in model.encoder.state_dict().items()}
    tensors.update({"heads.0.weight": torch.zeros(2, 32), "heads.0.bias": torch.zeros(2),
                    "heads.1.weight": torch.zeros(3, 7), "heads.1.bias": torch.zeros(3)})
    digest = save_tensors(tmp_path / "m" / "model.safetensors", tensors)
    with pytest.raises(IntegrityError, match="model.safetensors"):
        ClassifierModel.from_pretrained(tmp_path / "m")
    path.write_text(json.dumps({**record, "files": {"model.safetensors": digest}}))
    with pytest.raises(ModelFileError, match="wrong shape: 1.weight"):
        ClassifierModel.from_pretrained(tmp_path / "m")
    digest = save_tensors(tmp_path / "m" / "model.safetensors", {**tensors, "extra": torch.zeros(1)})
    path.write_text(json.dumps({**record, "files": {"model.safetensors": digest}}))
    with pytest.raises(ModelFileError, match="outside encoder./heads.: extra"):
        ClassifierModel.from_pretrained(tmp_path / "m")
    with pytest.raises(ModelFileError, match="file not found"):
        ClassifierModel.from_pretrained(tmp_path / "nowhere")
