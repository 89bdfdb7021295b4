"""Grouping encoder parameters into layers, kept in the network's own order.

A parameter's *layer* is its dotted name up to and including the first numeric part
(``blocks.3.conv1.weight`` -> ``blocks.3``, ``encoder.layers.11.attention.q_proj.weight``
-> ``encoder.layers.11``); a name without a numeric part belongs to its module
(``encoder.pos_conv_embed.conv.weight`` -> ``encoder.pos_conv_embed.conv``; a bare
``scale`` stays ``scale``). Layers are listed in the order their first parameter appears
in the encoder's state dict (the order task vectors store), never alphabetically, so that
``blocks.10`` follows ``blocks.9``.
"""

from __future__ import annotations

from typing import Iterable


def layer_of(name: str) -> str:
    """The layer (module prefix) parameter ``name`` belongs to."""
    parts = name.split(".")
    for index, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[:index + 1])
    return ".".join(parts[:-1]) or name


def ordered_layers(names: Iterable[str]) -> list[str]:
    """Layers of ``names`` in order of first appearance (network order)."""
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(layer_of(name), None)
    return list(seen)
