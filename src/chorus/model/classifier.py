"""``ClassifierModel``: an encoder, one pooled layer, and one or more linear heads.

A chorus model folder holds ``config.json``, ``model.safetensors`` and a ``README.md``
model card (:mod:`chorus.model.layout`; folders in the first layout, ``model.json`` +
``encoder.safetensors`` + ``heads.safetensors``, still load). Loading rebuilds the encoder
from its recorded architecture (no hub access for the weights) and validates every file:
JSON schema, safetensors format, sha256, tensor names and shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .. import __version__
from ..encoders import Encoder, build_encoder
from ..encoders import pool_frames as pool_encoder_frames
from ..fileio import write_json, write_text
from ..tensorfile import save_tensors
from .card import model_card
from .errors import ModelFileError
from .layout import (CARD_FILE, CONFIG_FILE, ENCODER_PREFIX, HEADS_PREFIX, WEIGHTS_FILE, read_config, read_weights,
                     resolve_model_dir)
from .schema import MODEL_FORMAT_VERSION, ClassifierSettings, EncoderEntry, HeadEntry, ModelConfig


def pool_frames(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """Pool ``hidden [batch, frames, features]`` over valid frames (``mask [batch, frames]``)
    to ``[batch, features]``: ``"mean"``, ``"max"`` or ``"mean+max"`` (``[batch, 2 * features]``)
    (:func:`chorus.encoders.pool_frames`). A clip with no valid frame gives zeros."""
    return pool_encoder_frames(hidden, mask, pooling)


class ClassifierModel(nn.Module):
    """Encoder + pooling of one layer + linear heads whose logits are concatenated.

    ``heads``: one :class:`HeadEntry` per head (labels, group, calibration); the model's
    classes are the heads' labels in order. ``licenses`` (of what was added to the base
    weights) and ``metrics`` go into ``config.json`` and the model card when saved.
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
        self.licenses: list[str] = []
        self.metrics: dict[str, float | None] = {}

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

    def describe(self) -> ModelConfig:
        """The ``config.json`` record of this model (file digests left empty)."""
        return ModelConfig(
            format_version=MODEL_FORMAT_VERSION,
            encoder=EncoderEntry(name=self.encoder.name, architecture=self.encoder.architecture(),
                                 sample_rate=self.encoder.sample_rate),
            classifier=self.settings, heads=self.head_entries, files={}, chorus_version=__version__,
            licenses=sorted(set(self.licenses)), metrics=dict(self.metrics),
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
        """Write ``model.safetensors``, ``config.json`` and ``README.md`` (each atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {**{ENCODER_PREFIX + name: value for name, value in self.encoder.state_dict().items()},
                   **{HEADS_PREFIX + name: value for name, value in self.head_tensors().items()}}
        record = self.describe()
        record.files = {WEIGHTS_FILE: save_tensors(directory / WEIGHTS_FILE, tensors)}
        write_config(directory, record)
        return directory

    @classmethod
    def from_pretrained(cls, source: str | Path, *, revision: str | None = None, api: Any | None = None) -> "ClassifierModel":
        """Load a model folder (either layout) or a Hub repo ``owner/name`` (downloaded with
        ``huggingface_hub``, the ``hub`` extra; ``revision``: a branch, tag or commit),
        validating every file (typed errors name the file)."""
        directory = resolve_model_dir(source, api=api, revision=revision)
        record = read_config(directory)
        encoder_state, head_state = read_weights(directory, record)
        encoder = build_encoder(record.encoder.architecture)
        encoder.name = record.encoder.name
        load_checked(encoder, encoder_state, directory / WEIGHTS_FILE)
        model = cls(encoder, record.heads, record.classifier)
        load_checked(model.heads, head_state, directory / WEIGHTS_FILE)
        model.licenses, model.metrics = list(record.licenses), dict(record.metrics)
        return model.eval()


def write_config(directory: Path, record: ModelConfig) -> None:
    """Write the model card ``README.md`` and then ``config.json`` (last: it marks the
    folder as a model) into ``directory``."""
    write_text(directory / CARD_FILE, model_card(record))
    write_json(directory / CONFIG_FILE, record.model_dump(mode="json"))


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
