"""Max and mean+max pooling over valid frames, and each encoder's native pooling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _probe_data import tone_manifest
from chorus.audio import load_audio
from chorus.data.manifest import read_manifest, write_manifest
from chorus.encoders import LayerOutputs, load_encoder, masked_max, pool_frames
from chorus.features import ClipTransform, extract_features
from chorus.probe.inputs import pooled_inputs
from chorus.probe.runner import StoreReader, open_probe_store, resolve_poolings
from chorus.probe.sweep import fit_and_select
from chorus.probe.task import task_from_manifest
from chorus.probe.train import TrainConfig


def test_pooling_over_valid_frames_ignores_padding_and_empty_clips():
    hidden = torch.tensor([[[1.0, -5.0], [3.0, -2.0], [99.0, 99.0]],
                           [[-7.0, -8.0], [-1.0, -9.0], [-3.0, -4.0]],
                           [[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    assert masked_max(hidden, mask).tolist() == [[3.0, -2.0], [-1.0, -4.0], [0.0, 0.0]]
    both = pool_frames(hidden, mask, "mean+max")
    expected = [[2.0, -3.5, 3.0, -2.0], [-11 / 3, -7.0, -1.0, -4.0], [0.0, 0.0, 0.0, 0.0]]
    assert torch.allclose(both, torch.tensor(expected))
    outputs = LayerOutputs([hidden, hidden[:, :2]], [mask, mask[:, :2]])
    assert [p.shape[1] for p in outputs.pooled("mean+max")] == [4, 4]
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_frames(hidden, mask, "median")


def test_pooled_inputs_from_stored_frames():
    frames = [[np.array([[1.0, 2.0], [3.0, -1.0]], np.float32), np.zeros((0, 2), np.float32)]]
    pooled = [np.array([[2.0, 0.5], [0.0, 0.0]], np.float32)]
    assert pooled_inputs(pooled, frames, "max")[0].tolist() == [[3.0, 2.0], [0.0, 0.0]]
    assert pooled_inputs(pooled, frames, "mean+max")[0].tolist() == [[2.0, 0.5, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]]
    assert pooled_inputs(pooled, None, "mean") is pooled
    with pytest.raises(ValueError, match="frame-level"):
        pooled_inputs(pooled, None, "max")


def test_native_pooling_of_encoders():
    assert load_encoder("sfx-cnn-tiny").native_pooling == "max"
    assert load_encoder("toy-cnn").native_pooling == "mean"
    assert resolve_poolings(("mean", "native", "max"), load_encoder("sfx-cnn-tiny")) == ("mean", "max")


def _hand_max(encoder, path, layer):
    """Max over the valid frames of one clip encoded alone (zeros without a valid frame)."""
    waveform, _ = load_audio(path, encoder.sample_rate)
    with torch.no_grad():
        outputs = encoder(torch.from_numpy(waveform)[None], torch.tensor([len(waveform)]))
    valid = outputs.hidden[layer][0][outputs.masks[layer][0]]
    return valid.max(dim=0).values.numpy() if len(valid) else np.zeros(encoder.layer_dims[layer], np.float32)


def test_probe_native_pooling_on_sfx_cnn_is_max_over_valid_frames(tmp_path, run_cli):
    manifest = tone_manifest(tmp_path / "tones", per_class=5, seconds=(0.1, 0.6))
    write_manifest(manifest, tmp_path / "tones" / "manifest.csv")
    result = run_cli("probe", "--encoder", "sfx-cnn-tiny", "--data", tmp_path / "tones" / "manifest.csv",
                     "--out", tmp_path / "out", "--pooling", "native")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert report["poolings"] == ["max"] and report["native_pooling"] == "max"
    assert list(report["conditions"]["default"]["poolings"]) == ["max"]
    assert "C" in report["conditions"]["default"]["poolings"]["max"]["best"]

    # the features of that run (read back from its cache): a hand-computed max over valid frames
    encoder = load_encoder("sfx-cnn-tiny")
    task = task_from_manifest(read_manifest(tmp_path / "tones" / "manifest.csv"))
    store = open_probe_store(encoder, tmp_path / "out" / "cache", ClipTransform(), True, "float32")
    extraction = extract_features(encoder, task.clips, store)
    assert extraction.computed == 0
    reader = StoreReader(task, store, dict(enumerate(extraction.keys)), with_frames=True)
    selection = fit_and_select(reader, task.kind, len(task.labels), resolve_poolings(("native",), encoder),
                               TrainConfig())
    train = task.indices("train")
    empty = 0
    for layer in range(encoder.num_layers):
        hand = np.stack([_hand_max(encoder, task.clips[i].path, layer) for i in train])
        empty += int((hand == 0).all(axis=1).sum())
        stored = pooled_inputs(reader.read("train").pooled, reader.read("train").frames, "max")[layer]
        np.testing.assert_allclose(stored, hand, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(selection.fitted["max"].standardizer.pooled_mean[layer], hand.mean(axis=0),
                                   rtol=1e-4, atol=1e-5)
    assert empty > 0  # the shortest clips have no valid frame in the deepest block: zeros, not -inf
