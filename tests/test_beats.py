"""BEATs: official checkpoint format, safe loading, relative position buckets, and the
torch Kaldi fbank against a straightforward numpy version."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chorus.encoders import EncoderLoadError, load_encoder
from chorus.encoders.beats_network import relative_position_buckets
from chorus.encoders.errors import UnsupportedArchitecture
from chorus.encoders.kaldi_fbank import fbank

CFG = dict(input_patch_size=16, embed_dim=16, conv_bias=False, encoder_layers=2, encoder_embed_dim=32,
           encoder_ffn_embed_dim=37, encoder_attention_heads=2, activation_fn="gelu", layer_norm_first=False,
           deep_norm=True, conv_pos=16, conv_pos_groups=2, relative_position_embedding=True, num_buckets=32,
           max_distance=64, gru_rel_pos=True, encoder_layerdrop=0.05, layer_wise_gradient_decay_ratio=0.6,
           dropout=0.0, attention_dropout=0.0)


def official_shapes(cfg: dict, classes: int | None = None) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of the official BEATs state dict (microsoft/unilm beats/BEATs.py,
    backbone.py), written out by hand: every layer stores the shared relative-position table."""
    e, d, f, h = cfg["embed_dim"], cfg["encoder_embed_dim"], cfg["encoder_ffn_embed_dim"], cfg["encoder_attention_heads"]
    k, p = cfg["conv_pos"], cfg["input_patch_size"]
    shapes = {"patch_embedding.weight": (e, 1, p, p), "layer_norm.weight": (e,), "layer_norm.bias": (e,),
              "post_extract_proj.weight": (d, e), "post_extract_proj.bias": (d,),
              "encoder.pos_conv.0.weight_g": (1, 1, k), "encoder.pos_conv.0.weight_v": (d, d // cfg["conv_pos_groups"], k),
              "encoder.pos_conv.0.bias": (d,), "encoder.layer_norm.weight": (d,), "encoder.layer_norm.bias": (d,)}
    for i in range(cfg["encoder_layers"]):
        a = f"encoder.layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            shapes[a + f"self_attn.{proj}.weight"] = (d, d)
            shapes[a + f"self_attn.{proj}.bias"] = (d,)
        shapes[a + "self_attn.relative_attention_bias.weight"] = (cfg["num_buckets"], h)
        shapes[a + "self_attn.grep_linear.weight"] = (8, d // h)
        shapes[a + "self_attn.grep_linear.bias"] = (8,)
        shapes[a + "self_attn.grep_a"] = (1, h, 1, 1)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            shapes[a + f"{norm}.weight"] = (d,)
            shapes[a + f"{norm}.bias"] = (d,)
        shapes[a + "fc1.weight"], shapes[a + "fc1.bias"] = (f, d), (f,)
        shapes[a + "fc2.weight"], shapes[a + "fc2.bias"] = (d, f), (d,)
    if classes:
        shapes["predictor.weight"], shapes["predictor.bias"] = (classes, d), (classes,)
    return shapes


def official_checkpoint(path, cfg: dict = CFG, classes: int | None = None, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    state = {key: 0.1 * torch.randn(shape, generator=generator) for key, shape in official_shapes(cfg, classes).items()}
    shared = state["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    for i in range(1, cfg["encoder_layers"]):
        state[f"encoder.layers.{i}.self_attn.relative_attention_bias.weight"] = shared
    if classes:
        cfg = dict(cfg, finetuned_model=True, predictor_class=classes)
    torch.save({"cfg": cfg, "model": state}, path)
    return state


def waves(durations=(2.0, 1.1), seed=0):
    rng = np.random.default_rng(seed)
    return [torch.from_numpy((0.1 * rng.standard_normal(int(d * 16_000))).astype(np.float32)) for d in durations]


def test_official_checkpoint_loads_weights_where_they_belong(tmp_path):
    state = official_checkpoint(tmp_path / "BEATs_tiny.pt")
    encoder = load_encoder("beats", source=tmp_path / "BEATs_tiny.pt")
    mine = encoder.network.state_dict()
    assert set(mine) | {f"encoder.layers.{i}.self_attn.relative_attention_bias.weight"
                        for i in range(1, CFG["encoder_layers"])} == set(state)
    for key, value in mine.items():
        assert torch.equal(value, state[key]), key
    assert encoder.layer_names == ("layer0", "layer1", "layer2") and encoder.frame_rates[0] == 6.25
    batch = torch.nn.utils.rnn.pad_sequence(waves(), batch_first=True)
    out = encoder(batch, torch.tensor([32_000, 17_600]))
    assert out.hidden[0].shape == (2, 12, 32)  # 198 fbank frames -> 12 time patches
    assert out.masks[0].sum(dim=1).tolist() == [12, 6]


def test_fine_tuned_checkpoint_exposes_the_audioset_logits(tmp_path):
    official_checkpoint(tmp_path / "ft.pt", classes=5)
    encoder = load_encoder("beats", source=tmp_path / "ft.pt")
    assert encoder.layer_names[-1] == "predictor" and encoder.layer_dims[-1] == 5
    wave = waves((1.5,))[0][None]
    with torch.no_grad():
        out = encoder(wave, torch.tensor([wave.shape[1]]))
        tokens = encoder.network(*_fbank_and_mask(encoder, wave))[-1].flatten(1, 2)
        clip_logits = encoder.network.predictor(tokens).mean(dim=1)  # the official clip-level logit
    torch.testing.assert_close(out.pooled()[-1], clip_logits)


def _fbank_and_mask(encoder, wave):
    from chorus.encoders.beats_network import FBANK_MEAN, FBANK_STD

    bank = (fbank(wave * 2**15, 16_000, 128) - FBANK_MEAN) / (2 * FBANK_STD)
    return bank, torch.zeros(1, bank.shape[1] // 16, dtype=torch.bool)


def test_shared_position_table_copies_must_agree(tmp_path):
    official_checkpoint(tmp_path / "a.pt")
    checkpoint = torch.load(tmp_path / "a.pt", weights_only=True)
    checkpoint["model"]["encoder.layers.1.self_attn.relative_attention_bias.weight"] = torch.zeros(32, 2)
    torch.save(checkpoint, tmp_path / "b.pt")
    with pytest.raises(EncoderLoadError, match="relative position"):
        load_encoder("beats", source=tmp_path / "b.pt")


class Payload:
    """Stands for any object a pickle could smuggle in; safe loading must refuse it."""


def test_checkpoints_are_never_unpickled(tmp_path):
    state = official_checkpoint(tmp_path / "ok.pt")
    torch.save({"cfg": CFG, "model": state, "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(EncoderLoadError, match="evil.pt"):
        load_encoder("beats", source=tmp_path / "evil.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderLoadError, match="broken.pt"):
        load_encoder("beats", source=tmp_path / "broken.pt")


def test_missing_or_unsupported_checkpoints_are_typed_errors(tmp_path):
    with pytest.raises(EncoderLoadError, match="unilm"):
        load_encoder("beats")
    with pytest.raises(EncoderLoadError, match="no such checkpoint"):
        load_encoder("beats", source=tmp_path / "absent.pt")
    state = official_checkpoint(tmp_path / "glu.pt")
    torch.save({"cfg": dict(CFG, activation_fn="glu"), "model": state}, tmp_path / "glu.pt")
    with pytest.raises(UnsupportedArchitecture, match="glu"):
        load_encoder("beats", source=tmp_path / "glu.pt")


def test_pretrained_false_keeps_the_architecture_only(tmp_path):
    state = official_checkpoint(tmp_path / "a.pt")
    encoder = load_encoder("beats", source=tmp_path / "a.pt", pretrained=False)
    assert encoder.network.state_dict().keys() <= state.keys()
    assert not torch.equal(encoder.network.encoder.layers[0].fc1.weight, state["encoder.layers.0.fc1.weight"])


def test_relative_position_buckets_by_hand():
    # 320 buckets, max distance 800 (the released models): 160 per direction, 80 exact
    offsets = torch.tensor([0, 5, -5, 79, -79, -80, -252, -800, 100_000])
    expected = [0, 165, 5, 239, 79, 80, 80 + math.floor(math.log(252 / 80) / math.log(10) * 80), 159, 319]
    assert relative_position_buckets(offsets, 320, 800).tolist() == expected


def numpy_kaldi_fbank(wave: np.ndarray, rate: int, bins: int, window_type: str) -> np.ndarray:
    """Kaldi fbank written frame by frame (float64), as the Kaldi documentation describes it."""
    size, shift, fft = int(0.025 * rate), int(0.010 * rate), 512
    n = np.arange(size)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / (size - 1))
    if window_type == "povey":
        window = window**0.85

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    low, high = mel(20.0), mel(rate / 2)
    step = (high - low) / (bins + 1)
    filters = np.zeros((bins, fft // 2 + 1))
    for m in range(bins):
        left, centre, right = low + m * step, low + (m + 1) * step, low + (m + 2) * step
        for k in range(fft // 2):
            point = mel(k * rate / fft)
            if left < point < right:
                filters[m, k] = (point - left) / (centre - left) if point <= centre else (right - point) / (right - centre)
    out = []
    for start in range(0, len(wave) - size + 1, shift):
        frame = wave[start:start + size].astype(np.float64)
        frame = frame - frame.mean()
        frame = np.append(frame[0] - 0.97 * frame[0], frame[1:] - 0.97 * frame[:-1])
        power = np.abs(np.fft.rfft(frame * window, n=fft)) ** 2
        out.append(np.log(np.maximum(filters @ power, np.finfo(np.float32).eps)))
    return np.array(out)


@pytest.mark.parametrize("window_type", ["povey", "hanning"])
def test_kaldi_fbank_matches_numpy(window_type):
    wave = waves((0.3,), seed=3)[0] * 2**15
    ours = fbank(wave[None], 16_000, 128, window_type=window_type)[0].double().numpy()
    reference = numpy_kaldi_fbank(wave.numpy(), 16_000, 128, window_type)
    assert ours.shape == reference.shape == (1 + (4800 - 400) // 160, 128)
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_kaldi_fbank_of_a_clip_shorter_than_a_frame_is_empty():
    assert fbank(torch.zeros(2, 399), 16_000, 128).shape == (2, 0, 128)
