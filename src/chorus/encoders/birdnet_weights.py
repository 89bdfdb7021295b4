"""BirdNET V2.4's weights from its ``.tflite`` graph into :class:`BirdNETNetwork`.

The graph is walked in execution order; every operator with a float constant input is
matched against what the torch network expects next (operator kind, original layer name,
shapes, strides, padding, fused activation). The first difference is reported with the
file and operator number, and nothing is loaded unless everything matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .birdnet_network import BRANCHES, WINDOW, BirdNETConfig, BirdNETNetwork
from .tflite_reader import FlatGraph, FlatOp
from .errors import NotBirdNETError

# The operator kinds of the V2.4 graph; anything else means another network.
KNOWN_KINDS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CAST", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DIV", "EXPAND_DIMS",
    "FLOOR_DIV", "FULLY_CONNECTED", "GATHER", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MUL", "PACK",
    "PAD", "POW", "RANGE", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "RESHAPE", "REVERSE_V2", "RFFT2D",
    "SHAPE", "SPLIT_V", "SQUEEZE", "STRIDED_SLICE", "SUB", "TRANSPOSE",
})
SAME, VALID = "SAME", "VALID"


@dataclass(frozen=True)
class Expected:
    """The next weighted operator: its kind, a fragment of the original layer name, what each
    float constant input is (a state-dict key, or a fixed number) and options to check."""

    kind: str
    tag: str
    constants: tuple[str | float, ...]
    options: dict[str, Any] = field(default_factory=dict)


def _conv(kind: str, tag: str, prefix: str, stride: int = 1, padding: str | None = None,
          activation: str | None = None) -> Expected:
    """A conv with bias; ``padding`` None for 1x1 convs, whose padding changes nothing."""
    options = {"stride": (stride, stride), "activation": activation}
    return Expected(kind, tag, (f"{prefix}.weight", f"{prefix}.bias"),
                    options if padding is None else {**options, "padding": padding})


def expected_ops(config: BirdNETConfig) -> list[Expected]:
    """The weighted operators of the V2.4 graph, in execution order, for ``config``."""
    out = [Expected("ADD", "MEL_SPEC1", (1e-6,)), Expected("SUB", "MEL_SPEC1", (0.5,)),
           Expected("MUL", "MEL_SPEC1", (2.0,))]
    for index in range(len(BRANCHES)):
        tag, prefix = f"MEL_SPEC{index + 1}", f"frontend.branches.{index}"
        out += [Expected("MUL", tag, (f"{prefix}.window",)), Expected("FULLY_CONNECTED", tag, (f"{prefix}.filters",)),
                Expected("POW", tag, (f"{prefix}.exponent",))]
    out += [Expected("MUL", "BNORM_SPEC", ("frontend.norm.weight",)), Expected("ADD", "BNORM_SPEC", ("frontend.norm.bias",)),
            _conv("CONV_2D", "CONV_0", "stem.conv", 2, SAME, "RELU"), _conv("CONV_2D", "POOL_0_CONV", "stem.mix")]
    blocks = [(name, stage.se, b == 0) for name, (stage, b) in zip(
        config.block_names(), [(s, b) for s in config.stages for b in range(s.blocks)])]
    for index, (name, se, first) in enumerate(blocks):
        tag, prefix = f"BLOCK_{name}_", f"blocks.{index}"
        out.append(_conv("CONV_2D", tag + "CONV_1", f"{prefix}.expand"))
        out.append(_conv("DEPTHWISE_CONV_2D", tag + "CONV_2", f"{prefix}.depthwise", 2 if first else 1,
                         VALID if first else SAME))
        if se:
            out += [_conv("CONV_2D", tag + "SE_CONV_1", f"{prefix}.se.reduce"),
                    _conv("CONV_2D", tag + "SE_CONV_2", f"{prefix}.se.expand")]
        out.append(_conv("CONV_2D", tag + "CONV_3", f"{prefix}.project"))
    return out + [Expected("MUL", "BNORM_POST", ("post_norm.weight",)),
                  Expected("ADD", "BNORM_POST", ("post_norm.bias",), {"activation": "RELU"}),
                  _conv("CONV_2D", "POST_CONV_1", "post_conv", padding=VALID, activation="RELU"),
                  Expected("FULLY_CONNECTED", "CLASS_DENSE_LAYER", ("classifier.weight", "classifier.bias"))]


def _to_torch(kind: str, array: np.ndarray, target: torch.Tensor) -> np.ndarray:
    """A stored constant in torch's layout: convs ``[out, kh, kw, in]`` -> ``[out, in, kh, kw]``
    (or ``[out, in]`` for a 1x1 conv computed as a dense layer), depthwise
    ``[1, kh, kw, channels]`` -> ``[channels, 1, kh, kw]``."""
    if array.ndim == 4 and target.dim() == 2 and array.shape[1:3] == (1, 1):
        return array.reshape(array.shape[0], array.shape[3])
    if target.dim() == 4:
        return array.transpose(3, 0, 1, 2) if kind == "DEPTHWISE_CONV_2D" else array.transpose(0, 3, 1, 2)
    return array


def _describe(graph: FlatGraph, index: int, op: FlatOp) -> str:
    shapes = [graph.tensor(j).shape for j in op.inputs if j >= 0 and graph.tensor(j).data is not None]
    names = [graph.tensor(j).name.split(";")[0] for j in op.inputs if j >= 0 and graph.tensor(j).data is not None]
    return f"operator #{index} {op.kind} with constants {names} of shapes {shapes}"


def _check_io(graph: FlatGraph, config: BirdNETConfig) -> None:
    path = graph.path
    unknown = sorted({op.kind for op in graph.ops} - KNOWN_KINDS)
    if unknown:
        raise NotBirdNETError(f"{path}: not BirdNET V2.4: operator {unknown[0]} does not occur in V2.4")
    if len(graph.inputs) != 1 or graph.tensor(graph.inputs[0]).shape[-1:] != (WINDOW,):
        shapes = [graph.tensor(i).shape for i in graph.inputs]
        raise NotBirdNETError(f"{path}: not BirdNET V2.4: input shapes {shapes}, expected one [1, {WINDOW}]")
    if len(graph.outputs) != 1 or graph.tensor(graph.outputs[0]).shape[-1:] != (config.classes,):
        shapes = [graph.tensor(i).shape for i in graph.outputs]
        raise NotBirdNETError(f"{path}: not BirdNET V2.4: output shapes {shapes}, expected one [1, {config.classes}]")
    named = graph.by_name()
    for index, branch in enumerate(BRANCHES):
        for what, value in (("frame_length", branch.n_fft), ("frame_step", branch.hop)):
            tensor = named.get(f"model/MEL_SPEC{index + 1}/stft/{what}")
            found = None if tensor is None or tensor.data is None else int(tensor.data)
            if found != value:
                raise NotBirdNETError(f"{path}: not BirdNET V2.4: MEL_SPEC{index + 1} {what} is {found}, expected {value}")


def read_state_dict(graph: FlatGraph, network: BirdNETNetwork) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of ``network`` from ``graph``; :class:`NotBirdNETError`
    naming the first operator, layer or shape that differs."""
    path, config = graph.path, network.config
    _check_io(graph, config)
    targets = network.state_dict()
    weighted = [(i, op) for i, op in enumerate(graph.ops)
                if any(j >= 0 and graph.tensor(j).data is not None and graph.tensor(j).dtype in (np.float32, np.float16)
                       for j in op.inputs)]
    expected = expected_ops(config)
    state: dict[str, torch.Tensor] = {}
    for position, want in enumerate(expected):
        if position >= len(weighted):
            raise NotBirdNETError(f"{path}: not BirdNET V2.4: the graph ends before {want.kind} of {want.tag}")
        index, op = weighted[position]
        constants = [graph.tensor(j) for j in op.inputs if j >= 0 and graph.tensor(j).data is not None
                     and graph.tensor(j).dtype in (np.float32, np.float16)]
        found = _describe(graph, index, op)
        if op.kind != want.kind or len(constants) != len(want.constants) or want.tag not in constants[0].name:
            raise NotBirdNETError(f"{path}: not BirdNET V2.4: expected {want.kind} of {want.tag}, found {found}")
        for key, value in want.options.items():
            if op.options.get(key) != value:
                raise NotBirdNETError(f"{path}: not BirdNET V2.4: {found}: {key} {op.options.get(key)}, expected {value}")
        for what, tensor in zip(want.constants, constants):
            array = np.asarray(tensor.data, dtype=np.float32)
            if isinstance(what, float):
                if array.shape != () or not np.isclose(float(array), what, rtol=1e-6):
                    raise NotBirdNETError(f"{path}: not BirdNET V2.4: {found}: constant {array.ravel()[:3]}, expected {what}")
                continue
            value = _to_torch(op.kind, array, targets[what])
            if value.shape != tuple(targets[what].shape):
                raise NotBirdNETError(f"{path}: not BirdNET V2.4: {tensor.name.split(';')[0]} has shape {tensor.shape}, "
                                      f"expected {tuple(targets[what].shape)} for {what}")
            state[what] = torch.from_numpy(np.array(value, dtype=np.float32))
    if len(weighted) != len(expected):
        index, op = weighted[len(expected)]
        raise NotBirdNETError(f"{path}: not BirdNET V2.4: unexpected {_describe(graph, index, op)} after the classifier")
    missing = sorted(set(targets) - set(state))
    if missing:
        raise NotBirdNETError(f"{path}: not BirdNET V2.4: nothing in the graph for {missing[0]}")
    return state
