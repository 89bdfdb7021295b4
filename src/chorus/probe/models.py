"""Batched probes: every (layer, learning rate) pair is one probe, all trained together.

Probe ``p = layer * R + rate`` (``R`` learning rates). Layers of equal width share one
parameter tensor with the probe axis first, so a forward pass is one batched matmul per
width group; layers of different widths are never zero-padded (padding would spend
compute on zeros — ``L × max width`` against the sum of widths, 2.1× for sfx-cnn's
64/128/256/512). Each parameter declares the probes it holds
(:meth:`BatchedProbes.probe_parameters`), which is all the optimizer and early stopping
need.

Three poolings of a layer's frames ``h_t``:

- ``mean`` (T-A): the mean over valid frames, computed at extraction time;
- ``attention`` (T-WA): ``sum_t softmax_t(a·h_t + c) h_t`` over valid frames, ``a`` and
  ``c`` learned with the linear probe: D+1 parameters per layer (``c`` cancels in the
  softmax; it is kept to match the published parameter count). Both T-A and T-WA probes
  follow Cauzinille et al., "Crossing the Species Divide: Transfer Learning from Speech
  to Animal Sounds" (DCASE 2025, arXiv:2509.04166);
- ``layer-sum``: a learned softmax-weighted sum over layers of the T-A features, as
  s3prl's weighted-sum upstream (Yang et al., "SUPERB", Interspeech 2021). With equal
  widths the weighted sum of features feeds one linear map (the s3prl form); with unequal
  widths each layer gets its own linear map to the logits (a per-layer projection) and
  the softmax weights mix the per-layer logits — the weights then still rank layers, but
  a map can absorb part of a layer's scale, so read them as indicative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

POOLINGS = ("mean", "attention", "layer-sum")


@dataclass
class SplitInputs:
    """Standardised features and targets of one split.

    ``pooled[l]``: ``[clips, D_l]`` T-A features of layer ``l``.
    ``frames[l]``: ``[clips, frames_l, D_l]`` (None unless attention pooling is trained).
    ``masks[l]``: ``[clips, frames_l]`` bool, True on valid frames.
    ``targets``: ``[clips]`` int64 class indices, or ``[clips, classes]`` float multi-hot.
    """

    pooled: list[Tensor]
    targets: Tensor
    frames: list[Tensor] | None = None
    masks: list[Tensor] | None = None
    _stacks: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.pooled[0].shape[0]

    def stack(self, layers: tuple[int, ...]) -> Tensor:
        """``[len(layers), clips, D]`` pooled features of equal-width ``layers`` (cached)."""
        if layers not in self._stacks:
            self._stacks[layers] = torch.stack([self.pooled[layer] for layer in layers])
        return self._stacks[layers]


def width_groups(widths: list[int]) -> list[tuple[int, ...]]:
    """Layer indices grouped by width, in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for layer, width in enumerate(widths):
        groups.setdefault(width, []).append(layer)
    return [tuple(layers) for layers in groups.values()]


class BatchedProbes(nn.Module):
    """Base class: parameters with a leading probe axis, each tied to the probes it holds."""

    def __init__(self, num_probes: int):
        super().__init__()
        self.num_probes = num_probes
        self._owners: dict[str, Tensor] = {}

    def add_parameter(self, name: str, shape: tuple[int, ...], probes: list[int]) -> nn.Parameter:
        """Register a zero-initialised ``[len(probes), *shape]`` parameter for ``probes``."""
        parameter = nn.Parameter(torch.zeros(len(probes), *shape))
        self.register_parameter(name, parameter)
        self._owners[name] = torch.tensor(probes, dtype=torch.int64)
        return parameter

    def probe_parameters(self) -> list[tuple[nn.Parameter, Tensor]]:
        """``(parameter, probe ids of its rows)`` for every parameter."""
        return [(getattr(self, name), ids) for name, ids in self._owners.items()]


def _probe_ids(layers: tuple[int, ...] | list[int], rates: int) -> list[int]:
    return [layer * rates + rate for layer in layers for rate in range(rates)]


