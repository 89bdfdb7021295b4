"""``sfx-cnn``: the pretrained sound-effects CNN, chorus's default encoder.

Ma & Lerch, "Representation learning for the automatic indexing of sound effects
libraries" (ISMIR 2022); weights from the ``aisfx`` wheel (CC BY 4.0), read with
``torch.load(weights_only=True)`` and an explicit allowlist, mapped onto a network
written here: four conv blocks, each 2 x (3x3 conv without bias + BatchNorm + ReLU) then
2x2 max-pooling (none after the fourth), channels 1 -> 64 -> 128 -> 256 -> 512, over the
log-mel front-end of :mod:`chorus.encoders.sfx_frontend`.

Layers: the output of each block, averaged over the frequency axis (as the original does
before pooling over time): ``[batch, frames, channels]`` at 21.5, 10.8, 5.4 and 5.4 Hz.
Padded frames are zeroed after every convolution so that a clip's features do not depend
on its batch (in eval mode; in train mode BatchNorm batch statistics see padding).

``sfx-cnn-tiny`` is the same network with 8/8/16/16 channels and random weights, for tests.
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
from .sfx_frontend import FRAME_RATE, N_MELS, SAMPLE_RATE, SfxFrontEnd

FULL_CHANNELS = (64, 128, 256, 512)
TINY_CHANNELS = (8, 8, 16, 16)
POOLS = (True, True, True, False)
AISFX_HINT = "install them with `pip install --no-deps aisfx==0.1.2`"


def _checkpoint_allowlist() -> list:
    """The globals aisfx's pickled checkpoint needs beyond tensors: NumPy scalars and
    dtypes in its ``{dataset: (index, classes)}`` dict."""
    import numpy

    return [(numpy._core.multiarray.scalar, "numpy.core.multiarray.scalar"), numpy.dtype, numpy.dtypes.Int64DType]


class ConvBlock(nn.Module):
    """2 x (3x3 conv, no bias -> BatchNorm -> ReLU), zeroing padded frames after each."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        for conv in (self.conv1, self.conv2):  # the original's initialisation
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="leaky_relu")

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x [batch, channels, frames, mels]``, ``mask [batch, 1, frames, 1]``."""
        x = torch.relu(self.bn1(self.conv1(x))) * mask
        return torch.relu(self.bn2(self.conv2(x))) * mask


def conv_blocks(channels: Sequence[int], pools: Sequence[bool], frame_rate: float
                ) -> tuple[nn.ModuleList, tuple[float, ...]]:
    """One :class:`ConvBlock` per width of ``channels`` (the first reading one input
    channel) and each block's output frame rate (Hz) from the front end's ``frame_rate``,
    halved after every pooled block."""
    if len(channels) != len(pools):
        raise ValueError(f"{len(pools)} blocks, got channels {list(channels)}")
    rates, rate = [], frame_rate
    for pool in pools:
        rate = rate / 2 if pool else rate
        rates.append(rate)
    blocks = nn.ModuleList(ConvBlock(c_in, c_out) for c_in, c_out in zip((1, *channels[:-1]), channels))
    return blocks, tuple(rates)


def run_blocks(blocks: nn.ModuleList, pools: Sequence[bool], spec: Tensor, frames: Tensor) -> LayerOutputs:
    """``spec [batch, frames, bands]`` (``frames [batch]`` valid) through ``blocks``, 2x2
    max-pooling after each pooled block; layer ``i``: block ``i``'s output averaged over
    frequency, ``[batch, frames_i, channels_i]``, with its mask."""
    x = spec.unsqueeze(1)
    hidden, masks = [], []
    for block, pool in zip(blocks, pools):
        mask = lengths_to_mask(frames, x.shape[2])
        x = block(x, mask[:, None, :, None].to(x.dtype))
        if pool:
            if x.shape[2] < 2:  # a clip too short to pool keeps one (masked) frame
                x = nn.functional.pad(x, (0, 0, 0, 2 - x.shape[2]))
            x = nn.functional.max_pool2d(x, 2)
            frames = torch.div(frames, 2, rounding_mode="floor")
            mask = lengths_to_mask(frames, x.shape[2])
            x = x * mask[:, None, :, None].to(x.dtype)  # a pair cut short by the clip's end
        hidden.append(x.mean(dim=3).transpose(1, 2))
        masks.append(mask)
    return LayerOutputs(hidden, masks)


class SfxCNN(Encoder):
    """The sound-effects CNN over waveforms at 44.1 kHz (random weights until loaded).

    Its checkpoint was trained on the mean over frequency then the max over time of the
    last block; every exposed layer is already frequency-averaged, so its native pooling
    is the max over valid frames.
    """

    native_pooling = "max"

    def __init__(self, channels: Sequence[int] = FULL_CHANNELS, peak_normalise: bool = True):
        super().__init__()
        self.name = "sfx-cnn"
        self.sample_rate = SAMPLE_RATE
        self.channels = tuple(int(c) for c in channels)
        self.layer_names = tuple(f"block{i + 1}" for i in range(len(self.channels)))
        self.layer_dims = self.channels
        self.frontend = SfxFrontEnd(peak_normalise)
        self.blocks, self.frame_rates = conv_blocks(self.channels, POOLS, FRAME_RATE)
        self.layer_modules = tuple(f"blocks.{i}" for i in range(len(self.blocks)))

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        spec, frames = self.frontend(waveforms, lengths)
        return run_blocks(self.blocks, POOLS, spec, frames)

    def architecture(self) -> dict[str, Any]:
        return {"family": "sfx-cnn", "channels": list(self.channels),
                "peak_normalise": self.frontend.peak_normalise, "n_mels": N_MELS}

    def load_aisfx_state(self, state: Mapping[str, Tensor], source: str | Path) -> None:
        """Copy the ``embedding_net.*`` tensors of an aisfx checkpoint into this network."""
        prefix = "embedding_net.conv_block"
        mapped = {}
        for key, tensor in state.items():
            if key.startswith(prefix):
                block, _, rest = key[len(prefix):].partition(".")
                mapped[f"blocks.{int(block) - 1}.{rest}"] = tensor
        missing, unexpected = self.load_state_dict(mapped, strict=False)
        if missing or unexpected:
            raise EncoderLoadError(f"{source}: not an sfx-cnn checkpoint of this size "
                                   f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def read_aisfx_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The state dict of an aisfx checkpoint (a pickle of ``(state_dict, datasets)``),
    unpickled with ``weights_only=True`` and only NumPy scalar/dtype globals allowed."""
    try:
        with torch.serialization.safe_globals(_checkpoint_allowlist()):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise EncoderLoadError(f"{path}: cannot read the sfx-cnn checkpoint safely: {exc}") from exc
    state = loaded[0] if isinstance(loaded, tuple) else loaded
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise EncoderLoadError(f"{path}: expected (state_dict, datasets) or a state dict")
    return state


