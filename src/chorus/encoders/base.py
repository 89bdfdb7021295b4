"""The interface every backbone implements.

An :class:`Encoder` maps a zero-padded batch of mono waveforms at its own sample rate to
the hidden states of ALL its layers, in one forward pass, with a valid-frame mask per
layer so that padding never changes a clip's features.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InvalidInput


@dataclass
class LayerOutputs:
    """Hidden states of every exposed layer from one forward pass.

    ``hidden[l]``: ``[batch, frames_l, features_l]`` float tensor.
    ``masks[l]``: ``[batch, frames_l]`` bool tensor, True where the frame comes from real
    (unpadded) audio. Layers may differ in frame rate and width.
    """

    hidden: list[Tensor]
    masks: list[Tensor]

    def __post_init__(self) -> None:
        if len(self.hidden) != len(self.masks):
            raise ValueError(f"{len(self.hidden)} hidden states but {len(self.masks)} masks")
        for index, (h, m) in enumerate(zip(self.hidden, self.masks)):
            if h.dim() != 3 or m.shape != h.shape[:2] or m.dtype != torch.bool:
                raise ValueError(f"layer {index}: hidden {tuple(h.shape)} and mask {tuple(m.shape)}/{m.dtype} disagree")

    def __len__(self) -> int:
        return len(self.hidden)

    def pooled(self, pooling: str = "mean") -> list[Tensor]:
        """Per layer, the frames pooled over valid frames by ``pooling`` (see
        :func:`pool_frames`): ``[batch, features_l]`` (``2 * features_l`` for ``mean+max``)."""
        return [pool_frames(h, m, pooling) for h, m in zip(self.hidden, self.masks)]


FRAME_POOLINGS = ("mean", "max", "mean+max")
"""Fixed poolings over valid frames; an encoder's ``native_pooling`` is one of them."""


def masked_mean(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``hidden [batch, frames, features]`` over frames where ``mask [batch, frames]``.

    A clip with no valid frame (shorter than the layer's receptive field) gets zeros.
    """
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    count = weights.sum(dim=1).clamp_min(1.0)
    return (hidden * weights).sum(dim=1) / count


def masked_max(hidden: Tensor, mask: Tensor) -> Tensor:
    """Maximum of ``hidden [batch, frames, features]`` over frames where ``mask [batch, frames]``.

    A clip with no valid frame gets zeros (as :func:`masked_mean`), never -inf.
    """
    filled = hidden.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), filled, torch.zeros_like(filled))


def pool_frames(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """``hidden [batch, frames, features]`` pooled over valid frames: ``mean``, ``max`` or
    ``mean+max`` (the two concatenated, mean first: ``[batch, 2 * features]``)."""
    if pooling == "mean":
        return masked_mean(hidden, mask)
    if pooling == "max":
        return masked_max(hidden, mask)
    if pooling == "mean+max":
        return torch.cat([masked_mean(hidden, mask), masked_max(hidden, mask)], dim=-1)
    raise InvalidInput(f"unknown pooling {pooling!r}; known: {', '.join(FRAME_POOLINGS)}")


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """``lengths [batch]`` -> ``[batch, max_len]`` bool mask of the first ``lengths`` steps."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class Encoder(nn.Module, abc.ABC):
    """A pretrained (or random) audio encoder exposing every layer.

    Subclasses set, in ``__init__``:

    - ``name``: the registry name it was loaded under;
    - ``sample_rate``: Hz the network expects (callers resample before ``forward``);
    - ``layer_names``, ``layer_dims``, ``frame_rates`` (Hz): one entry per exposed layer;
    - ``pads_exactly``: True when a clip's features inside a zero-padded batch equal
      its features alone (to 1e-4 relative). When False, batch only equal lengths
      (:func:`chorus.encoders.batching.iter_batches` does this);
    - ``native_pooling``: how the checkpoint's own training pooled a layer's frames over
      time (one of :data:`FRAME_POOLINGS`; ``--pooling native`` resolves to it).
    """

    name: str
    sample_rate: int
    layer_names: tuple[str, ...]
    layer_dims: tuple[int, ...]
    frame_rates: tuple[float, ...]
    pads_exactly: bool = True
    native_pooling: str = "mean"
    layer_modules: tuple[str, ...] = ()
    """State-dict prefix of the module whose output is each exposed layer (aligned with
    ``layer_names``, e.g. ``blocks.0`` for ``block1``); empty when not declared."""

    def resolve_pooling(self, pooling: str) -> str:
        """``pooling`` with ``native`` replaced by :attr:`native_pooling`."""
        return self.native_pooling if pooling == "native" else pooling

    def exposed_layers(self) -> dict[str, str]:
        """Module prefix -> exposed layer name, so that every output names layers as probes do."""
        return dict(zip(self.layer_modules, self.layer_names))

    @property
    def num_layers(self) -> int:
        return len(self.layer_dims)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @abc.abstractmethod
    def forward(self, waveforms: Tensor, lengths: Tensor) -> LayerOutputs:
        """Encode a batch.

        ``waveforms``: ``[batch, samples]`` float32 at ``sample_rate``, zero-padded.
        ``lengths``: ``[batch]`` int64, valid samples per clip.
        """

    @abc.abstractmethod
    def architecture(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :func:`chorus.encoders.build_encoder`
        rebuilds the same network with random weights. Must hold ``"family"``."""
