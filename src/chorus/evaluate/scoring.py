"""Running a classifier over the clips of a manifest, with the audio decoded once.

:class:`~chorus.data.clipset.EvalAudio` holds decoded clips so that many models (every merge method, every λ
of a sweep) are scored without decoding again. Clips are centre-cropped or zero-padded to
the model's training clip length, as during fine-tuning.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from ..encoders import Encoder
from ..model import ClassifierModel, ClassifierSettings, HeadEntry
from ..data.clipset import ClipSet, EvalAudio
from ..model.inference import predict_clips
from .metrics import confusion_matrix, evaluate_logits


def _predict(module: nn.Module, settings: ClassifierSettings, audio: EvalAudio, batch_size: int) -> Tensor:
    """``module``'s outputs ``[clips, ...]`` on centred crops of ``settings.clip_seconds``,
    computed on the device ``module`` sits on (returned on the CPU)."""
    seconds = settings.clip_seconds
    clip_samples = None if seconds is None else int(round(seconds * audio.sample_rate))
    clipset = ClipSet(audio.clips, audio.waveforms, torch.zeros(0), audio.sample_rate)
    device = next(module.parameters(), torch.empty(0)).device
    return predict_clips(module, clipset, clip_samples, batch_size, device)


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
