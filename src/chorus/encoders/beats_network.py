"""The BEATs network (Chen et al., *BEATs: Audio Pre-Training with Acoustic Tokenizers*,
ICML 2023), written for chorus so that the official checkpoints load into it.

Architecture, as described in the paper and its public release: a 16x16 patch embedding
(convolution) over the normalised 128-bin Kaldi fbank, layer norm, a linear projection to
the transformer width, a convolutional position embedding (weight-normalised grouped
convolution over the token sequence), then a transformer encoder whose self-attention
adds a bucketed relative position bias, optionally gated per query ("gated relative
position bias", from WavLM) and with DeepNorm residual scaling (``x * alpha + f(x)``,
``alpha = (2 N)^(1/4)``) in post-layer-norm blocks.

Module and parameter names follow the official state dict (``patch_embedding``,
``encoder.pos_conv.0.weight_g``, ``encoder.layers.N.self_attn.grep_linear`` ...), so
``{"cfg", "model"}`` checkpoints load with :func:`official_state_dict_to_chorus`. The
official model shares one relative-position embedding among all layers and stores a copy
under every layer; here layer 0 owns it and the copies are dropped on load.

Training-only settings of the official configuration (layer drop, layer-wise gradient
decay, the predictor's dropout) are not implemented; dropouts are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import BEATsConfigError

FBANK_MEAN, FBANK_STD = 15.41663, 6.55582  # official normalisation of the 128-bin fbank
ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_accurate": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "tanh": torch.tanh,
    "linear": lambda x: x,
}


@dataclass(frozen=True)
class BEATsConfig:
    """The architecture fields of an official BEATs ``cfg`` (defaults as in the release;
    the released checkpoints all use 16x16 patches)."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    dropout_input: float = 0.0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_class: int = 527

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any]) -> "BEATsConfig":
        """From a checkpoint's ``cfg`` dict; keys that do not shape the network are ignored."""
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in cfg.items() if k in known})
        config.validate()
        return config

    def validate(self) -> None:
        if self.activation_fn not in ACTIVATIONS:
            raise BEATsConfigError(f"activation {self.activation_fn!r} is not supported "
                                   f"(supported: {', '.join(ACTIVATIONS)})")
        if self.deep_norm and self.layer_norm_first:
            raise BEATsConfigError("deep_norm needs post-layer-norm blocks (layer_norm_first=False)")
        if self.input_patch_size <= 0 or self.encoder_embed_dim % self.encoder_attention_heads:
            raise BEATsConfigError("input_patch_size must be positive and the heads must divide the width")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WeightNormConv1d(nn.Module):
    """Grouped 1-D convolution, ``same`` padding, weight normalised over every axis but the
    kernel axis (``torch.nn.utils.weight_norm(dim=2)``), stored as ``weight_g``/``weight_v``."""

    def __init__(self, channels: int, kernel: int, groups: int):
        super().__init__()
        self.groups, self.padding = groups, kernel // 2
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel))
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (kernel * channels)))
        with torch.no_grad():
            self.weight_g.copy_(self._norm())

    def _norm(self) -> Tensor:
        return torch.linalg.vector_norm(self.weight_v, dim=(0, 1), keepdim=True)

    def forward(self, x: Tensor) -> Tensor:
        """``[batch, channels, tokens]`` -> same shape (the extra frame of an even kernel dropped)."""
        weight = self.weight_v * (self.weight_g / self._norm())
        out = F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)
        return out[..., : x.shape[-1]]


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention with an additive relative position bias ``[heads, T, T]``,
    optionally gated per query (gated relative position bias)."""

    def __init__(self, config: BEATsConfig, owns_position_bias: bool):
        super().__init__()
        dim, heads = config.encoder_embed_dim, config.encoder_attention_heads
        self.heads, self.head_dim, self.dropout = heads, dim // heads, config.attention_dropout
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        if owns_position_bias:
            self.relative_attention_bias = nn.Embedding(config.num_buckets, heads)
        self.gated = config.gru_rel_pos
        if self.gated:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, x: Tensor, key_padding: Tensor, position_bias: Tensor | None) -> Tensor:
        """``x [batch, tokens, dim]``, ``key_padding [batch, tokens]`` (True = padding),
        ``position_bias [heads, tokens, tokens]`` or None."""
        batch, tokens, dim = x.shape
        q = self.q_proj(x).view(batch, tokens, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, tokens, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, tokens, self.heads, self.head_dim).transpose(1, 2)
        bias = x.new_zeros(batch, 1, 1, tokens).masked_fill(key_padding[:, None, None, :], float("-inf"))
        if position_bias is not None:
            if self.gated:
                gates = torch.sigmoid(self.grep_linear(q).view(batch, self.heads, tokens, 2, 4).sum(-1))
                gate_a, gate_b = gates[..., :1], gates[..., 1:]
                position_bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * position_bias
            bias = bias + position_bias
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class EncoderLayer(nn.Module):
    """Transformer block: post-LN with DeepNorm residual scaling, or pre-LN."""

    def __init__(self, config: BEATsConfig, owns_position_bias: bool):
        super().__init__()
        dim = config.encoder_embed_dim
        self.self_attn = RelativeSelfAttention(config, owns_position_bias)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, config.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = ACTIVATIONS[config.activation_fn]
        self.pre_norm = config.layer_norm_first
        self.alpha = (2.0 * config.encoder_layers) ** 0.25 if config.deep_norm else 1.0
        self.dropout = nn.Dropout(config.dropout)
        self.activation_dropout = nn.Dropout(config.activation_dropout)

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(self.activation_dropout(self.activation(self.fc1(x)))))

    def forward(self, x: Tensor, key_padding: Tensor, position_bias: Tensor | None) -> Tensor:
        if self.pre_norm:
            x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), key_padding, position_bias))
            return x + self._feed_forward(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x * self.alpha + self.dropout(self.self_attn(x, key_padding, position_bias)))
        return self.final_layer_norm(x * self.alpha + self._feed_forward(x))


class TransformerEncoder(nn.Module):
    """Convolutional position embedding + transformer layers, returning every hidden state."""

    def __init__(self, config: BEATsConfig):
        super().__init__()
        dim = config.encoder_embed_dim
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, config.conv_pos, config.conv_pos_groups))
        self.relative = config.relative_position_embedding
        self.num_buckets, self.max_distance = config.num_buckets, config.max_distance
        self.layers = nn.ModuleList(EncoderLayer(config, owns_position_bias=self.relative and i == 0)
                                    for i in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim)
        self.pre_norm = config.layer_norm_first
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, key_padding: Tensor) -> list[Tensor]:
        """``x [batch, tokens, dim]`` -> ``[input of layer 1, output of each layer]``; the
        last is after the final layer norm in pre-LN models."""
        x = x.masked_fill(key_padding.unsqueeze(-1), 0.0)
        x = x + F.gelu(self.pos_conv(x.transpose(1, 2)).transpose(1, 2))
        if not self.pre_norm:
            x = self.layer_norm(x)
        x = self.dropout(x)
        bias = self.position_bias(x.shape[1], x.device) if self.relative else None
        states = [x]
        for layer in self.layers:
            x = layer(x, key_padding, bias)
            states.append(x)
        if self.pre_norm:
            states[-1] = self.layer_norm(x)
        return states

    def position_bias(self, tokens: int, device: torch.device) -> Tensor:
        """``[heads, tokens, tokens]`` learned bias of the bucketed offset ``key - query``."""
        positions = torch.arange(tokens, device=device)
        buckets = relative_position_buckets(positions[None, :] - positions[:, None], self.num_buckets,
                                            self.max_distance)
        return self.layers[0].self_attn.relative_attention_bias(buckets).permute(2, 0, 1)


def relative_position_buckets(offsets: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """Bidirectional T5-style buckets: half the buckets per direction; offsets below a
    quarter of the buckets get their own bucket, larger ones share logarithmically spaced
    buckets up to ``max_distance`` (and the last bucket beyond)."""
    half = num_buckets // 2
    exact = half // 2
    direction = (offsets > 0).long() * half
    distance = offsets.abs()
    log_bucket = exact + (torch.log(distance.clamp_min(1).float() / exact) / math.log(max_distance / exact)
                          * (half - exact)).long()
    log_bucket = log_bucket.clamp_max(half - 1)
    return direction + torch.where(distance < exact, distance, log_bucket)


class BEATsNetwork(nn.Module):
    """Normalised fbank ``[batch, frames, 128]`` -> token hidden states of every layer."""

    def __init__(self, config: BEATsConfig):
        super().__init__()
        config.validate()
        self.config = config
        patch = config.input_patch_size
        self.patch_embedding = nn.Conv2d(1, config.embed_dim, kernel_size=patch, stride=patch,
                                         bias=config.conv_bias)
        self.layer_norm = nn.LayerNorm(config.embed_dim)
        self.post_extract_proj = (nn.Linear(config.embed_dim, config.encoder_embed_dim)
                                  if config.embed_dim != config.encoder_embed_dim else None)
        self.dropout_input = nn.Dropout(config.dropout_input)
        self.encoder = TransformerEncoder(config)
        self.predictor = (nn.Linear(config.encoder_embed_dim, config.predictor_class)
                          if config.finetuned_model else None)
        self.apply(_init_weights)

    def forward(self, fbank: Tensor, time_padding: Tensor) -> list[Tensor]:
        """``fbank [batch, frames, mel]`` and ``time_padding [batch, time patches]`` (True =
        padding) -> every hidden state as ``[batch, time patches, freq patches, dim]``."""
        patches = self.patch_embedding(fbank.unsqueeze(1))
        batch, _, time, freq = patches.shape
        x = self.layer_norm(patches.flatten(2).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        key_padding = time_padding[:, :time].repeat_interleave(freq, dim=1)
        states = self.encoder(self.dropout_input(x), key_padding)
        return [s.view(batch, time, freq, -1) for s in states]


def _init_weights(module: nn.Module) -> None:
    """Random initialisation for untrained networks (BERT style, as the release)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


def official_state_dict_to_chorus(state: dict[str, Tensor], config: BEATsConfig) -> dict[str, Tensor]:
    """Map an official BEATs state dict onto :class:`BEATsNetwork`: drop the per-layer copies
    of the shared relative-position embedding (checking they are copies)."""
    out = dict(state)
    shared = out.get("encoder.layers.0.self_attn.relative_attention_bias.weight")
    for index in range(1, config.encoder_layers):
        key = f"encoder.layers.{index}.self_attn.relative_attention_bias.weight"
        if key in out:
            copy = out.pop(key)
            if shared is None or not torch.equal(copy, shared):
                raise BEATsConfigError(f"{key} differs from layer 0's shared relative position embedding")
    return out
