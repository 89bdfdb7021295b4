"""The BirdNET V2.4 network (Kahl et al., BirdNET-Analyzer) written as a torch module.

One input is a 3 s window at 48 kHz (144,000 samples). Layout follows the original graph
(``BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite``), in torch's ``[batch, channels, mels, frames]``:

- front end: each window min/max-normalised to [-1, 1]; two spectrogram branches, each
  framed (Hann window), real part of the DFT computed in float64 (the original casts the
  complex spectrum to float, which keeps the real part), a mel filterbank, squared, raised to a learned
  exponent, mel axis reversed (highest band first): 96 mels x 511 frames per branch,
  stacked as 2 channels and scaled per channel (a folded batch norm);
- stem: 4x8 conv, stride 2, "same" padding, ReLU; max- and average-pooling over time
  side by side; a 1x1 conv back to ``stem`` channels;
- four stages of inverted-residual blocks (1x1 expand + swish, 3x3 depthwise + swish,
  squeeze-excitation in stages 2-4, 1x1 project; the first block of a stage halves both
  axes, the others add their input); batch norms are folded into the convs, as stored;
- post: per-channel scale and shift + ReLU, a 3x3 conv (no padding) + ReLU to ``post``
  channels, the mean over the map (the embedding), a dense layer to the species logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

SAMPLE_RATE = 48_000
WINDOW = 144_000  # samples per input window (3 s)


@dataclass(frozen=True)
class Branch:
    """One spectrogram branch: frame length and hop (samples), mel band edges (Hz)."""

    n_fft: int
    hop: int
    fmin: float
    fmax: float


BRANCHES = (Branch(2048, 278, 0.0, 3000.0), Branch(1024, 280, 500.0, 15_000.0))


@dataclass(frozen=True)
class Stage:
    """``blocks`` inverted-residual blocks expanding to ``expanded`` channels and
    projecting to ``out`` channels, with squeeze-excitation when ``se``."""

    expanded: int
    out: int
    blocks: int
    se: bool


@dataclass(frozen=True)
class BirdNETConfig:
    """Widths of the network; the defaults are V2.4's."""

    stem: int = 24
    stages: tuple[Stage, ...] = (Stage(72, 36, 3, False), Stage(288, 72, 4, True),
                                 Stage(864, 108, 5, True), Stage(1536, 192, 4, True))
    post: int = 1024
    classes: int = 6522
    n_mels: int = 96

    def to_dict(self) -> dict[str, Any]:
        return {"stem": self.stem, "stages": [[s.expanded, s.out, s.blocks, s.se] for s in self.stages],
                "post": self.post, "classes": self.classes, "n_mels": self.n_mels}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BirdNETConfig:
        return cls(stem=int(values["stem"]), stages=tuple(Stage(int(e), int(o), int(b), bool(s))
                                                          for e, o, b, s in values["stages"]),
                   post=int(values["post"]), classes=int(values["classes"]), n_mels=int(values["n_mels"]))

    def block_names(self) -> list[str]:
        """``1-1`` ... in order, as the original names them (``BLOCK_1-1``)."""
        return [f"{s + 1}-{b + 1}" for s, stage in enumerate(self.stages) for b in range(stage.blocks)]


V2_4 = BirdNETConfig()


