"""The prior's denoising network: axial attention along frequency and along time.

The input is a compressed spectrogram ``[B, C, F, T]`` (C = 1 magnitude, or 2 real and
imaginary parts; frequency bins; frames). A strided convolution cuts it into ``pf × pt`` patches, giving a
grid ``[B, C, F / pf, T / pt]``; every block then attends along frequency (each frame on
its own), along time (each band on its own), and runs a convolutional feed-forward layer
whose depthwise 3 × 3 kernel carries local order along both axes. The noise level (and a
class, for a class-conditional prior) modulates every sub-layer through adaptive layer
norm with zero-initialised gates, so the network starts as the identity of its skip path
(Peebles & Xie, *Scalable Diffusion Models with Transformers*, 2023).

Attending along the two axes separately, rather than over all time-frequency cells, keeps
the cost at ``O(F·T·(F + T))`` and follows the time-frequency attention backbones of the
diffusion-prior separation work of Shi et al. (*Unsupervised Single-Channel Audio
Separation with Diffusion Source Priors*, 2025), which attend along time and frequency.
Frequency has a learned position embedding (bands are not interchangeable); time has
none, so the network is shift-equivariant in time and runs on any number of frames. A
class-conditional network also learns one frequency embedding per class, added to the
patch grid: sources of different classes differ first in where they sit in frequency,
and this lets the class act on every band directly instead of only through the global
modulation.
"""

from __future__ import annotations

import math
import torch
from torch import nn
from torch.nn import functional as F

from ...schema import FrozenModel


class NetworkConfig(FrozenModel):
    """Sizes of :class:`TFAttentionNet`. ``freq_bins`` must be a multiple of ``patch_freq``."""

    freq_bins: int
    channels: int = 48
    depth: int = 4
    heads: int = 4
    patch_freq: int = 2
    patch_time: int = 2
    mlp_ratio: int = 2
    embed_dim: int = 128
    num_classes: int = 0
    in_channels: int = 1


def _noise_features(c_noise: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``[B, dim]`` of the scalar noise conditioning ``[B]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=c_noise.device, dtype=torch.float32) / half)
    angles = c_noise.float()[:, None] * freqs[None] * 100.0
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class AxisAttention(nn.Module):
    """Multi-head self-attention over sequences ``[N, L, C]``."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, channels = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, channels // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v)
        return self.out(attended.transpose(1, 2).reshape(n, length, channels))


class AxialBlock(nn.Module):
    """Frequency attention, time attention, conv feed-forward; each adaLN-modulated and gated."""

    def __init__(self, channels: int, heads: int, mlp_ratio: int, embed_dim: int):
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(channels, elementwise_affine=False) for _ in range(3))
        self.freq_attention = AxisAttention(channels, heads)
        self.time_attention = AxisAttention(channels, heads)
        hidden = mlp_ratio * channels
        self.ff_in = nn.Conv2d(channels, hidden, 1)
        self.ff_local = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.ff_out = nn.Conv2d(hidden, channels, 1)
        self.modulation = nn.Linear(embed_dim, 9 * channels)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    @staticmethod
    def _modulate(norm: nn.LayerNorm, h: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """LayerNorm over channels of ``[B, Fp, Tp, C]`` then per-example shift/scale ``[B, C]``."""
        return norm(h) * (1 + scale[:, None, None]) + shift[:, None, None]

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``h``: ``[B, Fp, Tp, C]`` channels-last grid; ``emb``: ``[B, E]``."""
        b, fp, tp, c = h.shape
        mods = self.modulation(emb).chunk(9, dim=1)
        x = self._modulate(self.norms[0], h, mods[0], mods[1])
        x = self.freq_attention(x.permute(0, 2, 1, 3).reshape(b * tp, fp, c)).view(b, tp, fp, c).permute(0, 2, 1, 3)
        h = h + mods[2][:, None, None] * x
        x = self._modulate(self.norms[1], h, mods[3], mods[4])
        x = self.time_attention(x.reshape(b * fp, tp, c)).view(b, fp, tp, c)
        h = h + mods[5][:, None, None] * x
        x = self._modulate(self.norms[2], h, mods[6], mods[7]).permute(0, 3, 1, 2)
        x = self.ff_out(F.gelu(self.ff_local(F.gelu(self.ff_in(x))))).permute(0, 2, 3, 1)
        return h + mods[8][:, None, None] * x


class TFAttentionNet(nn.Module):
    """``F(x, c_noise, class_ids)``: ``[B, C, F, T]`` -> ``[B, C, F, T]`` (T padded internally)."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        if config.freq_bins % config.patch_freq:
            raise ValueError(f"freq_bins={config.freq_bins} is not a multiple of patch_freq={config.patch_freq}")
        if config.channels % config.heads:
            raise ValueError(f"channels={config.channels} is not a multiple of heads={config.heads}")
        self.config = config
        c, patch = config.channels, (config.patch_freq, config.patch_time)
        self.stem = nn.Conv2d(config.in_channels, c, patch, stride=patch)
        self.freq_position = nn.Parameter(torch.zeros(config.freq_bins // config.patch_freq, 1, c))
        nn.init.normal_(self.freq_position, std=0.02)
        self.noise_mlp = nn.Sequential(nn.Linear(config.embed_dim, config.embed_dim), nn.SiLU(),
                                       nn.Linear(config.embed_dim, config.embed_dim))
        self.class_embedding = nn.Embedding(config.num_classes, config.embed_dim) if config.num_classes else None
        self.class_freq = (nn.Parameter(torch.zeros(config.num_classes, config.freq_bins // config.patch_freq, 1, c))
                           if config.num_classes else None)
        self.blocks = nn.ModuleList(AxialBlock(c, config.heads, config.mlp_ratio, config.embed_dim)
                                    for _ in range(config.depth))
        self.final_norm = nn.LayerNorm(c, elementwise_affine=False)
        self.final_modulation = nn.Linear(config.embed_dim, 2 * c)
        nn.init.zeros_(self.final_modulation.weight)
        nn.init.zeros_(self.final_modulation.bias)
        self.head = nn.ConvTranspose2d(c, config.in_channels, patch, stride=patch)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        frames = x.shape[-1]
        x = F.pad(x, (0, (-frames) % self.config.patch_time))
        emb = self.noise_mlp(_noise_features(c_noise, self.config.embed_dim))
        if self.class_embedding is not None:
            if class_ids is None:
                raise ValueError("this network is class-conditional: pass class_ids")
            emb = emb + self.class_embedding(class_ids)
        emb = F.silu(emb)
        h = self.stem(x).permute(0, 2, 3, 1) + self.freq_position
        if self.class_freq is not None:
            h = h + self.class_freq[class_ids]
        for block in self.blocks:
            h = block(h, emb)
        shift, scale = self.final_modulation(emb).chunk(2, dim=1)
        h = self.final_norm(h) * (1 + scale[:, None, None]) + shift[:, None, None]
        return self.head(h.permute(0, 3, 1, 2))[..., :frames]