def load_sfx_cnn(source: str | None = None, pretrained: bool = True) -> SfxCNN:
    """The full network; with ``pretrained`` the aisfx weights (or ``source``: an aisfx-format
    ``.pth`` or a ``.safetensors`` of this network's state dict)."""
    model = SfxCNN(FULL_CHANNELS)
    if not pretrained:
        return model
    path = Path(source) if source else packaged_file("aisfx", "models", "checkpoint.pth", install_hint=AISFX_HINT)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
        if missing or unexpected:
            raise EncoderLoadError(f"{path}: tensors do not match sfx-cnn (missing {missing[:3]}, "
                                   f"unexpected {unexpected[:3]})")
    else:
        model.load_aisfx_state(read_aisfx_checkpoint(path), path)
    return model


def _build(architecture: dict[str, Any]) -> SfxCNN:
    return SfxCNN(architecture.get("channels", FULL_CHANNELS), architecture.get("peak_normalise", True))


def _load_tiny(source: str | None, pretrained: bool) -> SfxCNN:
    return SfxCNN(TINY_CHANNELS)


register_family("sfx-cnn", _build)
register_encoder(EncoderSpec(
    name="sfx-cnn", family="sfx-cnn",
    description="sound-effects CNN (Ma & Lerch, ISMIR 2022), log-mel at 44.1 kHz, 4 conv blocks",
    sample_rate=SAMPLE_RATE, num_layers=4, num_parameters=4_686_144,
    weights="aisfx 0.1.2 wheel (CC BY 4.0)", loader=load_sfx_cnn,
))
register_encoder(EncoderSpec(
    name="sfx-cnn-tiny", family="sfx-cnn", description="sfx-cnn with 8/8/16/16 channels, random (tests)",
    sample_rate=SAMPLE_RATE, num_layers=4, num_parameters=10_056, weights="random (tiny test config)",
    loader=_load_tiny, for_tests=True,
))
