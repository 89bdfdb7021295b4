"""Gram statistics of a task vector: ``XᵀX`` of the inputs of every linear/conv layer.

``gram.safetensors`` (optional, next to ``deltas.safetensors``) holds, for each weight
``W`` of an ``nn.Linear`` or an ungrouped zero-padded ``nn.Conv1d``/``nn.Conv2d`` of the
encoder, under the weight's state-dict name:

- ``<name>``: ``G = Σ x xᵀ`` float32 ``[d, d]``, summed in float64 over every input row
  ``x`` the layer saw on the party's clips. Linear: ``x`` is one input vector (a frame),
  ``d = in_features``. Convolution: ``x`` is one receptive-field patch, unfolded as
  ``torch.nn.functional.unfold`` does (channel-major, then kernel positions), including
  the zero padding, so ``d = in_channels · prod(kernel)`` matches the weight read as
  ``[out, d]``;
- ``<name>::count``: int64 ``[1]``, how many rows ``x`` were summed.

Clips are batched only with clips of equal length, so no padded frame enters a Gram.
Grouped/depthwise convolutions and other layers have no Gram (merges that need one treat
them as they treat biases). Validation: names must be weights of the vector, ``[d, d]``
with ``d`` the layer's input width; on read, every Gram must be finite and symmetric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import TaskVectorFileError

GRAM_FILE = "gram.safetensors"
COUNT_SUFFIX = "::count"
SYMMETRY_TOLERANCE = 1e-5
"""Largest ``|G - Gᵀ|`` accepted, relative to ``max |G|``."""
_BLOCK = 256


@dataclass
class GramStatistics:
    """Per weight name: ``grams[name]`` float64 ``[d, d]`` and ``counts[name]`` rows; ``clips``."""

    grams: dict[str, Tensor]
    counts: dict[str, int]
    clips: int


def gram_layers(encoder: nn.Module) -> dict[str, nn.Module]:
    """``{weight state-dict name: module}`` of the layers a Gram is kept for."""
    layers = {}
    for path, module in encoder.named_modules():
        if isinstance(module, nn.Linear) or (
                isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.groups == 1
                and module.padding_mode == "zeros" and not isinstance(module.padding, str)):
            layers[f"{path}.weight" if path else "weight"] = module
    return layers


def input_rows(module: nn.Module, x: Tensor) -> Tensor:
    """The rows ``[n, d]`` whose Gram the layer ``module`` contributes for input ``x``."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(module, nn.Conv1d):
        x = x.unsqueeze(-2)
        kernel, dilation = (1, module.kernel_size[0]), (1, module.dilation[0])
        padding, stride = (0, module.padding[0]), (1, module.stride[0])
    else:
        kernel, dilation, padding, stride = module.kernel_size, module.dilation, module.padding, module.stride
    patches = nn.functional.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    return patches.transpose(1, 2).reshape(-1, patches.shape[1])


def compute_gram(encoder: nn.Module, waveforms: Sequence[np.ndarray], batch_size: int = 8) -> GramStatistics:
    """Gram statistics of ``encoder`` (an :class:`~chorus.encoders.Encoder`, eval mode,
    no gradients) over ``waveforms`` (mono, at the encoder's rate), via forward hooks."""
    from ..encoders.batching import equal_length_passes

    layers = gram_layers(encoder)
    grams: dict[str, Tensor] = {}
    counts = dict.fromkeys(layers, 0)

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            rows = input_rows(module, inputs[0].detach()).double()
            grams[name] = rows.T @ rows if name not in grams else grams[name].addmm_(rows.T, rows)
            counts[name] += rows.shape[0]

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in layers.items()]
    try:
        for _ in equal_length_passes(encoder, waveforms, batch_size):
            pass  # the hooks record each batch's layer inputs
    finally:
        for handle in handles:
            handle.remove()
    seen = {name for name in layers if name in grams}
    return GramStatistics({n: grams[n] for n in sorted(seen)}, {n: counts[n] for n in sorted(seen)}, len(waveforms))


