"""Low-rank adaptation (Hu et al., *LoRA: Low-Rank Adaptation of Large Language Models*,
ICLR 2022) for ``nn.Linear`` and ``nn.Conv1d/2d/3d`` layers.

A wrapped layer computes ``base(x) + (alpha / rank) · B(A(x))`` with the base frozen.
For convolutions ``A`` is a convolution with the base's kernel, stride, padding and
dilation into ``rank`` channels and ``B`` a 1×1 convolution back, so the update equals a
weight delta ``ΔW = (alpha / rank) · B·A`` (``[out, rank] @ [rank, in·kernel]``).
:func:`merge_lora` folds ``ΔW`` into the base weights and removes the wrappers, so task
vectors of LoRA runs are ordinary dense deltas.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from ..seeding import generator
from ..errors import InvalidInput

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_FUNCTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class LoRALayer(nn.Module):
    """A frozen ``base`` layer plus a trainable low-rank update.

    ``lora_a``: ``[rank, in]`` (Linear) or ``[rank, in, *kernel]`` (Conv), Kaiming-uniform;
    ``lora_b``: ``[out, rank]`` or ``[out, rank, 1, ...]``, zeros (the update starts at 0).
    """

    def __init__(self, base: nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d, rank: int, alpha: float,
                 gen: torch.Generator):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        weight = base.weight
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        a_shape = (rank, *weight.shape[1:])
        b_shape = (weight.shape[0], rank, *([1] * (weight.dim() - 2)))
        bound = 1.0 / math.sqrt(math.prod(weight.shape[1:]))
        initial = (torch.rand(a_shape, generator=gen) * 2 - 1) * bound
        self.lora_a = nn.Parameter(initial.to(device=weight.device, dtype=weight.dtype))
        self.lora_b = nn.Parameter(torch.zeros(b_shape, device=weight.device, dtype=weight.dtype))

    def __getattr__(self, name: str):
        """Attributes the wrapper lacks come from the base layer (``stride``, ``bias``,
        ``in_features``...), except ``weight``, which is the adapted weight
        ``W + ΔW``: code that reads a layer's weight instead of calling it (WavLM's
        attention passes ``q_proj.weight`` to ``multi_head_attention_forward``) trains
        the adapter too."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base" or "base" not in self._modules:
                raise
            base = self._modules["base"]
            return base.weight + self.delta_weight() if name == "weight" else getattr(base, name)

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.base, nn.Linear):
            update = F.linear(F.linear(x, self.lora_a), self.lora_b)
        else:
            hidden = self.base._conv_forward(x, self.lora_a, None)
            update = _CONV_FUNCTIONS[self.lora_b.dim() - 2](hidden, self.lora_b)
        return self.base(x) + self.scale * update

    def delta_weight(self) -> Tensor:
        """``ΔW`` with the base weight's shape."""
        base = self._modules["base"]
        product = self.lora_b.reshape(self.lora_b.shape[0], -1) @ self.lora_a.reshape(self.lora_a.shape[0], -1)
        return (self.scale * product).reshape(base.weight.shape)


def _eligible(module: nn.Module) -> bool:
    if type(module) not in (nn.Linear, *_CONVS) or parametrize.is_parametrized(module):
        return False
    return isinstance(module, nn.Linear) or module.groups == 1


def inject_lora(model: nn.Module, rank: int, alpha: float, targets: Sequence[str] = (), seed: int = 0) -> list[str]:
    """Wrap every eligible layer of ``model`` whose module name matches a glob in
    ``targets`` (all eligible layers when empty) and freeze every other parameter.

    Eligible: plain ``nn.Linear`` and ungrouped ``nn.ConvNd`` without parametrizations.
    A's initialisation is seeded per module name. Returns the wrapped names.
    """
    if rank < 1:
        raise InvalidInput(f"LoRA rank must be at least 1, got {rank}")
    names = [name for name, module in model.named_modules()
             if name and _eligible(module) and (not targets or any(fnmatch.fnmatchcase(name, t) for t in targets))]
    if not names:
        raise InvalidInput(f"no Linear/Conv layer matches the LoRA targets {list(targets)}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALayer(getattr(parent, child), rank, alpha, generator(seed, "lora", name)))
    return names


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every :class:`LoRALayer` of ``model`` into its base weight and unwrap it (in place)."""
    wrapped = [name for name, module in model.named_modules() if isinstance(module, LoRALayer)]
    for name in wrapped:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        layer = getattr(parent, child)
        with torch.no_grad():
            layer.base.weight += layer.delta_weight()
        setattr(parent, child, layer.base)
    return model
