"""Scoring encoder weights with composed heads: the metric and the loss on labelled clips.

Multi-class: ``accuracy`` (top-1 over the heads' labels) and ``loss`` = mean cross-entropy
of the (calibrated) logits against each clip's label. Multi-label: ``accuracy`` is macro
mAP and ``loss`` the mean binary cross-entropy over every class. Clips whose label the
heads do not know are refused (:class:`AnalysisError`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data.clipset import EvalAudio
from ..evaluate import layer_features
from ..taskvec.merge import ComposedHeads, MergePlan
from ..taskvec.merge.compose import build_encoder_from
from .errors import AnalysisError


def features_of(plan: MergePlan, state: dict[str, Tensor], heads: ComposedHeads, audio: EvalAudio,
                device: str | torch.device = "cpu") -> Tensor:
    """Pooled features ``[clips, features]`` (on the CPU) of the encoder with weights
    ``state`` (the layer and pooling ``heads`` read), run on ``device``."""
    return layer_features(build_encoder_from(plan, state).to(device), heads.settings, audio)


def score(heads: ComposedHeads, features: Tensor, clips: Sequence) -> dict[str, float]:
    """``{"accuracy", "loss"}`` of ``heads`` on ``features [clips, features]`` of ``clips``."""
    logits = heads.logits(features).double()
    index = {label: i for i, label in enumerate(heads.labels)}
    unknown = sorted({label for clip in clips for label in clip.labels} - set(index))
    if unknown:
        raise AnalysisError(f"clips carry labels no head knows: {', '.join(unknown[:5])}")
    if heads.settings.task == "multiclass":
        targets = torch.tensor([index[clip.labels[0]] for clip in clips])
        loss = torch.nn.functional.cross_entropy(logits, targets)
        accuracy = float((logits.argmax(dim=1) == targets).double().mean())
        return {"accuracy": accuracy, "loss": float(loss)}
    from ..metrics import ranking_metrics

    truth = torch.zeros_like(logits)
    for row, clip in enumerate(clips):
        for label in clip.labels:
            truth[row, index[label]] = 1.0
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth)
    return {"accuracy": ranking_metrics(torch.sigmoid(logits).numpy(), truth.numpy())["map"], "loss": float(loss)}
