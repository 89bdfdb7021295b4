"""Every family's tiny random encoder: shapes, rates, masks, padding, rebuild, gradients,
and loading from a local directory laid out like its hub repository (no hub anywhere)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from chorus.encoders import (
    EncoderLoadError,
    build_encoder,
    encoder_specs,
    get_spec,
    load_encoder,
    pad_batch,
    pooled_features,
)
from chorus.encoders.errors import UnsupportedArchitecture

TINY = ["wavlm-tiny", "hubert-tiny", "wav2vec2-tiny", "mert-tiny", "ast-tiny", "whisper-tiny-random",
        "clap-tiny", "beats-tiny"]
DURATIONS = (1.3, 0.7)  # seconds: longer than the tiny fixed windows (1 s, 0.64 s) and shorter


@pytest.fixture(scope="module")
def encoders():
    return {name: load_encoder(name) for name in TINY}


def clips(sample_rate: int, durations=DURATIONS, seed: int = 0) -> list[np.ndarray]:
    """Noise plus a tone, one clip per duration."""
    rng = np.random.default_rng(seed)
    out = []
    for duration in durations:
        t = np.arange(int(duration * sample_rate)) / sample_rate
        out.append((0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    return out


def run(encoder, waveforms):
    batch, lengths = pad_batch(waveforms)
    with torch.no_grad():
        return encoder(batch, lengths)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@pytest.mark.parametrize("name", TINY)
def test_layers_shapes_rates_and_masks(encoders, name):
    encoder = encoders[name]
    spec = get_spec(name)
    assert encoder.sample_rate == spec.sample_rate
    assert len(encoder.layer_names) == len(encoder.layer_dims) == len(encoder.frame_rates) == spec.num_layers
    out = run(encoder, clips(encoder.sample_rate))
    assert len(out) == spec.num_layers
    counts = []
    for hidden, mask, dim in zip(out.hidden, out.masks, encoder.layer_dims):
        assert hidden.shape[0] == 2 and hidden.shape[2] == dim and mask.shape == hidden.shape[:2]
        assert torch.isfinite(hidden).all()
        counts.append(mask.sum(dim=1).tolist())
    for (long, short), rate in zip(counts, encoder.frame_rates):
        assert long > short >= 1
        if rate > 2:  # every layer but CLAP's one-frame-per-window projection
            for count, duration in zip((long, short), DURATIONS):
                assert abs(count - duration * rate) <= 0.25 * duration * rate + 1, (count, duration, rate)


@pytest.mark.parametrize("name", TINY)
def test_padding_never_changes_a_clip(encoders, name):
    encoder = encoders[name]
    waves = clips(encoder.sample_rate) + clips(encoder.sample_rate, seed=1)  # two of each length
    if encoder.pads_exactly:
        together = run(encoder, waves)
        for row, wave in enumerate(waves):
            alone = run(encoder, [wave])
            for hidden, mask, single, single_mask in zip(together.hidden, together.masks, alone.hidden, alone.masks):
                assert mask[row].sum() == single_mask[0].sum()
                assert relative_error(hidden[row][mask[row]], single[0][single_mask[0]]) < 1e-4
    else:
        # group-norm front ends: batching groups equal lengths, so results match clip by clip
        batched = pooled_features(encoder, waves, batch_size=4)
        for row, wave in enumerate(waves):
            alone = run(encoder, [wave]).pooled()
            for layer, single in zip(batched, alone):
                assert relative_error(torch.from_numpy(layer[row]), single[0]) < 1e-5


@pytest.mark.parametrize("name", TINY)
def test_architecture_rebuilds_the_network_without_hub(encoders, name):
    encoder = encoders[name]
    architecture = json.loads(json.dumps(encoder.architecture()))
    rebuilt = build_encoder(architecture, seed=1)
    waves = clips(encoder.sample_rate)
    assert relative_error(run(rebuilt, waves).hidden[-1], run(encoder, waves).hidden[-1]) > 1e-3
    rebuilt.load_state_dict(encoder.state_dict())
    for a, b in zip(run(rebuilt, waves).hidden, run(encoder, waves).hidden):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", TINY)
def test_gradients_reach_the_transformer(encoders, name):
    encoder = encoders[name]
    batch, lengths = pad_batch(clips(encoder.sample_rate))
    encoder.zero_grad()
    encoder.train()
    try:
        out = encoder(batch, lengths)
    finally:
        encoder.eval()
    assert len(out) == len(encoder.layer_names)  # no layer dropped in training
    torch.stack([p.sum() for p in out.pooled()]).sum().backward()
    deepest = max((n for n, _ in encoder.named_parameters() if re.search(r"layers?\.\d+\.", n)),
                  key=lambda n: int(re.search(r"layers?\.(\d+)\.", n).group(1)))
    grad = dict(encoder.named_parameters())[deepest].grad
    assert grad is not None and grad.abs().sum() > 0, deepest
    encoder.zero_grad()


def test_seeded_random_weights_are_reproducible():
    a = load_encoder("wavlm-tiny", seed=3).state_dict()
    b = load_encoder("wavlm-tiny", seed=3).state_dict()
    c = load_encoder("wavlm-tiny", seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# --- local directories laid out like the hub repositories -----------------------------------

def save_speech(encoder, directory, sample_rate=16_000):
    from transformers import Wav2Vec2FeatureExtractor

    encoder.model.save_pretrained(directory)
    Wav2Vec2FeatureExtractor(sampling_rate=sample_rate, do_normalize=True).save_pretrained(directory)


def save_mert(encoder, directory):
    """MERT's hub layout: model_type 'mert_model', auto_map to its remote code, old weight-norm names."""
    config = encoder.model.config.to_dict()
    config.update(model_type="mert_model", architectures=["MERTModel"], feature_extractor_cqt=False,
                  deepnorm=False, attention_relax=-1.0, sample_rate=24_000,
                  auto_map={"AutoModel": "modeling_MERT.MERTModel"})
    (directory / "config.json").write_text(json.dumps(config))
    state = {k.replace("parametrizations.weight.original0", "weight_g")
             .replace("parametrizations.weight.original1", "weight_v"): v
             for k, v in encoder.model.state_dict().items()}
    torch.save(state, directory / "pytorch_model.bin")
    from transformers import Wav2Vec2FeatureExtractor

    Wav2Vec2FeatureExtractor(sampling_rate=24_000, do_normalize=True).save_pretrained(directory)


