"""Reading a TensorFlow Lite flatbuffer (``.tflite``) without TensorFlow.

The pure-Python ``tflite`` package parses the flatbuffer; this module turns its first
subgraph into plain Python: tensors (name, shape, constant data as NumPy when stored) and
operators (kind, input/output tensor indices, the options chorus needs). Nothing is
executed and nothing is unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EncoderLoadError, TFLiteReadError

TFLITE_HINT = "install it with `pip install --no-deps tflite==2.18.0 && pip install flatbuffers`"
# tflite.TensorType codes -> NumPy dtypes (the ones these models store)
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 9: np.int8}
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


@dataclass(frozen=True)
class FlatTensor:
    """One tensor of the graph: ``data`` holds the stored constant (None for activations)."""

    name: str
    shape: tuple[int, ...]
    dtype: Any
    data: np.ndarray | None


@dataclass(frozen=True)
class FlatOp:
    """One operator: ``kind`` as TFLite names it (``CONV_2D``), tensor indices (-1 = absent)
    and its options (``stride``, ``padding``, ``activation``, ``filter``, ``keep_dims``)."""

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlatGraph:
    """The first subgraph of a model file."""

    path: Path
    tensors: tuple[FlatTensor, ...]
    ops: tuple[FlatOp, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def tensor(self, index: int) -> FlatTensor:
        return self.tensors[index]

    def by_name(self) -> dict[str, FlatTensor]:
        return {t.name: t for t in self.tensors}


def _tflite_module() -> Any:
    try:
        import tflite
    except ImportError:
        raise EncoderLoadError(f"the `tflite` package is needed to read .tflite files; {TFLITE_HINT}") from None
    return tflite


def _options(tflite: Any, kind: str, op: Any) -> dict[str, Any]:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        opts = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        opts.Init(table.Bytes, table.Pos)
        out = {"stride": (opts.StrideH(), opts.StrideW()), "padding": _PADDING.get(opts.Padding()),
               "activation": _ACTIVATION.get(opts.FusedActivationFunction(), "OTHER"),
               "dilation": (opts.DilationHFactor(), opts.DilationWFactor())}
        if kind == "DEPTHWISE_CONV_2D":
            out["multiplier"] = opts.DepthMultiplier()
        return out
    if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        opts = tflite.Pool2DOptions()
        opts.Init(table.Bytes, table.Pos)
        return {"filter": (opts.FilterHeight(), opts.FilterWidth()), "stride": (opts.StrideH(), opts.StrideW()),
                "padding": _PADDING.get(opts.Padding()),
                "activation": _ACTIVATION.get(opts.FusedActivationFunction(), "OTHER")}
    classes = {"ADD": "AddOptions", "MUL": "MulOptions", "SUB": "SubOptions", "DIV": "DivOptions",
               "FULLY_CONNECTED": "FullyConnectedOptions", "CONCATENATION": "ConcatenationOptions"}
    if kind in classes:
        opts = getattr(tflite, classes[kind])()
        opts.Init(table.Bytes, table.Pos)
        out = {"activation": _ACTIVATION.get(opts.FusedActivationFunction(), "OTHER")}
        if kind == "CONCATENATION":
            out["axis"] = opts.Axis()
        return out
    if kind == "MEAN":
        opts = tflite.ReducerOptions()
        opts.Init(table.Bytes, table.Pos)
        return {"keep_dims": bool(opts.KeepDims())}
    return {}


def read_tflite(path: str | Path) -> FlatGraph:
    """Parse ``path``'s first subgraph; :class:`TFLiteReadError` if it is not a TFLite model."""
    path = Path(path)
    tflite = _tflite_module()
    try:
        buffer = path.read_bytes()
    except OSError as exc:
        raise TFLiteReadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(buffer) < 8 or buffer[4:8] != b"TFL3":
        raise TFLiteReadError(f"{path}: not a TensorFlow Lite model (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(buffer, 0)
        if model.SubgraphsLength() < 1:
            raise TFLiteReadError(f"{path}: the model has no subgraph")
        graph = model.Subgraphs(0)
        names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        tensors = []
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            dtype = _DTYPES.get(t.Type())
            raw = model.Buffers(t.Buffer()).DataAsNumpy() if model.Buffers(t.Buffer()).DataLength() else None
            data = None
            if raw is not None and dtype is not None:
                data = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(shape)
            tensors.append(FlatTensor(t.Name().decode("utf-8", "replace"), shape, dtype, data))
        ops = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
            ops.append(FlatOp(kind, tuple(int(j) for j in op.InputsAsNumpy()) if op.InputsLength() else (),
                              tuple(int(j) for j in op.OutputsAsNumpy()) if op.OutputsLength() else (),
                              _options(tflite, kind, op)))
        inputs = tuple(int(graph.Inputs(i)) for i in range(graph.InputsLength()))
        outputs = tuple(int(graph.Outputs(i)) for i in range(graph.OutputsLength()))
    except TFLiteReadError:
        raise
    except Exception as exc:  # a damaged flatbuffer fails anywhere inside the generated parser
        raise TFLiteReadError(f"{path}: damaged TensorFlow Lite flatbuffer ({type(exc).__name__}: {exc})") from None
    return FlatGraph(path, tuple(tensors), tuple(ops), inputs, outputs)
