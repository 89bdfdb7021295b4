"""Running a classifier over the clips of a manifest, with the audio decoded once.

:class:`EvalAudio` holds decoded clips so that many models (every merge method, every λ
of a sweep) are scored without decoding again. Clips are centre-cropped or zero-padded to
the model's training clip length, as during fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..data.loading import FailedClip
from ..data.manifest import Clip
from ..encoders import Encoder
from ..model import ClassifierModel, ClassifierSettings, HeadEntry
from ..progress import ProgressFactory
from ..train.data import ClipSet, load_clipset
from ..train.finetune import predict_logits
from .metrics import confusion_matrix, evaluate_logits


@dataclass
class EvalAudio:
    """Decoded clips at ``sample_rate`` (``waveforms[i]``: ``[samples]`` float32 of ``clips[i]``);
    ``failures``: clips that could not be decoded (left out, reported)."""

    clips: list[Clip]
    waveforms: list[np.ndarray]
    sample_rate: int
    failures: list[FailedClip] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    def subset(self, keep: Sequence[int]) -> "EvalAudio":
        return EvalAudio([self.clips[i] for i in keep], [self.waveforms[i] for i in keep], self.sample_rate,
                         self.failures)

    def of_groups(self, groups: Sequence[str]) -> "EvalAudio":
        """The clips whose group is in ``groups``."""
        return self.subset([i for i, clip in enumerate(self.clips) if clip.group in set(groups)])


def load_eval_audio(clips: Sequence[Clip], sample_rate: int, progress: ProgressFactory | None = None,
                    desc: str = "loading clips") -> EvalAudio:
    """Decode ``clips`` at ``sample_rate``; clips that fail are reported in ``failures``."""
    failures: list[FailedClip] = []
    labels = sorted({label for clip in clips for label in clip.labels})
    loaded = load_clipset(list(clips), labels, "multilabel", sample_rate, failures, progress, desc)
    return EvalAudio(loaded.clips, loaded.waveforms, sample_rate, failures)


def _predict(module: nn.Module, settings: ClassifierSettings, audio: EvalAudio, batch_size: int) -> Tensor:
    """``module``'s outputs ``[clips, ...]`` on centred crops of ``settings.clip_seconds``."""
    seconds = settings.clip_seconds
    clip_samples = None if seconds is None else int(round(seconds * audio.sample_rate))
    clipset = ClipSet(audio.clips, audio.waveforms, torch.zeros(0), audio.sample_rate)
    return predict_logits(module, clipset, clip_samples, batch_size, torch.device("cpu"))


def _check_rate(audio: EvalAudio, encoder: Encoder) -> None:
    if audio.sample_rate != encoder.sample_rate:
        raise ValueError(f"audio decoded at {audio.sample_rate} Hz, the model wants {encoder.sample_rate} Hz")


def model_logits(model: ClassifierModel, audio: EvalAudio, batch_size: int = 16) -> Tensor:
    """Logits ``[clips, classes]`` of ``model`` on every clip of ``audio``, in clip order."""
    _check_rate(audio, model.encoder)
    return _predict(model, model.settings, audio, batch_size)


class _Features(nn.Module):
    """A classifier's pooled features in place of its logits (for batched prediction)."""

    def __init__(self, model: ClassifierModel):
        super().__init__()
        self.model = model

    def forward(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        return self.model.features(waveforms, lengths)


def layer_features(encoder: Encoder, settings: ClassifierSettings, audio: EvalAudio, batch_size: int = 16) -> Tensor:
    """``[clips, features]``: the pooled layer ``settings`` names, as a classifier's heads read it."""
    _check_rate(audio, encoder)
    return _predict(_Features(ClassifierModel(encoder, [HeadEntry(labels=["_"])], settings)), settings, audio,
                    batch_size)


def evaluate_model(model: ClassifierModel, audio: EvalAudio, batch_size: int = 16) -> dict:
    """Overall and per-group metrics of ``model`` on ``audio`` (see :mod:`.metrics`), the
    confusion matrix (multi-class) and the clips that failed to decode."""
    logits = model_logits(model, audio, batch_size)
    result = evaluate_logits(logits, [clip.labels for clip in audio.clips], [clip.group for clip in audio.clips],
                             model.labels, model.task)
    if model.task == "multiclass":
        axis, counts = confusion_matrix(logits.numpy(), [clip.labels[0] for clip in audio.clips], model.labels)
        result["confusion"] = {"labels": axis, "counts": counts.tolist()}
    result["failed_files"] = [{"path": str(f.clip.path), "error": str(f.error)} for f in audio.failures]
    return result