def save_ast(encoder, directory):
    from transformers import ASTFeatureExtractor

    encoder.model.save_pretrained(directory)
    ASTFeatureExtractor(num_mel_bins=encoder.num_mel_bins, max_length=encoder.max_length).save_pretrained(directory)


def save_whisper(encoder, directory):
    """A full encoder-decoder checkpoint, as on the hub."""
    from transformers import WhisperForConditionalGeneration

    full = WhisperForConditionalGeneration(encoder.model.config)
    full.model.encoder.load_state_dict(encoder.model.state_dict())
    full.save_pretrained(directory)
    encoder.feature_extractor.save_pretrained(directory)


def save_clap(encoder, directory):
    """A full text + audio ClapModel checkpoint, as on the hub."""
    from transformers import ClapConfig, ClapModel, ClapTextConfig

    text = ClapTextConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=20, projection_dim=16, max_position_embeddings=40)
    full = ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=encoder.model.config.to_dict(),
                                projection_dim=16))
    full.audio_model.load_state_dict(encoder.model.audio_model.state_dict())
    full.audio_projection.load_state_dict(encoder.model.audio_projection.state_dict())
    full.save_pretrained(directory)
    encoder.feature_extractor.save_pretrained(directory)


LOCAL = [
    ("wavlm-tiny", "wavlm-base-plus", save_speech),
    ("hubert-tiny", "hubert-base", save_speech),
    ("wav2vec2-tiny", "wav2vec2-base", save_speech),
    ("mert-tiny", "mert-v1-95m", save_mert),
    ("ast-tiny", "ast", save_ast),
    ("whisper-tiny-random", "whisper-base", save_whisper),
    ("clap-tiny", "clap-htsat", save_clap),
]


