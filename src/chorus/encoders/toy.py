"""``toy-cnn``: a tiny random 1-D CNN for tests and smoke runs (no pretrained weights).

Three layers: a strided waveform convolution (25 ms window, 10 ms hop at 16 kHz) then two
stride-2 convolutions, each with BatchNorm and ReLU. Padded frames are zeroed after every
layer, so a clip's features do not depend on the batch it sits in.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .base import Encoder, LayerOutputs, lengths_to_mask
from .registry import EncoderSpec, register_encoder, register_family

SAMPLE_RATE = 16_000
WINDOW, HOP = 400, 160


class ToyCNN(Encoder):
    def __init__(self, channels: Sequence[int] = (16, 32, 32)):
        super().__init__()
        self.name = "toy-cnn"
        self.sample_rate = SAMPLE_RATE
        self.channels = tuple(int(c) for c in channels)
        self.layer_names = tuple(f"conv{i + 1}" for i in range(len(self.channels)))
        self.layer_dims = self.channels
        self.frame_rates = tuple(SAMPLE_RATE / HOP / 2**i for i in range(len(self.channels)))
        blocks = [nn.Sequential(nn.Conv1d(1, self.channels[0], WINDOW, stride=HOP),
                                nn.BatchNorm1d(self.channels[0]), nn.ReLU())]
        for c_in, c_out in zip(self.channels, self.channels[1:]):
            blocks.append(nn.Sequential(nn.Conv1d(c_in, c_out, 3, stride=2, padding=1),
                                        nn.BatchNorm1d(c_out), nn.ReLU()))
        self.blocks = nn.ModuleList(blocks)
        self.layer_modules = tuple(f"blocks.{i}" for i in range(len(self.blocks)))

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        x = waveforms.unsqueeze(1)
        if x.shape[-1] < WINDOW:
            x = nn.functional.pad(x, (0, WINDOW - x.shape[-1]))
        frames = torch.div(lengths - WINDOW, HOP, rounding_mode="floor").clamp_min(-1) + 1
        hidden, masks = [], []
        for index, block in enumerate(self.blocks):
            if index:
                frames = torch.div(frames + 1, 2, rounding_mode="floor")
            x = block(x)
            mask = lengths_to_mask(frames, x.shape[-1])
            x = x * mask.unsqueeze(1).to(x.dtype)
            hidden.append(x.transpose(1, 2))
            masks.append(mask)
        return LayerOutputs(hidden, masks)

    def architecture(self) -> dict[str, Any]:
        return {"family": "toy-cnn", "channels": list(self.channels)}


def _build(architecture: dict[str, Any]) -> ToyCNN:
    return ToyCNN(architecture.get("channels", (16, 32, 32)))


def _load(source: str | None, pretrained: bool) -> ToyCNN:
    return ToyCNN()


register_family("toy-cnn", _build)
register_encoder(EncoderSpec(
    name="toy-cnn", family="toy-cnn", description="tiny random 1-D CNN for tests and smoke runs",
    sample_rate=SAMPLE_RATE, num_layers=3, num_parameters=11_248, weights="random (tiny test config)",
    loader=_load, for_tests=True,
))
