"""Grouping encoder parameters into layers, kept in the network's own order.

A parameter's *layer* is its dotted name up to and including the first numeric part
(``blocks.3.conv1.weight`` -> ``blocks.3``, ``encoder.layers.11.attention.q_proj.weight``
-> ``encoder.layers.11``); a name without a numeric part belongs to its module
(``encoder.pos_conv_embed.conv.weight`` -> ``encoder.pos_conv_embed.conv``; a bare
``scale`` stays ``scale``). Layers are listed in the order their first parameter appears
in the encoder's state dict (the order task vectors store), never alphabetically, so that
``blocks.10`` follows ``blocks.9``. Where the encoder declares which module gives each of
its exposed layers (:attr:`~chorus.encoders.Encoder.layer_modules`), the layer is named
as probes and fine-tuning name it (``blocks.0`` -> ``block1`` in sfx-cnn).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def layer_of(name: str, exposed: Mapping[str, str] | None = None) -> str:
    """The layer parameter ``name`` belongs to: its module prefix, renamed by ``exposed``
    (module prefix -> exposed layer name) where that names it."""
    parts = name.split(".")
    prefix = next((".".join(parts[:index + 1]) for index, part in enumerate(parts) if part.isdigit()),
                  ".".join(parts[:-1]) or name)
    return (exposed or {}).get(prefix, prefix)


def ordered_layers(names: Iterable[str], exposed: Mapping[str, str] | None = None) -> list[str]:
    """Layers of ``names`` in order of first appearance (network order)."""
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(layer_of(name, exposed), None)
    return list(seen)


def exposed_layers(architecture: dict[str, Any]) -> dict[str, str]:
    """Module prefix -> exposed layer name of the encoder ``architecture`` describes (built
    on the meta device: no weights are allocated); empty when it declares none."""
    import torch

    from ..encoders import build_encoder

    with torch.device("meta"):
        return build_encoder(architecture).exposed_layers()
