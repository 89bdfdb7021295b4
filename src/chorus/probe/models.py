"""Batched probes: every (layer, learning rate) pair is one probe, all trained together.

Probe ``p = layer * R + rate`` (``R`` learning rates). Layers of equal width form one
group whose probes are one batched matmul; layers of different widths are never
zero-padded (padding would spend compute on zeros — ``L × max width`` against the sum
of widths, 2.1× for sfx-cnn's 64/128/256/512). All parameters sit in one flat tensor
with the probe of each element alongside (:class:`BatchedProbes`).

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
    """Base class: every parameter of every probe lives in one flat tensor ``flat``, and
    ``owner`` (same length) names the probe each element belongs to, so the optimizer,
    early stopping and weight restoring are single tensor operations whatever the
    number of layers, widths and rates. Subclasses :meth:`declare` named blocks (zero
    initialised), call :meth:`finish`, and read all blocks at once with :meth:`blocks`
    (one split of ``flat``, so the backward pass writes one gradient).
    """

    def __init__(self, num_probes: int):
        super().__init__()
        self.num_probes = num_probes
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._owners: list[Tensor] = []

    def declare(self, name: str, shape: tuple[int, ...], owner: Tensor) -> None:
        """A block of ``shape``; ``owner`` (int64, broadcastable to ``shape``) gives the
        probe of each element."""
        self._shapes[name] = tuple(shape)
        self._owners.append(owner.expand(shape).reshape(-1))

    def finish(self) -> None:
        self._sizes = [len(owner) for owner in self._owners]
        self.flat = nn.Parameter(torch.zeros(sum(self._sizes)))
        self.register_buffer("owner", torch.cat(self._owners), persistent=False)
        del self._owners

    def blocks(self) -> dict[str, Tensor]:
        """Every declared block as a view of ``flat``."""
        return {name: part.view(shape)
                for (name, shape), part in zip(self._shapes.items(), self.flat.split(self._sizes))}


def _ids(values: list[int], shape: tuple[int, ...]) -> Tensor:
    return torch.tensor(values, dtype=torch.int64).view(shape)


class LinearProbes(BatchedProbes):
    """T-A linear probes for every layer × learning rate (weights start at zero).

    Per width group of ``G`` layers: weights ``[G, D, R, C]`` (one batched matmul of the
    group's features ``[G, rows, D]`` with ``[G, D, R·C]``) and biases ``[G, R, C]``.
    """

    def __init__(self, widths: list[int], rates: int, classes: int):
        super().__init__(len(widths) * rates)
        self.rates, self.classes = rates, classes
        self.groups = width_groups(widths)
        for index, layers in enumerate(self.groups):
            owners = [layer * rates + rate for layer in layers for rate in range(rates)]
            self.declare(f"weight_{index}", (len(layers), widths[layers[0]], rates, classes),
                         _ids(owners, (len(layers), 1, rates, 1)))
            self.declare(f"bias_{index}", (len(layers), rates, classes), _ids(owners, (len(layers), rates, 1)))
        self.finish()
        order = [layer * rates + rate for layers in self.groups for layer in layers for rate in range(rates)]
        self.register_buffer("_restore", torch.argsort(torch.tensor(order)), persistent=False)

    def forward(self, inputs: SplitInputs, rows: Tensor) -> Tensor:
        """Logits ``[probes, rows, classes]``."""
        parts, blocks = [], self.blocks()
        for index, layers in enumerate(self.groups):
            x = inputs.stack(layers).index_select(1, rows)
            weight = blocks[f"weight_{index}"]
            logits = torch.bmm(x, weight.view(len(layers), weight.shape[1], -1))
            logits = logits.view(len(layers), len(rows), self.rates, self.classes).transpose(1, 2)
            parts.append((logits + blocks[f"bias_{index}"].unsqueeze(2)).reshape(-1, len(rows), self.classes))
        return torch.cat(parts)[self._restore]


class AttentiveProbes(BatchedProbes):
    """T-WA: attention over valid frames (``a·h_t + c``) then a linear probe, per layer ×
    learning rate. The scorer starts at zero, i.e. at plain T-A pooling."""

    def __init__(self, widths: list[int], rates: int, classes: int):
        super().__init__(len(widths) * rates)
        self.widths = list(widths)
        for layer, width in enumerate(widths):
            owners = _ids([layer * rates + rate for rate in range(rates)], (rates, 1))
            self.declare(f"scorer_{layer}", (rates, width), owners)
            self.declare(f"scorer_bias_{layer}", (rates,), owners.view(-1))
            self.declare(f"weight_{layer}", (rates, width, classes), owners.view(rates, 1, 1))
            self.declare(f"bias_{layer}", (rates, classes), owners)
        self.finish()

    def forward(self, inputs: SplitInputs, rows: Tensor) -> Tensor:
        if inputs.frames is None or inputs.masks is None:
            raise ValueError("attention pooling needs frame-level features")
        parts, blocks = [], self.blocks()
        for layer, (frames, masks) in enumerate(zip(inputs.frames, inputs.masks)):
            h, mask = frames.index_select(0, rows), masks.index_select(0, rows)
            scores = torch.einsum("bfd,rd->rbf", h, blocks[f"scorer_{layer}"])
            scores = scores + blocks[f"scorer_bias_{layer}"].view(-1, 1, 1)
            attention = torch.softmax(scores.masked_fill(~mask, -1e4), dim=-1) * mask
            attention = attention / attention.sum(dim=-1, keepdim=True).clamp_min(1e-12)
            pooled = torch.einsum("rbf,bfd->rbd", attention, h)
            parts.append(torch.bmm(pooled, blocks[f"weight_{layer}"]) + blocks[f"bias_{layer}"].unsqueeze(1))
        return torch.cat(parts)


class LayerSumProbes(BatchedProbes):
    """Learned softmax-weighted sum of layers, one probe per learning rate (see the module
    docstring for unequal widths)."""

    def __init__(self, widths: list[int], rates: int, classes: int):
        super().__init__(rates)
        owners = _ids(list(range(rates)), (rates, 1))
        self.widths = list(widths)
        self.shared = len(set(widths)) == 1
        self.declare("layer_logits", (rates, len(widths)), owners)
        for name, width in ([("weight", widths[0])] if self.shared else
                            [(f"weight_{layer}", width) for layer, width in enumerate(widths)]):
            self.declare(name, (rates, width, classes), owners.view(rates, 1, 1))
        self.declare("bias", (rates, classes), owners)
        self.finish()

    def layer_weights(self) -> Tensor:
        """``[rates, layers]`` softmax weights."""
        return torch.softmax(self.blocks()["layer_logits"], dim=-1)

    def forward(self, inputs: SplitInputs, rows: Tensor) -> Tensor:
        blocks = self.blocks()
        weights = torch.softmax(blocks["layer_logits"], dim=-1)
        if self.shared:
            x = inputs.stack(tuple(range(len(self.widths)))).index_select(1, rows)
            logits = torch.bmm(torch.einsum("rl,lbd->rbd", weights, x), blocks["weight"])
        else:
            logits = sum(weights[:, layer, None, None] * torch.matmul(x.index_select(0, rows), blocks[f"weight_{layer}"])
                         for layer, x in enumerate(inputs.pooled))
        return logits + blocks["bias"].unsqueeze(1)


def build_probes(pooling: str, widths: list[int], rates: int, classes: int) -> BatchedProbes:
    """The batched probe model of ``pooling`` for layers of ``widths``."""
    kinds = {"mean": LinearProbes, "attention": AttentiveProbes, "layer-sum": LayerSumProbes}
    if pooling not in kinds:
        raise ValueError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    return kinds[pooling](list(widths), rates, classes)


def probe_rates(model: BatchedProbes, learning_rates: tuple[float, ...]) -> Tensor:
    """``[probes]`` learning rate of each probe (probe ``p`` uses rate ``p % R``)."""
    return torch.tensor(learning_rates, dtype=torch.float32).repeat(model.num_probes // len(learning_rates))
