"""``ClassifierModel``: an encoder, one pooled layer, and one or more linear heads.

A chorus model directory holds ``model.json`` (:class:`~chorus.model.schema.ModelJson`),
``encoder.safetensors`` (the encoder's full state dict) and ``heads.safetensors``
(``{i}.weight [classes_i, features]``, ``{i}.bias [classes_i]`` for head ``i``). Loading
rebuilds the encoder from its recorded architecture (no hub access) and validates every
file: JSON schema, safetensors format, sha256, tensor names and shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from pydantic import ValidationError
from torch import Tensor, nn

from .. import __version__
from ..encoders import Encoder, build_encoder
from ..encoders import pool_frames as pool_encoder_frames
from ..errors import FileProblem
from ..fileio import write_json
from ..schema import validation_problems
from ..tensorfile import load_tensors, save_tensors
from .schema import MODEL_FORMAT_VERSION, ClassifierSettings, EncoderEntry, HeadEntry, ModelJson
from .errors import ModelFileError

MODEL_JSON = "model.json"
ENCODER_FILE = "encoder.safetensors"
HEADS_FILE = "heads.safetensors"


def pool_frames(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """Pool ``hidden [batch, frames, features]`` over valid frames (``mask [batch, frames]``)
    to ``[batch, features]``: ``"mean"``, ``"max"`` or ``"mean+max"`` (``[batch, 2 * features]``)
    (:func:`chorus.encoders.pool_frames`). A clip with no valid frame gives zeros."""
    return pool_encoder_frames(hidden, mask, pooling)


class ClassifierModel(nn.Module):
    """Encoder + pooling of one layer + linear heads whose logits are concatenated.

    ``heads``: one :class:`HeadEntry` per head (labels, group, calibration); the model's
    classes are the heads' labels in order.
    """

    def __init__(self, encoder: Encoder, heads: Sequence[HeadEntry], settings: ClassifierSettings):
        super().__init__()
        if settings.layer not in encoder.layer_names:
            raise ValueError(f"encoder {encoder.name!r} has no layer {settings.layer!r}; "
                             f"layers: {', '.join(encoder.layer_names)}")
        self.encoder = encoder
        self.settings = settings
        self.head_entries = list(heads)
        self.layer_index = encoder.layer_names.index(settings.layer)
        features = encoder.layer_dims[self.layer_index] * (2 if settings.pooling == "mean+max" else 1)
        self.heads = nn.ModuleList(nn.Linear(features, len(entry.labels)) for entry in self.head_entries)

    @property
    def labels(self) -> list[str]:
        """Every class, head after head."""
        return [label for entry in self.head_entries for label in entry.labels]

    @property
    def task(self) -> str:
        return self.settings.task

    def pooled_layer(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Pooled features of the chosen layer ``[batch, features]`` and whether each clip
        had at least one valid frame there ``[batch]`` (bool; without one the features are zeros)."""
        outputs = self.encoder(waveforms, lengths)
        mask = outputs.masks[self.layer_index]
        return pool_frames(outputs.hidden[self.layer_index], mask, self.settings.pooling), mask.any(dim=1)

    def features(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """Pooled features of the chosen layer: ``[batch, features]``."""
        return self.pooled_layer(waveforms, lengths)[0]

    def classify(self, features: Tensor) -> Tensor:
        """Logits ``[batch, classes]`` from pooled ``features [batch, features]``."""
        return torch.cat([head(features) for head in self.heads], dim=1)

    def forward(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """``waveforms [batch, samples]`` at the encoder's rate, ``lengths [batch]`` ->
        logits ``[batch, classes]``."""
        return self.classify(self.features(waveforms, lengths))

    def predict_scores(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """Class scores ``[batch, classes]``: softmax (multiclass) or sigmoid (multilabel);
        NaN for a clip too short to give the chosen layer one valid frame (its pooled
        features would be all zeros, and a score from them means nothing)."""
        with torch.inference_mode():
            pooled, valid = self.pooled_layer(waveforms, lengths)
            logits = self.classify(pooled).float()
        scores = logits.softmax(dim=1) if self.task == "multiclass" else logits.sigmoid()
        return scores.masked_fill(~valid.unsqueeze(1), float("nan"))

    def describe(self) -> ModelJson:
        """The ``model.json`` record of this model (file digests left empty)."""
        return ModelJson(
            format_version=MODEL_FORMAT_VERSION,
            encoder=EncoderEntry(name=self.encoder.name, architecture=self.encoder.architecture(),
                                 sample_rate=self.encoder.sample_rate),
            classifier=self.settings, heads=self.head_entries, files={}, chorus_version=__version__,
        )

    def head_tensors(self) -> dict[str, Tensor]:
        """``{"{i}.weight": [classes_i, features], "{i}.bias": [classes_i]}``."""
        return {f"{i}.{name}": value for i, head in enumerate(self.heads) for name, value in head.state_dict().items()}

    def set_heads(self, tensors: Sequence[tuple[Tensor, Tensor]],
                  mismatch: Callable[[Tensor, Tensor], Exception]) -> "ClassifierModel":
        """Copy ``(weight [classes_i, features], bias [classes_i])`` into head ``i`` and
        return the model in eval mode; ``mismatch(weight, head_weight)`` is raised when a
        weight's shape differs from its head's."""
        with torch.no_grad():
            for head, (weight, bias) in zip(self.heads, tensors):
                if head.weight.shape != weight.shape:
                    raise mismatch(weight, head.weight)
                head.weight.copy_(weight)
                head.bias.copy_(bias)
        return self.eval()

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.json``, ``encoder.safetensors`` and ``heads.safetensors`` (atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        record = self.describe()
        record.files = {
            ENCODER_FILE: save_tensors(directory / ENCODER_FILE, self.encoder.state_dict()),
            HEADS_FILE: save_tensors(directory / HEADS_FILE, self.head_tensors()),
        }
        write_json(directory / MODEL_JSON, record.model_dump(mode="json"))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "ClassifierModel":
        """Load a chorus model directory, validating every file (typed errors name the file)."""
        directory = Path(directory)
        record = read_model_json(directory / MODEL_JSON)
        for name in (ENCODER_FILE, HEADS_FILE):
            if name not in record.files:
                raise ModelFileError(directory / MODEL_JSON, f"files lacks the sha256 of {name}")
        encoder = build_encoder(record.encoder.architecture)
        encoder.name = record.encoder.name
        load_checked(encoder, load_tensors(directory / ENCODER_FILE, record.files[ENCODER_FILE]),
                     directory / ENCODER_FILE)
        model = cls(encoder, record.heads, record.classifier)
        load_checked(model.heads, load_tensors(directory / HEADS_FILE, record.files[HEADS_FILE]),
                     directory / HEADS_FILE)
        return model.eval()


def read_model_json(path: Path) -> ModelJson:
    """Parse and validate ``model.json``; :class:`ModelFileError` lists every problem."""
    return parse_json_file(path, ModelJson, ModelFileError)


def parse_json_file(path: Path, schema: type, error: type[FileProblem]) -> Any:
    """Read ``path`` as JSON and validate it with the pydantic ``schema``; raise ``error``
    naming the file and every schema problem."""
    if not path.is_file():
        raise error(path, "file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(path, f"not valid JSON ({exc})") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise error(path, f"invalid: {validation_problems(exc)}") from None


def load_checked(module: nn.Module, tensors: Mapping[str, Tensor], path: Path) -> None:
    """Load ``tensors`` into ``module`` after checking names and shapes; raise
    :class:`ModelFileError` naming ``path`` and what differs."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(name for name in set(expected) & set(tensors) if expected[name].shape != tensors[name].shape)
    problems = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                if names]
    if problems:
        raise ModelFileError(path, "tensors do not fit the network (" + "; ".join(problems) + ")")
    module.load_state_dict(dict(tensors), strict=True)
