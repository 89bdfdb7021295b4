"""The feature store: round trips, resume after a crash, stale and foreign data, bad files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from _probe_data import tone_manifest
from chorus.data.loading import load_clip
from chorus.data.manifest import Clip
from chorus.encoders import load_encoder, pooled_features
from chorus.features import (
    FeatureStore, FeatureStoreError, FeatureStoreMismatch, MissingFeatures, SafetensorsShards, extract_features,
    store_header,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tone_manifest(tmp_path_factory.mktemp("tones"), per_class=3)


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("toy-cnn")


def _store(root, encoder, frames=True, dtype="float32"):
    return FeatureStore(root, store_header(encoder, dtype=dtype), SafetensorsShards(frames))


class CountingEncoder(torch.nn.Module):
    """Wraps an encoder, counts forward passes and can fail on a chosen call."""

    def __init__(self, inner, fail_on: int | None = None):
        super().__init__()
        self.inner, self.fail_on, self.calls = inner, fail_on, 0
        for name in ("name", "sample_rate", "layer_names", "layer_dims", "frame_rates", "pads_exactly"):
            setattr(self, name, getattr(inner, name))

    def architecture(self):
        return self.inner.architecture()

    def forward(self, waveforms, lengths):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("simulated crash")
        return self.inner(waveforms, lengths)


def test_features_match_a_direct_forward_and_frames_average_to_pooled(tmp_path, data, encoder):
    store = _store(tmp_path, encoder)
    report = extract_features(encoder, data.clips, store, batch_size=4)
    assert report.computed == len(data.clips) and not report.failures
    loaded = store.load(report.keys[::-1], with_frames=True)
    direct = pooled_features(encoder, [load_clip(c, 16_000) for c in data.clips[::-1]])
    for layer, reference in enumerate(direct):
        np.testing.assert_allclose(loaded.pooled[layer], reference, rtol=1e-5, atol=1e-6)
        means = np.stack([f.mean(axis=0) for f in loaded.frames[layer]])
        np.testing.assert_allclose(means, loaded.pooled[layer], rtol=1e-4, atol=1e-6)


def test_one_forward_pass_per_batch_serves_all_layers(tmp_path, data, encoder):
    counting = CountingEncoder(encoder)
    extract_features(counting, data.clips, _store(tmp_path, encoder), batch_size=4)
    assert counting.calls == -(-len(data.clips) // 4)


def test_crash_loses_only_the_batch_in_flight_and_rerun_finishes(tmp_path, data, encoder):
    crashing = CountingEncoder(encoder, fail_on=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_features(crashing, data.clips, _store(tmp_path, encoder), batch_size=3, chunk_batches=1)
    assert len(_store(tmp_path, encoder)) == 3
    counting = CountingEncoder(encoder)
    report = extract_features(counting, data.clips, _store(tmp_path, encoder), batch_size=3, chunk_batches=1)
    assert (report.reused, report.computed) == (3, len(data.clips) - 3)
    assert counting.calls == -(-(len(data.clips) - 3) // 3)
    assert extract_features(counting, data.clips, _store(tmp_path, encoder)).computed == 0


def test_shard_without_index_record_is_dropped_and_recomputed(tmp_path, data, encoder):
    store = _store(tmp_path, encoder)
    extract_features(encoder, data.clips[:4], store, batch_size=2)
    (tmp_path / "index" / "000001.json").unlink()
    reopened = _store(tmp_path, encoder)
    assert len(reopened) == 2 and not (tmp_path / "shards" / "000001.safetensors").exists()
    assert extract_features(encoder, data.clips[:4], reopened, batch_size=2).computed == 2


def test_changed_file_is_recomputed(tmp_path, encoder):
    data = tone_manifest(tmp_path / "audio", per_class=1)
    store = _store(tmp_path / "store", encoder)
    before = extract_features(encoder, data.clips, store)
    os.utime(data.clips[0].path, ns=(1, 1))  # same content, another modification time
    after = extract_features(encoder, data.clips, store)
    assert after.computed == 1 and after.keys[0] != before.keys[0] and after.keys[1:] == before.keys[1:]


def test_other_encoder_weights_or_dtype_refuse_the_directory(tmp_path, encoder):
    _store(tmp_path, encoder)
    other = load_encoder("toy-cnn", seed=1)
    with pytest.raises(FeatureStoreMismatch, match="store.json.*weights|encoder"):
        _store(tmp_path, other)
    with pytest.raises(FeatureStoreMismatch, match="dtype"):
        _store(tmp_path, encoder, dtype="float16")


def test_float16_store_is_close_and_half_the_size(tmp_path, data, encoder):
    full = _store(tmp_path / "f32", encoder)
    half = _store(tmp_path / "f16", encoder, dtype="float16")
    keys32 = extract_features(encoder, data.clips, full).keys
    keys16 = extract_features(encoder, data.clips, half).keys
    a, b = full.load(keys32, with_frames=True), half.load(keys16, with_frames=True)
    np.testing.assert_allclose(b.frames[1][0], a.frames[1][0], rtol=2e-3, atol=2e-3)
    size = lambda store: sum(p.stat().st_size for p in (store.root / "shards").iterdir())  # noqa: E731
    assert size(half) < 0.6 * size(full)


def test_bad_files_are_reported_and_the_rest_is_extracted(tmp_path, data, encoder):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEnot really")
    clips = [Clip(tmp_path / "missing.wav", ("low",)), *data.clips[:3], Clip(broken, ("mid",))]
    report = extract_features(encoder, clips, _store(tmp_path / "s", encoder), batch_size=2)
    assert report.computed == 3
    assert sorted(f.index for f in report.failures) == [0, 4]
    assert all(str(f.clip.path) in str(f.error) for f in report.failures)


def test_corrupt_index_and_unknown_keys_raise_typed_errors(tmp_path, data, encoder):
    store = _store(tmp_path, encoder)
    extract_features(encoder, data.clips[:2], store)
    with pytest.raises(MissingFeatures):
        store.load(["nope"])
    record = tmp_path / "index" / "000000.json"
    record.write_text(json.dumps({"shard": "../../etc/passwd", "keys": ["x"]}))
    with pytest.raises(FeatureStoreError, match="000000.json"):
        _store(tmp_path, encoder)


def test_a_second_process_cannot_open_a_store_in_use(tmp_path, encoder):
    import subprocess
    import sys
    import textwrap

    root = tmp_path / "store"
    first = _store(root, encoder)
    again = _store(root, encoder)  # the same process may open it twice
    code = textwrap.dedent(f"""
        from chorus.encoders import load_encoder
        from chorus.features import FeatureStore, FeatureStoreBusy, SafetensorsShards, store_header
        try:
            FeatureStore({str(root)!r}, store_header(load_encoder("toy-cnn")), SafetensorsShards(True))
        except FeatureStoreBusy as exc:
            print("busy:", exc)
    """)

    def other_process() -> str:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    refused = other_process()
    assert refused.startswith("busy:") and str(root) in refused
    del first
    assert "busy:" in other_process()  # `again` still holds it
    del again
    assert other_process() == ""


@pytest.mark.parametrize("pooling", ["max", "mean+max"])
def test_embed_pools_by_max_or_both_and_refuses_a_store_of_another_pooling(tmp_path, data, encoder, pooling):
    from chorus.encoders import pool_frames
    from chorus.features import embed_manifest, read_embeddings
    from chorus.features.errors import FeatureError

    report = embed_manifest(encoder, data, tmp_path / "emb", pooling=pooling)
    assert report.computed == len(data.clips)
    table = read_embeddings(tmp_path / "emb").to_pydict()
    order = [table["path"].index(str(clip.path)) for clip in data.clips]
    with torch.no_grad():  # each clip alone: no padding
        outputs = [encoder(torch.from_numpy(w)[None], torch.tensor([len(w)]))
                   for w in (load_clip(c, 16_000) for c in data.clips)]
    for layer, name in enumerate(encoder.layer_names):
        stored = np.asarray([table[f"layer_{name}"][i] for i in order], dtype=np.float32)
        expected = np.concatenate([pool_frames(o.hidden[layer], o.masks[layer], pooling).numpy() for o in outputs])
        assert stored.shape == (len(data.clips), encoder.layer_dims[layer] * (2 if pooling == "mean+max" else 1))
        np.testing.assert_allclose(stored, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(FeatureStoreMismatch):
        embed_manifest(encoder, data, tmp_path / "emb", pooling="mean")
    with pytest.raises(FeatureError, match="unknown pooling"):
        embed_manifest(encoder, data, tmp_path / "other", pooling="median")


def test_mean_pooled_store_header_is_unchanged_by_the_pooling_option(encoder):
    assert "pooling" not in store_header(encoder) and store_header(encoder) == store_header(encoder, pooling="mean")
    assert store_header(encoder, pooling="max")["pooling"] == "max"