@pytest.mark.parametrize("tiny,name,save", LOCAL, ids=[row[1] for row in LOCAL])
def test_registered_name_loads_a_local_directory(encoders, tmp_path, tiny, name, save):
    encoder = encoders[tiny]
    save(encoder, tmp_path)
    loaded = load_encoder(name, source=tmp_path)
    assert loaded.name == name and not loaded.training
    assert loaded.sample_rate == encoder.sample_rate and loaded.layer_dims == encoder.layer_dims
    waves = clips(encoder.sample_rate)
    for a, b in zip(run(loaded, waves).hidden, run(encoder, waves).hidden):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    untrained = load_encoder(name, source=tmp_path, pretrained=False, seed=1)
    assert untrained.layer_dims == encoder.layer_dims
    assert relative_error(run(untrained, waves).hidden[-1], run(encoder, waves).hidden[-1]) > 1e-3


def test_a_directory_of_another_family_is_refused(encoders, tmp_path):
    save_speech(encoders["wavlm-tiny"], tmp_path)
    with pytest.raises(EncoderLoadError, match="'wavlm' model"):
        load_encoder("hubert-base", source=tmp_path)


def test_missing_weights_are_a_typed_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "audio-spectrogram-transformer"}))
    with pytest.raises(EncoderLoadError, match="ast"):
        load_encoder("ast", source=tmp_path)
    with pytest.raises(EncoderLoadError, match="config.json"):
        load_encoder("whisper-base", source=tmp_path / "absent")


@pytest.mark.parametrize("feature", ["deepnorm", "feature_extractor_cqt"])
def test_mert_features_hubert_lacks_are_refused(encoders, tmp_path, feature):
    save_mert(encoders["mert-tiny"], tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[feature] = True
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedArchitecture, match=feature):
        load_encoder("mert-v1-95m", source=tmp_path)


def test_clap_with_feature_fusion_is_refused(encoders, tmp_path):
    save_clap(encoders["clap-tiny"], tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["audio_config"]["enable_fusion"] = True
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedArchitecture, match="fusion"):
        load_encoder("clap-htsat", source=tmp_path)


def test_clap_projection_is_the_audio_embedding(encoders):
    encoder = encoders["clap-tiny"]
    wave = clips(encoder.sample_rate, durations=(0.6,))[0]
    features = encoder.feature_extractor([wave], sampling_rate=encoder.sample_rate, truncation="rand_trunc",
                                         padding="repeatpad", return_tensors="pt")["input_features"]
    with torch.no_grad():
        expected = encoder.model(input_features=features).audio_embeds
    torch.testing.assert_close(run(encoder, [wave]).pooled()[-1], expected)


def test_group_norm_models_batch_equal_lengths_only(encoders):
    assert encoders["wavlm-tiny"].pads_exactly  # layer-norm front end
    for name in ("hubert-tiny", "wav2vec2-tiny", "mert-tiny"):
        assert not encoders[name].pads_exactly


def test_cli_lists_at_least_ten_pretrained_backbones(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = run_cli("encoders")
    assert result.exit_code == 0
    for name in ("wavlm-base-plus", "hubert-base", "wav2vec2-base", "ast", "whisper-base", "clap-htsat",
                 "mert-v1-95m", "beats"):
        assert name in result.output
    pretrained = [s.name for s in encoder_specs() if not s.weights.startswith("random")]
    assert len(pretrained) >= 10, pretrained


def test_tiny_configs_state_their_true_parameter_counts():
    for spec in encoder_specs(include_test_configs=True):
        if spec.weights.startswith("random"):
            built = load_encoder(spec.name, pretrained=False, seed=0)
            assert spec.num_parameters == built.num_parameters, spec.name
