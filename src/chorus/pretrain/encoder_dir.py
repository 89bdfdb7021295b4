"""An encoder on its own, as a directory: ``encoder.json`` + ``encoder.safetensors``.

``encoder.json`` records the registry name, the architecture (rebuilt without any hub
access, as for chorus model directories), the sample rate and the sha256 of the tensors
file. Loading validates the JSON schema, the safetensors format, the sha256 and every
tensor name and shape (typed errors name the file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import field_validator

from ..schema import StrictModel
from .. import __version__
from ..encoders import Encoder, build_encoder
from ..fileio import write_json
from ..model.errors import ModelFileError
from ..model.classifier import load_checked
from ..model.layout import parse_json_file
from ..model.schema import EncoderEntry, supported_version
from ..tensorfile import load_tensors, save_tensors

ENCODER_JSON = "encoder.json"
ENCODER_TENSORS = "encoder.safetensors"
ENCODER_FORMAT_VERSION = 1


class EncoderJson(StrictModel):
    """``encoder.json`` of an encoder directory."""
    format: Literal["chorus-encoder"] = "chorus-encoder"
    format_version: int
    encoder: EncoderEntry
    sha256: str
    chorus_version: str

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        return supported_version(version, ENCODER_FORMAT_VERSION)


def save_encoder(encoder: Encoder, directory: str | Path) -> Path:
    """Write ``encoder``'s full state dict and its record into ``directory`` (atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    digest = save_tensors(directory / ENCODER_TENSORS, encoder.state_dict())
    record = EncoderJson(format_version=ENCODER_FORMAT_VERSION, sha256=digest, chorus_version=__version__,
                         encoder=EncoderEntry(name=encoder.name, architecture=encoder.architecture(),
                                              sample_rate=encoder.sample_rate))
    write_json(directory / ENCODER_JSON, record.model_dump(mode="json"))
    return directory


def load_saved_encoder(directory: str | Path) -> Encoder:
    """The encoder saved in ``directory`` by :func:`save_encoder`, in eval mode."""
    directory = Path(directory)
    record = parse_json_file(directory / ENCODER_JSON, EncoderJson, ModelFileError)
    encoder = build_encoder(record.encoder.architecture)
    encoder.name = record.encoder.name
    load_checked(encoder, load_tensors(directory / ENCODER_TENSORS, record.sha256), directory / ENCODER_TENSORS)
    return encoder.eval()