def gram_tensors(stats: GramStatistics) -> dict[str, Tensor]:
    """The tensors of ``gram.safetensors`` for ``stats``."""
    tensors: dict[str, Tensor] = {}
    for name, gram in stats.grams.items():
        tensors[name] = gram.float().contiguous()
        tensors[name + COUNT_SUFFIX] = torch.tensor([stats.counts[name]], dtype=torch.int64)
    return tensors


def input_width(shape: Sequence[int]) -> int:
    """Input width ``d`` of a weight of ``shape`` (``[out, in, *kernel]`` -> ``in · prod(kernel)``)."""
    return math.prod(shape[1:])


def check_gram_header(path: Path, header: dict, shapes: dict[str, list[int]]) -> None:
    """Every Gram names a weight of the vector (``shapes``: its deltas' shapes), is F32
    ``[d, d]`` with ``d`` its input width, and has an I64 ``[1]`` count."""
    for key, info in header.items():
        name = key[: -len(COUNT_SUFFIX)] if key.endswith(COUNT_SUFFIX) else key
        shape = shapes.get(name)
        if shape is None or len(shape) < 2:
            raise TaskVectorFileError(path, f"{key!r} is not the Gram of a weight matrix of the task vector")
        if key.endswith(COUNT_SUFFIX):
            if info["dtype"] != "I64" or info["shape"] != [1]:
                raise TaskVectorFileError(path, f"{key!r} must be one int64 count")
            continue
        width = input_width(shape)
        if info["dtype"] != "F32" or info["shape"] != [width, width]:
            raise TaskVectorFileError(path, f"Gram {key!r} is {info['dtype']}{info['shape']}, expected F32"
                                            f"[{width}, {width}] (the input width of {shape})")
        if key + COUNT_SUFFIX not in header:
            raise TaskVectorFileError(path, f"Gram {key!r} has no {key + COUNT_SUFFIX!r}")


def read_gram(path: Path, name: str) -> Tensor:
    """Gram of weight ``name`` from ``path`` as float64, checked finite and symmetric."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        gram = handle.get_tensor(name).double()
    if not bool(torch.isfinite(gram).all()):
        raise TaskVectorFileError(path, f"Gram {name!r} holds non-finite values")
    scale = float(gram.abs().max()) if gram.numel() else 0.0
    for begin in range(0, gram.shape[0], _BLOCK):  # by row blocks: no second [d, d] temporary
        rows = gram[begin:begin + _BLOCK]
        if float((rows - gram[:, begin:begin + _BLOCK].T).abs().max()) > SYMMETRY_TOLERANCE * scale:
            raise TaskVectorFileError(path, f"Gram {name!r} is not symmetric")
    return gram


def write_gram(directory: str | Path, stats: GramStatistics, computed_on: str = "finetuned") -> Path:
    """Store ``stats`` as ``gram.safetensors`` in the task-vector ``directory`` and record
    it (sha256, ``computed_on``, clip count) in its manifest. Returns the file's path."""
    from ..fileio import write_json
    from ..model.layout import parse_json_file
    from ..tensorfile import save_tensors
    from .manifest import MANIFEST_FILE, GramEntry, TaskVectorManifest

    directory = Path(directory)
    manifest = parse_json_file(directory / MANIFEST_FILE, TaskVectorManifest, TaskVectorFileError)
    shapes = {name: entry.shape for name, entry in manifest.tensors.items()}
    for name, gram in stats.grams.items():
        if name not in shapes or tuple(gram.shape) != (input_width(shapes[name]),) * 2:
            raise TaskVectorFileError(directory / MANIFEST_FILE, f"the Gram of {name!r} {tuple(gram.shape)} fits no "
                                                                 "weight of this task vector")
    digest = save_tensors(directory / GRAM_FILE, gram_tensors(stats))
    updated = manifest.model_copy(update={"files": {**manifest.files, GRAM_FILE: digest},
                                          "gram": GramEntry(computed_on=computed_on, clips=stats.clips)})
    write_json(directory / MANIFEST_FILE, updated.model_dump(mode="json"))
    return directory / GRAM_FILE