class LinearProbes(BatchedProbes):
    """T-A linear probes for every layer × learning rate (weights start at zero)."""

    def __init__(self, widths: list[int], rates: int, classes: int):
        super().__init__(len(widths) * rates)
        self.rates = rates
        self.groups = width_groups(widths)
        self.weights, self.biases = [], []
        for index, layers in enumerate(self.groups):
            ids = _probe_ids(layers, rates)
            self.weights.append(self.add_parameter(f"weight_{index}", (widths[layers[0]], classes), ids))
            self.biases.append(self.add_parameter(f"bias_{index}", (classes,), ids))
        order = [p for layers in self.groups for p in _probe_ids(layers, rates)]
        self.register_buffer("_restore", torch.argsort(torch.tensor(order)), persistent=False)

    def forward(self, inputs: SplitInputs, rows: Tensor) -> Tensor:
        """Logits ``[probes, rows, classes]``."""
        parts = []
        for layers, weight, bias in zip(self.groups, self.weights, self.biases):
            x = inputs.stack(layers)[:, rows]
            w = weight.view(len(layers), self.rates, *weight.shape[1:])
            logits = torch.einsum("lbd,lrdc->lrbc", x, w).reshape(weight.shape[0], len(rows), -1)
            parts.append(logits + bias.unsqueeze(1))
        return torch.cat(parts)[self._restore]


class AttentiveProbes(BatchedProbes):
    """T-WA: attention over valid frames (``a·h_t + c``) then a linear probe, per layer ×
    learning rate. The scorer starts at zero, i.e. at plain T-A pooling."""

    def __init__(self, widths: list[int], rates: int, classes: int):
        super().__init__(len(widths) * rates)
        self.per_layer = []
        for layer, width in enumerate(widths):
            ids = _probe_ids([layer], rates)
            self.per_layer.append((self.add_parameter(f"scorer_{layer}", (width,), ids),
                                   self.add_parameter(f"scorer_bias_{layer}", (), ids),
                                   self.add_parameter(f"weight_{layer}", (width, classes), ids),
                                   self.add_parameter(f"bias_{layer}", (classes,), ids)))

    def forward(self, inputs: SplitInputs, rows: Tensor) -> Tensor:
        if inputs.frames is None or inputs.masks is None:
            raise ValueError("attention pooling needs frame-level features")
        parts = []
        for (scorer, scorer_bias, weight, bias), frames, masks in zip(self.per_layer, inputs.frames, inputs.masks):
            h, mask = frames[rows], masks[rows]
            scores = torch.einsum("bfd,rd->rbf", h, scorer) + scorer_bias.view(-1, 1, 1)
            attention = torch.softmax(scores.masked_fill(~mask, -1e4), dim=-1) * mask
            attention = attention / attention.sum(dim=-1, keepdim=True).clamp_min(1e-12)
            pooled = torch.einsum("rbf,bfd->rbd", attention, h)
            parts.append(torch.einsum("rbd,rdc->rbc", pooled, weight) + bias.unsqueeze(1))
        return torch.cat(parts)


class LayerSumProbes(BatchedProbes):
    """Learned softmax-weighted sum of layers, one probe per learning rate (see the module
    docstring for unequal widths)."""

    def __init__(self, widths: list[int], rates: int, classes: int):
        super().__init__(rates)
        ids = list(range(rates))
        self.shared = len(set(widths)) == 1
        self.layer_logits = self.add_parameter("layer_logits", (len(widths),), ids)
        if self.shared:
            self.weights = [self.add_parameter("weight", (widths[0], classes), ids)]
        else:
            self.weights = [self.add_parameter(f"weight_{layer}", (width, classes), ids)
                            for layer, width in enumerate(widths)]
        self.bias = self.add_parameter("bias", (classes,), ids)

    def layer_weights(self) -> Tensor:
        """``[rates, layers]`` softmax weights."""
        return torch.softmax(self.layer_logits, dim=-1)

    def forward(self, inputs: SplitInputs, rows: Tensor) -> Tensor:
        weights = self.layer_weights()
        if self.shared:
            x = inputs.stack(tuple(range(len(inputs.pooled))))[:, rows]
            logits = torch.einsum("rbd,rdc->rbc", torch.einsum("rl,lbd->rbd", weights, x), self.weights[0])
        else:
            logits = sum(weights[:, layer, None, None] * torch.einsum("bd,rdc->rbc", x[rows], weight)
                         for layer, (x, weight) in enumerate(zip(inputs.pooled, self.weights)))
        return logits + self.bias.unsqueeze(1)


def build_probes(pooling: str, widths: list[int], rates: int, classes: int) -> BatchedProbes:
    """The batched probe model of ``pooling`` for layers of ``widths``."""
    kinds = {"mean": LinearProbes, "attention": AttentiveProbes, "layer-sum": LayerSumProbes}
    if pooling not in kinds:
        raise ValueError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    return kinds[pooling](list(widths), rates, classes)


def probe_rates(model: BatchedProbes, learning_rates: tuple[float, ...]) -> Tensor:
    """``[probes]`` learning rate of each probe (probe ``p`` uses rate ``p % R``)."""
    return torch.tensor(learning_rates, dtype=torch.float32).repeat(model.num_probes // len(learning_rates))
