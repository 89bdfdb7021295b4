"""BirdNET V2.4's location model (``..._MData_Model_V2_FP16.tflite``) in torch.

Input: latitude (degrees, -90..90), longitude (degrees, -180..180) and week of the year on
BirdNET's 48-week calendar (1..48; -1 for the whole year). Each is scaled to [0, 1] and
encoded by 48 sines with stored phases (``sqrt(2) sin(2 pi t + phase)``; the week's sines
are zeroed for weeks outside 1..48), then three ReLU dense layers (256, 512, 1024) and a
sigmoid layer give one occurrence score per species of the V2.4 label list.
Weights are stored as float16 and used as float32, as the reference runtime does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .errors import LocationError, NotBirdNETError
from .tflite_reader import FlatGraph, read_tflite

_CONVERT = "BirdNET/MNET_CONVERT/"
# name in the graph -> (buffer name, shape)
_CONSTANTS = {
    _CONVERT + "add/y": ("lat_shift", ()),
    _CONVERT + "truediv;BirdNET/MNET_CONVERT/add_2/y": ("lat_scale", ()),
    _CONVERT + "add_2/y": ("lon_shift", ()),
    _CONVERT + "truediv_2;BirdNET/MNET_CONVERT/truediv_2/y": ("lon_scale", ()),
    _CONVERT + "SelectV2/t": ("week_shift", ()),
    _CONVERT + "truediv_4;BirdNET/MNET_CONVERT/range/limit": ("week_scale", ()),
    _CONVERT + "mul_1/x": ("two_pi", ()),
    _CONVERT + "truediv_1": ("phases", (48,)),
    _CONVERT + "Sqrt": ("amplitude", ()),
    _CONVERT + "Greater/y": ("week_low", ()),
    _CONVERT + "Less/y": ("week_high", ()),
}
_DENSE = ("MNET_BLOCK_1_DENSE_1", "MNET_BLOCK_2_DENSE_1", "MNET_BLOCK_3_DENSE_1", "MNET_CLASS_ACTIVATIONS")
WIDTHS = (144, 256, 512, 1024)
KINDS = frozenset({"DEQUANTIZE", "STRIDED_SLICE", "ADD", "MUL", "EXPAND_DIMS", "SIN", "SUB", "GREATER", "LESS",
                   "SELECT_V2", "CONCATENATION", "FULLY_CONNECTED", "LOGISTIC"})


def check_location(lat: float, lon: float, week: int) -> None:
    """Raise :class:`LocationError` unless -90 <= lat <= 90, -180 <= lon <= 180 and week is
    1..48 or -1 (whole year)."""
    if not -90.0 <= lat <= 90.0:
        raise LocationError(f"latitude {lat} is outside -90..90 degrees")
    if not -180.0 <= lon <= 180.0:
        raise LocationError(f"longitude {lon} is outside -180..180 degrees")
    if week != -1 and not 1 <= week <= 48:
        raise LocationError(f"week {week} is outside 1..48 (BirdNET's 48-week year; -1 for the whole year)")


class LocationModel(nn.Module):
    """``coords [n, 3]`` (lat, lon, week) -> occurrence scores ``[n, classes]`` in (0, 1)."""

    def __init__(self, classes: int = 6522):
        super().__init__()
        for name, shape in _CONSTANTS.values():
            self.register_buffer(name, torch.zeros(shape))
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in zip(WIDTHS, WIDTHS[1:] + (classes,)))

    def _sines(self, t: Tensor) -> Tensor:
        return torch.sin(t[:, None] * self.two_pi + self.phases) * self.amplitude

    def forward(self, coords: Tensor) -> Tensor:
        lat, lon, week = coords.float().unbind(dim=1)
        in_year = (week > self.week_low).float() * (week < self.week_high).float()
        x = torch.cat([self._sines((lat + self.lat_shift) * self.lat_scale),
                       self._sines((lon + self.lon_shift) * self.lon_scale),
                       self._sines((week - self.week_shift) * self.week_scale) * in_year[:, None]], dim=1)
        for layer in self.dense[:-1]:
            x = torch.relu(layer(x))
        return torch.sigmoid(self.dense[-1](x))


def _constant(graph: FlatGraph, named: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    tensor = named.get(name)
    if tensor is None or tensor.data is None:
        raise NotBirdNETError(f"{graph.path}: not BirdNET V2.4's location model: no stored tensor {name!r}")
    if tuple(tensor.shape) != shape:
        raise NotBirdNETError(f"{graph.path}: not BirdNET V2.4's location model: {name} has shape "
                              f"{tensor.shape}, expected {shape}")
    return np.array(tensor.data, dtype=np.float32)


def load_location_model(path: str | Path, classes: int = 6522) -> LocationModel:
    """The location model with every constant read from its ``.tflite`` at ``path``."""
    graph = read_tflite(path)
    unknown = sorted({op.kind for op in graph.ops} - KINDS)
    if unknown:
        raise NotBirdNETError(f"{graph.path}: not BirdNET V2.4's location model: operator {unknown[0]} does not occur in it")
    named = graph.by_name()
    model = LocationModel(classes)
    state = {buffer: torch.from_numpy(_constant(graph, named, name, shape)) for name, (buffer, shape) in _CONSTANTS.items()}
    for index, (layer, (n_in, n_out)) in enumerate(zip(_DENSE, zip(WIDTHS, WIDTHS[1:] + (classes,)))):
        prefix = f"BirdNET/{layer}/"
        state[f"dense.{index}.weight"] = torch.from_numpy(_constant(graph, named, prefix + "MatMul", (n_out, n_in)))
        state[f"dense.{index}.bias"] = torch.from_numpy(_constant(graph, named, prefix + "BiasAdd/ReadVariableOp", (n_out,)))
    model.load_state_dict(state, strict=True)
    return model.eval()
