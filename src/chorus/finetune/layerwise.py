"""Layer-wise learning-rate decay (LLRD): the encoder's last unit trains at the full rate,
each unit below it at ``decay`` times the rate of the one above (Howard & Ruder, ULMFiT,
2018; Clark et al., ELECTRA, 2020)."""

from __future__ import annotations

from typing import Callable

from torch import nn


def unit_of(name: str) -> str:
    """The unit a parameter belongs to: its name up to the first numeric part
    (``blocks.3.conv1.weight`` -> ``blocks.3``), else its first part (``stem.weight`` -> ``stem``)."""
    parts = name.split(".")
    for index, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[:index + 1])
    return parts[0]


def layerwise_scale(encoder: nn.Module, decay: float) -> Callable[[str], float]:
    """``name -> decay ** (units above its unit)`` for names of the model holding ``encoder``
    as ``encoder`` (``encoder.blocks.0.conv1.weight``); units are ordered by their first
    parameter in ``encoder.named_parameters()`` (input side first)."""
    units: dict[str, int] = {}
    for name, _ in encoder.named_parameters():
        units.setdefault(unit_of(name), len(units))
    top = len(units) - 1

    def scale(name: str) -> float:
        return decay ** (top - units[unit_of(name.removeprefix("encoder."))])

    return scale
