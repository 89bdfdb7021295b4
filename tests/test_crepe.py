"""CREPE encoders: the shipped weights load and find pitch; padding never changes features."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from chorus.encoders import EncoderLoadError, build_encoder, load_encoder
from chorus.encoders.crepe import CENTS_OFFSET, CENTS_PER_BIN, PITCH_BINS, Crepe
from encoder_checks import assert_padding_exact


def logits_to_hz(logits: Tensor) -> Tensor:
    """Pitch in Hz from ``logits [..., 360]``: the activation-weighted mean of the cents of
    the 9 bins around the most active one (CREPE's local average)."""
    activation = torch.sigmoid(logits)
    centre = activation.argmax(dim=-1, keepdim=True)
    window = (centre + torch.arange(-4, 5, device=logits.device)).clamp(0, PITCH_BINS - 1)
    weights = activation.gather(-1, window)
    cents = CENTS_OFFSET + CENTS_PER_BIN * window.to(logits.dtype)
    mean_cents = (weights * cents).sum(-1) / weights.sum(-1).clamp_min(1e-12)
    return 10.0 * 2.0 ** (mean_cents / 1200.0)


def _sine(hz: float, seconds: float, rate: int = 16_000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    return (0.5 * torch.sin(2 * math.pi * hz * t)).float()


def _pitch(model, hz: float, seconds: float) -> torch.Tensor:
    x = _sine(hz, seconds)
    with torch.inference_mode():
        outputs = model(x[None], torch.tensor([len(x)]))
    assert model.layer_names[-1] == "logits" and outputs.hidden[-1].shape[-1] == 360
    return logits_to_hz(outputs.hidden[-1][0, 2:-2])  # frames whose window lies inside the sine


@pytest.mark.parametrize("hz", [440.0, 261.63])
def test_crepe_tiny_finds_the_pitch_of_a_sine(hz):
    estimates = _pitch(load_encoder("crepe-tiny"), hz, 0.25)
    cents_off = 1200 * torch.log2(estimates / hz)
    assert cents_off.abs().max() < 25


def test_crepe_full_finds_440_hz():
    estimates = _pitch(load_encoder("crepe-full"), 440.0, 0.08)
    assert (1200 * torch.log2(estimates / 440.0)).abs().max() < 25


def test_random_crepe_does_not_find_the_pitch():
    estimates = _pitch(load_encoder("crepe-tiny", pretrained=False), 440.0, 0.25)
    assert (1200 * torch.log2(estimates / 440.0)).abs().median() > 100


def test_crepe_clip_alone_and_in_padded_batch_agree_on_every_layer():
    assert_padding_exact(load_encoder("crepe-micro"), [4000, 2561, 700, 100])
    assert_padding_exact(load_encoder("crepe-tiny"), [1600, 900])


def test_frames_layers_and_architecture():
    model = Crepe(channels=(16, 8, 8, 8, 8, 16), hop=320)
    with torch.inference_mode():
        outputs = model(torch.randn(2, 3200), torch.tensor([3200, 1000]))
    assert [int(m.sum()) for m in outputs.masks[0]] == [11, 4]  # 1 + samples // hop
    assert [h.shape[-1] for h in outputs.hidden] == [16, 8, 8, 8, 8, 16, 360]
    assert model.frame_rates == (50.0,) * 7
    assert (outputs.hidden[3][1, 4:] == 0).all()
    rebuilt = build_encoder(model.architecture())
    assert rebuilt.hop == 320 and rebuilt.layer_dims == model.layer_dims


def test_unreadable_crepe_weights_name_the_file(tmp_path):
    bad = tmp_path / "tiny.pth"
    bad.write_bytes(b"\x00\x01 not torch")
    with pytest.raises(EncoderLoadError, match="tiny.pth"):
        load_encoder("crepe-tiny", source=bad)