def mel_filterbank(n_mels: int, n_fft: int, fmin: float, fmax: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular filters on the HTK mel scale (``1127 ln(1 + f / 700)``), peak 1, the DC bin
    left out: ``[n_mels, n_fft // 2 + 1]`` float32 (V2.4's stored matrices, to 2e-5)."""
    mel = 1127.0 * np.log1p(np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)[1:] / 700.0)[:, None]
    edges = np.linspace(*(1127.0 * np.log1p(np.array([fmin, fmax]) / 700.0)), n_mels + 2)
    low, centre, high = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mel - low) / (centre - low), (high - mel) / (high - centre)))
    return np.pad(weights, ((1, 0), (0, 0))).T.astype(np.float32)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) of one axis."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ChannelAffine(nn.Module):
    """``x * weight + bias`` per channel of ``[batch, channels, ...]`` (a folded batch norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape) + self.bias.view(shape)


class MelBranch(nn.Module):
    """Normalised waveform ``[batch, samples]`` -> ``[batch, n_mels, frames]`` (highest band first)."""

    def __init__(self, branch: Branch, n_mels: int):
        super().__init__()
        self.n_fft, self.hop = branch.n_fft, branch.hop
        self.register_buffer("window", torch.hann_window(branch.n_fft, periodic=True))
        self.register_buffer("filters", torch.from_numpy(mel_filterbank(n_mels, branch.n_fft, branch.fmin, branch.fmax)))
        self.exponent = nn.Parameter(torch.tensor(0.25))

    def forward(self, x: Tensor) -> Tensor:
        used = torch.nonzero(self.filters.detach().abs().sum(dim=0))  # the DFT bins any filter reads
        low, high = (int(used.min()), int(used.max()) + 1) if len(used) else (0, 1)
        spec = real_dft(x, self.n_fft, self.hop, self.window, low, high) @ self.filters[:, low:high].T
        return (spec * spec).pow(self.exponent).flip(-1).transpose(1, 2)


def real_dft(x: Tensor, n_fft: int, hop: int, window: Tensor, low: int, high: int) -> Tensor:
    """Real part of DFT bins ``low:high`` of each windowed frame of ``x [batch, samples]``:
    ``[batch, frames, high - low]`` in ``x``'s dtype. As TFLite computes it: frames times
    window in float32, then the DFT in float64 (in near-silent bands, zero-padded tails
    included, the 0.2-0.25 power after it amplifies any other round-off). No gradient flows
    through it to ``window``; on CPU, for inputs without gradient, SciPy's multi-threaded
    FFT does the work (2-4x faster than torch's here), one clip at a time."""
    window = window.detach().to(x.dtype)
    if x.device.type != "cpu" or x.requires_grad:
        frames = (x.unfold(-1, n_fft, hop) * window).double()
        return torch.fft.rfft(frames)[..., low:high].real.to(x.dtype)
    import scipy.fft
    from numpy.lib.stride_tricks import sliding_window_view

    taper = window.numpy()
    out = []
    for row in x.detach().numpy():
        frames = (sliding_window_view(row, n_fft)[::hop] * taper).astype(np.float64)
        out.append(scipy.fft.rfft(frames, workers=torch.get_num_threads())[:, low:high].real.astype(np.float32))
    return torch.from_numpy(np.stack(out)).to(x.dtype)


class FrontEnd(nn.Module):
    """Windows ``[batch, 144000]`` -> spectrograms ``[batch, 2, n_mels, 511]``."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.branches = nn.ModuleList(MelBranch(b, n_mels) for b in BRANCHES)
        self.norm = ChannelAffine(len(BRANCHES))

    def forward(self, x: Tensor) -> Tensor:
        shifted = x - x.amin(dim=-1, keepdim=True)
        x = (shifted / (shifted.amax(dim=-1, keepdim=True) + 1e-6) - 0.5) * 2.0
        return self.norm(torch.stack([branch(x) for branch in self.branches], dim=1))


class Stem(nn.Module):
    """4x8 conv (stride 2, same padding) + ReLU, max|avg pooling over time, 1x1 conv."""

    def __init__(self, channels: int, inputs: int = len(BRANCHES)):
        super().__init__()
        self.conv = nn.Conv2d(inputs, channels, (4, 8), stride=2)
        self.mix = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        (top, bottom), (left, right) = (same_padding(x.shape[2], 4, 2), same_padding(x.shape[3], 8, 2))
        x = F.relu(self.conv(F.pad(x, (left, right, top, bottom))))
        pooled = torch.cat([F.max_pool2d(x, (1, 2)), F.avg_pool2d(x, (1, 2))], dim=1)
        return self.mix(pooled)


class SqueezeExcite(nn.Module):
    """Channel gates from the map's mean: dense + swish, dense + sigmoid (the original's 1x1
    convs on a 1x1 map, as dense layers: the same weights, far fewer conv calls)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.reduce = nn.Linear(channels, hidden)
        self.expand = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.expand(F.silu(self.reduce(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class InvertedResidual(nn.Module):
    """1x1 expand + swish, 3x3 depthwise + swish (stride 2: pad 1 then no padding, as the
    original), optional squeeze-excitation, 1x1 project; adds its input when shapes agree."""

    def __init__(self, inputs: int, expanded: int, out: int, stride: int, se: bool):
        super().__init__()
        self.stride = stride
        self.expand = nn.Conv2d(inputs, expanded, 1)
        self.depthwise = nn.Conv2d(expanded, expanded, 3, stride=stride, padding=1 if stride == 1 else 0,
                                   groups=expanded)
        self.se = SqueezeExcite(expanded, out // 4) if se else None
        self.project = nn.Conv2d(expanded, out, 1)
        self.residual = stride == 1 and inputs == out

    def forward(self, x: Tensor) -> Tensor:
        h = F.silu(self.expand(x))
        if self.stride != 1:
            h = F.pad(h, (1, 1, 1, 1))
        h = F.silu(self.depthwise(h))
        if self.se is not None:
            h = self.se(h)
        h = self.project(h)
        return x + h if self.residual else h


class BirdNETNetwork(nn.Module):
    """Windows ``[batch, 144000]`` at 48 kHz -> every block's map, the embedding, the logits."""

    def __init__(self, config: BirdNETConfig = V2_4):
        super().__init__()
        if not config.stages or any(s.blocks < 1 or s.out < 4 for s in config.stages):
            raise ValueError(f"every stage needs >= 1 block and >= 4 output channels, got {list(config.stages)}")
        self.config = config
        self.frontend = FrontEnd(config.n_mels)
        self.stem = Stem(config.stem)
        blocks, width = [], config.stem
        for stage in config.stages:
            for index in range(stage.blocks):
                blocks.append(InvertedResidual(width, stage.expanded, stage.out, 2 if index == 0 else 1, stage.se))
                width = stage.out
        self.blocks = nn.ModuleList(blocks)
        self.post_norm = ChannelAffine(width)
        self.post_conv = nn.Conv2d(width, config.post, 3)
        self.classifier = nn.Linear(config.post, config.classes)

    def layers(self, windows: Tensor, every_block: bool = True) -> list[Tensor]:
        """Each block's output and the post conv's, averaged over the mel axis:
        ``[batch, frames_l, channels_l]`` (64, 32, 16, 8 frames per window by stage; 6 for the
        last). ``every_block=False``: the last layer only (what the head needs)."""
        x = self.stem(self.frontend(windows).contiguous(memory_format=torch.channels_last))
        out = []
        for block in self.blocks:
            x = block(x)
            if every_block:
                out.append(x.mean(dim=2).transpose(1, 2))
        x = F.relu(self.post_conv(F.relu(self.post_norm(x))))
        out.append(x.mean(dim=2).transpose(1, 2))
        return out

    def head(self, last: Tensor) -> tuple[Tensor, Tensor]:
        """The last layer ``[batch, frames, post]`` -> embedding ``[batch, post]`` (its mean
        over frames) and species logits ``[batch, classes]``."""
        embedding = last.mean(dim=1)
        return embedding, self.classifier(embedding)

    def forward(self, windows: Tensor) -> tuple[Tensor, Tensor]:
        """``windows [batch, 144000]`` -> ``(embedding [batch, post], logits [batch, classes])``."""
        return self.head(self.layers(windows, every_block=False)[-1])


@dataclass(frozen=True)
class LayerTiming:
    """Where a layer's frames sit in a window: ``frames`` of them, ``step`` samples apart,
    the first centred ``first`` samples after the window's start."""

    frames: int
    step: float
    first: float

    def valid(self, lengths: Tensor) -> Tensor:
        """Frames whose centre lies inside the first ``lengths [n]`` samples: ``[n]`` int64, >= 1."""
        count = torch.ceil((lengths.double() - self.first) / self.step).long()
        return count.clamp(1, self.frames)


def layer_timings(config: BirdNETConfig) -> list[LayerTiming]:
    """Timing of each layer of :meth:`BirdNETNetwork.layers` (64, 32, 16, 8 frames per
    window by stage for V2.4; the post conv drops the first and last of stage 4's frames)."""
    frames = min((WINDOW - b.n_fft) // b.hop + 1 for b in BRANCHES)
    frames = -(-frames // 2) // 2  # stem conv (stride 2, same padding), then pooling by 2
    out = []
    for stage in config.stages:
        frames = (frames - 1) // 2 + 1
        out += [LayerTiming(frames, WINDOW / frames, WINDOW / frames / 2)] * stage.blocks
    return out + [LayerTiming(frames - 2, WINDOW / frames, 1.5 * WINDOW / frames)]


def layer_names(config: BirdNETConfig) -> tuple[str, ...]:
    return tuple(f"block{name}" for name in config.block_names()) + ("embedding",)


def layer_widths(config: BirdNETConfig) -> tuple[int, ...]:
    return tuple(s.out for s in config.stages for _ in range(s.blocks)) + (config.post,)
