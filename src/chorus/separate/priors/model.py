"""A trained source prior on disk: ``config.json`` + ``model.safetensors``.

The folder is a shareable artefact, so loading trusts nothing: the JSON is validated
(format name and version, sizes, labels), the weights are read with safetensors (never
unpickled) and must match the declared network exactly.

Layout::

    PRIOR_DIR/
      config.json         {"format": "chorus-source-prior", "version": 1, "name": ...,
                           "sample_rate": ..., "segment_seconds": ..., "labels": [...],
                           "spectral": {...}, "network": {...}, "training": {...}}
      model.safetensors   the (EMA) weights of the denoising network
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, ValidationError, model_validator

from ...schema import StrictModel
from ...fileio import atomic_path, write_json
from ..errors import ModelLoadError
from .edm import denoise
from .network import NetworkConfig, TFAttentionNet
from .spectral import SpectralConfig

FORMAT = "chorus-source-prior"
VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class _SpectralModel(StrictModel):
    n_fft: int = Field(ge=16, le=8192)
    hop: int = Field(ge=1)
    alpha: float = Field(gt=0, le=1)
    scale: float = Field(gt=0)
    representation: Literal["magnitude", "complex"]


class _NetworkModel(StrictModel):
    freq_bins: int = Field(ge=1)
    channels: int = Field(ge=1, le=4096)
    depth: int = Field(ge=1, le=64)
    heads: int = Field(ge=1)
    patch_freq: int = Field(ge=1)
    patch_time: int = Field(ge=1)
    mlp_ratio: int = Field(ge=1, le=16)
    embed_dim: int = Field(ge=2)
    num_classes: int = Field(ge=0)
    in_channels: int = Field(ge=1, le=2)


class _PriorConfigModel(StrictModel):
    format: str
    version: int
    name: str
    sample_rate: int = Field(ge=1000)
    segment_seconds: float = Field(gt=0)
    labels: list[str]
    spectral: _SpectralModel
    network: _NetworkModel
    training: dict = {}

    @model_validator(mode="after")
    def _consistent(self) -> "_PriorConfigModel":
        if self.format != FORMAT:
            raise ValueError(f"format is {self.format!r}, expected {FORMAT!r}")
        if self.version != VERSION:
            raise ValueError(f"format version {self.version} is not supported (this chorus reads {VERSION})")
        if self.network.freq_bins != self.spectral.n_fft // 2:
            raise ValueError("network.freq_bins must equal spectral.n_fft / 2")
        if self.network.in_channels != (1 if self.spectral.representation == "magnitude" else 2):
            raise ValueError(f"network.in_channels does not fit a {self.spectral.representation} representation")
        if self.network.num_classes not in (0, len(self.labels)):
            raise ValueError(f"a class-conditional network needs one label per class "
                             f"({self.network.num_classes} classes, {len(self.labels)} labels)")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be distinct")
        return self


@dataclass
class SourcePrior:
    """A denoiser of one kind of source (or of several, class-conditional).

    ``labels``: what the prior was trained on; for a class-conditional prior, the class
    names in class-id order.
    """

    network: TFAttentionNet
    spectral: SpectralConfig
    sample_rate: int
    segment_seconds: float
    name: str
    labels: list[str]
    training: dict = field(default_factory=dict)

    @property
    def conditional(self) -> bool:
        return self.network.config.num_classes > 0

    def class_id(self, label: str | None) -> int | None:
        """The class id of ``label`` (None for an unconditional prior)."""
        if not self.conditional:
            if label is not None and label not in self.labels:
                raise ModelLoadError(self.name, f"unconditional prior trained on {self.labels}, not {label!r}")
            return None
        if label is None or label not in self.labels:
            raise ModelLoadError(self.name, f"class-conditional prior: choose one of {self.labels} "
                                            f"(write PRIOR_DIR#LABEL), got {label!r}")
        return self.labels.index(label)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, class_id: int | None = None) -> torch.Tensor:
        """``D(x; σ)`` for spectrograms ``[B, C, F, T]`` and noise levels ``[B]``."""
        ids = None if class_id is None else torch.full((x.shape[0],), class_id, dtype=torch.long, device=x.device)
        return denoise(self.network, x, sigma, ids)

    def config_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "sample_rate": self.sample_rate,
                "segment_seconds": self.segment_seconds, "labels": list(self.labels),
                "spectral": self.spectral.model_dump(), "network": self.network.config.model_dump(),
                "training": self.training}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically each)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp), metadata={"format": FORMAT})
        write_json(directory / CONFIG_FILE, self.config_dict())
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "SourcePrior":
        """Load and validate a prior folder."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise ModelLoadError(directory, f"not a source prior folder: {path.name} is missing")
        try:
            config = _PriorConfigModel.model_validate(json.loads(config_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
            raise ModelLoadError(config_path, f"invalid prior config: {exc}") from exc
        network = TFAttentionNet(NetworkConfig(**config.network.model_dump()))
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(weights_path, f"cannot read weights: {exc}") from exc
        expected = network.state_dict()
        wrong = sorted(k for k in expected.keys() | state.keys()
                       if k not in state or k not in expected or state[k].shape != expected[k].shape)
        if wrong:
            raise ModelLoadError(weights_path, f"weights do not match the declared network ({len(wrong)} tensors "
                                               f"missing, unexpected or mis-shaped, e.g. {wrong[0]!r})")
        bad = next((k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
        if bad is not None:
            raise ModelLoadError(weights_path, f"tensor {bad!r} holds NaN or infinite values")
        network.load_state_dict(state)
        network.eval().to(device)
        return cls(network, SpectralConfig(**config.spectral.model_dump()), config.sample_rate,
                   config.segment_seconds, config.name, list(config.labels), dict(config.training))
