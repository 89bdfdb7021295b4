"""The frozen-base baseline: a linear probe per group on the untouched encoder, shared the
same way a fine-tuned group shares its work — as a task vector (here with zero deltas)
carrying a calibrated head — so it composes like any merge.

Features are the classifier's pooled layer (the same layer and pooling the fine-tuned
heads read), computed once per clip. The head is a multinomial logistic regression
(scikit-learn, L2, on standardized features; the standardization is folded back into the
weights so the head reads raw features). Calibration statistics come from the group's own
validation clips, as in fine-tuning.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..encoders import Encoder
from ..model import ClassifierSettings, HeadEntry
from ..train.calibration import calibration_stats, class_counts
from .run import EvalAudio


def fit_linear_head(features: Tensor, labels: Sequence[str], classes: Sequence[str], c: float = 1.0,
                    seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(weight [classes, features], bias [classes])`` of a logistic regression on raw features."""
    from sklearn.linear_model import LogisticRegression

    x = features.double().numpy()
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    index = {label: i for i, label in enumerate(classes)}
    y = np.array([index[label] for label in labels])
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit((x - mean) / std, y)
    weight = np.zeros((len(classes), x.shape[1]))
    bias = np.zeros(len(classes))
    coef, intercept = (model.coef_, model.intercept_) if len(model.classes_) > 2 else (
        np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2]), np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2]))
    weight[model.classes_] = coef / std
    bias[model.classes_] = intercept - (coef / std) @ mean
    return torch.from_numpy(weight).float(), torch.from_numpy(bias).float()


def probe_vector(encoder: Encoder, settings: ClassifierSettings, group: str, train: EvalAudio, valid: EvalAudio,
                 train_features: Tensor, valid_features: Tensor, c: float = 1.0):
    """A zero-delta :class:`~chorus.taskvec.TaskVector` carrying ``group``'s calibrated probe head."""
    from ..taskvec import TaskVector

    classes = sorted({clip.labels[0] for clip in train.clips})
    weight, bias = fit_linear_head(train_features, [clip.labels[0] for clip in train.clips], classes, c)
    index = {label: i for i, label in enumerate(classes)}
    valid_targets = torch.tensor([index[clip.labels[0]] for clip in valid.clips])
    train_targets = torch.tensor([index[clip.labels[0]] for clip in train.clips])
    logits = valid_features @ weight.T + bias
    calibration = calibration_stats(logits, valid_targets, "multiclass",
                                    class_counts(train_targets, len(classes), "multiclass"), len(train))
    head = HeadEntry(group=group, labels=classes, calibration=calibration)
    return TaskVector.from_models(encoder, encoder, group=group, classifier=settings, heads=[head],
                                  head_tensors=[(weight, bias)])
