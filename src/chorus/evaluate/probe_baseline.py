"""The frozen-base baseline: a linear probe per group on the untouched encoder, shared the
way a fine-tuned group shares its work — as a task vector (here with zero deltas)
carrying a calibrated head — so it composes like any merge.

The head is the L2 logistic-regression probe that fine-tuning starts from (LP-FT,
:func:`chorus.train.probe_init.probe_head`: penalty chosen on the group's validation clips,
standardisation folded into the weights), fitted on the classifier's pooled layer — the
same layer and pooling the fine-tuned heads read. Calibration statistics come from the
group's own validation clips, as in fine-tuning.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..encoders import Encoder
from ..model import ClassifierSettings, HeadEntry
from ..finetune.calibration import calibration_stats, class_counts
from ..train.probe_init import probe_head
from ..data.clipset import EvalAudio


def probe_vector(encoder: Encoder, settings: ClassifierSettings, group: str, train: EvalAudio, valid: EvalAudio,
                 train_features: Tensor, valid_features: Tensor):
    """A zero-delta :class:`~chorus.taskvec.TaskVector` carrying ``group``'s calibrated probe
    head, from pooled ``train_features``/``valid_features`` ``[clips, features]`` of
    ``group``'s single-label clips."""
    from ..taskvec import TaskVector

    classes = sorted({clip.labels[0] for clip in train.clips})
    index = {label: i for i, label in enumerate(classes)}
    train_targets = torch.tensor([index[clip.labels[0]] for clip in train.clips])
    valid_targets = torch.tensor([index[clip.labels[0]] for clip in valid.clips])
    weight, bias, _ = probe_head(train_features, train_targets, valid_features, valid_targets, "multiclass",
                                 len(classes))
    calibration = calibration_stats(valid_features @ weight.T + bias, valid_targets, "multiclass",
                                    class_counts(train_targets, len(classes), "multiclass"), len(train))
    head = HeadEntry(group=group, labels=classes, calibration=calibration)
    return TaskVector.from_models(encoder, encoder, group=group, classifier=settings, heads=[head],
                                  head_tensors=[(weight, bias)])
