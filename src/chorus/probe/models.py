"""Batched probes: every (layer, learning rate) pair is one probe, all trained together.

Probe ``p = layer * R + rate`` (``R`` learning rates). All parameters of all probes sit in
one flat tensor with the probe of each element alongside (:class:`BatchedProbes`), so one
optimizer step updates every probe. A probe that has stopped training is dropped from
the flat tensor and from the computation (the remaining blocks shrink along their probe
axis), so stopped probes cost nothing. Each layer is one matrix product with the
columns of its live probes side by side: layers of different widths are never
zero-padded (``L × max width`` against the sum of widths, 2.1× for sfx-cnn's
64/128/256/512).

Poolings of a layer's frames ``h_t``:

- ``mean`` (T-A): the mean over valid frames, computed at extraction time;
- ``max``: the maximum over valid frames, per feature; ``mean+max``: both concatenated
  (``2 D`` features). These three are fixed poolings feeding a linear probe
  (:data:`LINEAR_POOLINGS`), solved to their optimum by :mod:`chorus.probe.solver` by default;
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

import contextlib
from dataclasses import dataclass
from math import prod
from typing import Iterator

import torch
from torch import Tensor, nn

from .losses import dense_targets, logit_gradient, probe_losses

POOLINGS = ("mean", "max", "mean+max", "attention", "layer-sum")
LINEAR_POOLINGS = ("mean", "max", "mean+max")
"""Fixed poolings over valid frames followed by a linear probe (:class:`LinearProbes`)."""


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

    def __len__(self) -> int:
        return self.pooled[0].shape[0]

    def _map(self, pick, layers: list[bool] | None = None) -> "SplitInputs":
        """``pick`` applied to the targets and to every layer's tensors (only to the layers
        where ``layers`` is True; the others are kept as they are)."""
        def per_layer(values: list[Tensor]) -> list[Tensor]:
            return [pick(v) if layers is None or layers[i] else v for i, v in enumerate(values)]

        return SplitInputs(per_layer(self.pooled), pick(self.targets),
                           None if self.frames is None else per_layer(self.frames),
                           None if self.masks is None else per_layer(self.masks))

    def take(self, rows: Tensor, layers: list[bool] | None = None) -> "SplitInputs":
        """Clips ``rows`` (int64 ``[k]``), copied into contiguous tensors; with ``layers``
        only the layers marked True are taken, the others are left unchanged (for a model
        that does not read them: see :meth:`BatchedProbes.layers_read`)."""
        return self._map(lambda values: values.index_select(0, rows), layers)

    def span(self, begin: int, end: int) -> "SplitInputs":
        """Clips ``begin:end``, as views."""
        return self._map(lambda values: values[begin:end])


@dataclass(frozen=True)
class _Block:
    """A named parameter block of full ``shape`` whose index ``i`` along ``axis`` belongs
    to probe ``probes[i]``; ``penalised``: under the L2 penalty (linear maps' weights)."""

    shape: tuple[int, ...]
    axis: int
    probes: Tensor
    penalised: bool


class BatchedProbes(nn.Module):
    """Base class: every parameter of every live probe lives in one flat tensor ``flat``;
    ``owner`` (same length) names the probe of each element and ``element`` its position
    in the full layout (all probes), so the optimizer, early stopping and weight
    restoring are single tensor operations whatever the number of layers, widths and
    rates.

    Subclasses :meth:`declare` named blocks (zero initialised), each with a probe axis,
    call :meth:`finish`, and read the blocks with :meth:`blocks` (views of ``flat``).
    :meth:`gradient` adds an L2 penalty ``(l2 / 2) ||W||²`` on the penalised blocks (the
    linear maps' weights; biases, attention scorers and layer logits are free) to each
    probe's mean loss, as scikit-learn's ``LogisticRegression`` does with
    ``l2 = 1 / (C · train rows)``.
    :meth:`drop` removes stopped probes: their elements leave ``flat`` and every block
    shrinks along its probe axis (``flat`` is row-major per block, so what remains keeps
    the layout). ``forward`` gives the logits of the live probes in probe order.
    """

    def __init__(self, num_probes: int):
        super().__init__()
        self.num_probes = num_probes
        self._blocks: dict[str, _Block] = {}
        self.register_buffer("live", torch.ones(num_probes, dtype=torch.bool), persistent=False)

    def declare(self, name: str, shape: tuple[int, ...], axis: int, probes: list[int], penalised: bool = False) -> None:
        """A block of ``shape`` whose index ``i`` along ``axis`` belongs to ``probes[i]``;
        ``penalised``: under the L2 penalty of :meth:`gradient`."""
        if shape[axis] != len(probes):
            raise ValueError(f"block {name!r}: axis {axis} of {shape} does not match {len(probes)} probes")
        self._blocks[name] = _Block(tuple(shape), axis, torch.tensor(probes, dtype=torch.int64), penalised)

    def finish(self) -> None:
        owners = []
        for block in self._blocks.values():
            along = [1] * len(block.shape)
            along[block.axis] = -1
            owners.append(block.probes.view(along).expand(block.shape).reshape(-1))
        owner = torch.cat(owners)
        self.flat = nn.Parameter(torch.zeros(len(owner)))
        self.register_buffer("owner", owner, persistent=False)
        self.register_buffer("element", torch.arange(len(owner)), persistent=False)
        self.register_buffer("full_owner", owner.clone(), persistent=False)
        self._count_live()

    @property
    def full_size(self) -> int:
        """Number of parameters of all probes, live or not."""
        return len(self.full_owner)

    def _count_live(self) -> None:
        """The current shape of every block (after a drop or restore)."""
        self._shapes = []
        for block in self._blocks.values():
            shape = list(block.shape)
            shape[block.axis] = int(self.live[block.probes].sum())
            self._shapes.append(tuple(shape))
        self._sizes = [prod(shape) for shape in self._shapes]

    def blocks(self, values: Tensor | None = None) -> dict[str, Tensor]:
        """Every block of the live probes as a view of ``values`` (default ``flat``; any
        tensor laid out like it, e.g. a gradient)."""
        values = self.flat if values is None else values
        return {name: part.view(shape) for name, shape, part in zip(self._blocks, self._shapes, values.split(self._sizes))}

    @torch.no_grad()
    def drop(self, stopped: Tensor) -> Tensor:
        """Remove the probes where ``stopped [num_probes]`` is True from training and
        computation; returns the kept-element mask ``[elements before]``."""
        keep = ~stopped[self.owner]
        self.flat = nn.Parameter(self.flat.detach()[keep])
        self.owner, self.element = self.owner[keep], self.element[keep]
        self.live &= ~stopped
        self._count_live()
        return keep

    @torch.no_grad()
    def restore(self, values: Tensor) -> None:
        """Every probe live again, with parameters ``values [full_size]`` (full layout)."""
        self.flat = nn.Parameter(values.detach().clone())
        self.owner, self.element = self.full_owner.clone(), torch.arange(self.full_size)
        self.live.fill_(True)
        self._count_live()

    @contextlib.contextmanager
    def weights(self, values: Tensor) -> Iterator[None]:
        """Run the block with ``values`` (laid out like ``flat``) as the live probes'
        parameters, then put ``flat`` back."""
        saved = self.flat.data
        self.flat.data = values
        try:
            yield
        finally:
            self.flat.data = saved

    def live_probes(self) -> Tensor:
        """Ids of the live probes, in the order ``forward`` returns them."""
        return self.live.nonzero().flatten()

    def layers_read(self) -> list[bool] | None:
        """Which layers of the inputs the live probes read (None: all)."""
        return None

    def gradient(self, inputs: SplitInputs, l2: float = 0.0) -> None:
        """Set ``flat.grad`` to the gradient of the live probes' summed mean losses on
        ``inputs``, each plus ``(l2 / 2) ||W||²`` over its penalised blocks (by autograd;
        subclasses may give it in closed form)."""
        self.flat.grad = None
        loss = probe_losses(self(inputs), inputs.targets).sum()
        if l2:
            blocks = self.blocks()
            loss = loss + l2 / 2 * sum(blocks[name].square().sum() for name, block in self._blocks.items()
                                      if block.penalised)
        loss.backward()


class LinearProbes(BatchedProbes):
    """T-A linear probes for every layer × learning rate (weights start at zero).

    Per layer ``l``: weights ``[D_l, R, C]`` and biases ``[R, C]`` (probe axis 1 and 0), so
    the layer's live probes are one matrix product ``[rows, D_l] @ [D_l, live·C]``. Their
    gradient is computed in closed form (:func:`chorus.probe.losses.logit_gradient`), two
    matrix products per layer and no autograd graph.
    """

    def __init__(self, widths: list[int], rates: int, classes: int):
        super().__init__(len(widths) * rates)
        self.widths, self.rates, self.classes = list(widths), rates, classes
        for layer, width in enumerate(widths):
            probes = [layer * rates + rate for rate in range(rates)]
            self.declare(f"weight_{layer}", (width, rates, classes), 1, probes, penalised=True)
            self.declare(f"bias_{layer}", (rates, classes), 0, probes)
        self.finish()

    def layers_read(self) -> list[bool]:
        return self.live.view(len(self.widths), self.rates).any(dim=1).tolist()

    def _logits(self, blocks: dict[str, Tensor], inputs: SplitInputs) -> list[Tensor]:
        """Per layer with live probes: logits ``[rows, live, classes]`` (rows first)."""
        parts = []
        for layer, x in enumerate(inputs.pooled):
            weight = blocks[f"weight_{layer}"]
            if weight.shape[1]:
                logits = torch.addmm(blocks[f"bias_{layer}"].reshape(-1), x, weight.reshape(x.shape[1], -1))
                parts.append(logits.view(len(x), weight.shape[1], self.classes))
        return parts

    def forward(self, inputs: SplitInputs) -> Tensor:
        """Logits ``[live probes, rows, classes]``."""
        return torch.cat([part.transpose(0, 1) for part in self._logits(self.blocks(), inputs)])

    @torch.no_grad()
    def gradient(self, inputs: SplitInputs, l2: float = 0.0) -> None:
        """Closed form: per layer ``X^T (softmax - onehot) / rows + l2 W`` and the residual's
        column sums over ``rows`` for the biases (multi-hot: sigmoid, over ``rows · classes``)."""
        grad = torch.empty_like(self.flat)
        grads, blocks, rows = self.blocks(grad), self.blocks(), len(inputs)
        layers = [layer for layer in range(len(self.widths)) if grads[f"weight_{layer}"].shape[1]]
        dense = dense_targets(inputs.targets, self.classes)
        for layer, logits in zip(layers, self._logits(blocks, inputs)):
            residual, scale = logit_gradient(logits, dense, inputs.targets.dim() == 1)
            residual = residual.view(rows, -1)
            weight = blocks[f"weight_{layer}"].view(self.widths[layer], -1)
            torch.addmm(weight, inputs.pooled[layer].T, residual, beta=l2, alpha=scale,
                        out=grads[f"weight_{layer}"].view(self.widths[layer], -1))
            torch.sum(residual, dim=0, out=grads[f"bias_{layer}"].view(-1)).mul_(scale)
        self.flat.grad = grad


class AttentiveProbes(BatchedProbes):
    """T-WA: attention over valid frames (``a·h_t + c``) then a linear probe, per layer ×
    learning rate. The scorer starts at zero, i.e. at plain T-A pooling."""

    def __init__(self, widths: list[int], rates: int, classes: int):
        super().__init__(len(widths) * rates)
        self.widths = list(widths)
        for layer, width in enumerate(widths):
            probes = [layer * rates + rate for rate in range(rates)]
            self.declare(f"scorer_{layer}", (rates, width), 0, probes)
            self.declare(f"scorer_bias_{layer}", (rates,), 0, probes)
            self.declare(f"weight_{layer}", (rates, width, classes), 0, probes, penalised=True)
            self.declare(f"bias_{layer}", (rates, classes), 0, probes)
        self.finish()

    def forward(self, inputs: SplitInputs) -> Tensor:
        if inputs.frames is None or inputs.masks is None:
            raise ValueError("attention pooling needs frame-level features")
        parts, blocks = [], self.blocks()
        for layer, (h, mask) in enumerate(zip(inputs.frames, inputs.masks)):
            if not len(blocks[f"scorer_{layer}"]):
                continue
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
        probes = list(range(rates))
        self.widths = list(widths)
        self.shared = len(set(widths)) == 1
        self.declare("layer_logits", (rates, len(widths)), 0, probes)
        for name, width in ([("weight", widths[0])] if self.shared else
                            [(f"weight_{layer}", width) for layer, width in enumerate(widths)]):
            self.declare(name, (rates, width, classes), 0, probes, penalised=True)
        self.declare("bias", (rates, classes), 0, probes)
        self.finish()

    def layer_weights(self) -> Tensor:
        """``[live probes, layers]`` softmax weights."""
        return torch.softmax(self.blocks()["layer_logits"], dim=-1)

    def forward(self, inputs: SplitInputs) -> Tensor:
        blocks = self.blocks()
        weights = torch.softmax(blocks["layer_logits"], dim=-1)
        if self.shared:
            mixed = torch.einsum("rl,lbd->rbd", weights, torch.stack(inputs.pooled))
            logits = torch.bmm(mixed, blocks["weight"])
        else:
            logits = sum(weights[:, layer, None, None] * torch.matmul(x, blocks[f"weight_{layer}"])
                         for layer, x in enumerate(inputs.pooled))
        return logits + blocks["bias"].unsqueeze(1)


def build_probes(pooling: str, widths: list[int], rates: int, classes: int) -> BatchedProbes:
    """The batched probe model of ``pooling`` for layers of ``widths``."""
    kinds = {"mean": LinearProbes, "max": LinearProbes, "mean+max": LinearProbes, "attention": AttentiveProbes,
             "layer-sum": LayerSumProbes}
    if pooling not in kinds:
        raise ValueError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    return kinds[pooling](list(widths), rates, classes)


def probe_rates(model: BatchedProbes, learning_rates: tuple[float, ...]) -> Tensor:
    """``[probes]`` learning rate of each probe (probe ``p`` uses rate ``p % R``)."""
    return torch.tensor(learning_rates, dtype=torch.float32).repeat(model.num_probes // len(learning_rates))
