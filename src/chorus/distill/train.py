"""The distillation loop: a student learns to predict frozen teachers' layers.

Only the student and the prediction heads train; teacher features were computed once
(:mod:`chorus.distill.targets`). The same seed, clips and θ0 give the same bytes on CPU.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..encoders import Encoder, pad_batch
from ..progress import ProgressFactory, resolve
from ..train.schedule import WarmupCosine
from ..train.step import TrainStep
from .config import DistillConfig
from .errors import DistillError
from .heads import PredictionHead, align_frames
from .loss import frame_loss
from .targets import TeacherTargets

WARMUP_FRACTION = 0.1
"""Share of the optimizer steps spent warming the learning rate up (then a cosine to 0)."""


@dataclass
class DistillResult:
    """The trained student (eval mode), its heads and the loss history.

    ``history``: one entry per epoch with the mean ``loss``, and per head
    (``teacher/layer``) the mean ``l1`` and ``cosine``.
    """

    student: Encoder
    heads: nn.ModuleDict
    history: list[dict] = field(default_factory=list)

    @property
    def losses(self) -> list[float]:
        return [entry["loss"] for entry in self.history]


def head_key(teacher: str, layer: str) -> str:
    """ModuleDict-safe key of the head predicting ``layer`` of ``teacher``."""
    return f"{teacher}/{layer}".replace(".", "_").replace("/", "__")


def distill(student: Encoder, targets: Sequence[TeacherTargets], waveforms: Sequence[np.ndarray],
            config: DistillConfig = DistillConfig(), progress: ProgressFactory | None = None) -> DistillResult:
    """Train a copy of ``student`` (``waveforms``: ``[samples]`` at its rate, one per clip, in
    the order the ``targets`` were computed) to predict every teacher layer in ``targets``.
    Several teachers at once is ensemble distillation."""
    if not targets:
        raise DistillError("distillation needs at least one teacher")
    if any(t.clips != len(waveforms) for t in targets):
        raise DistillError(f"{len(waveforms)} clips but teacher targets for "
                           f"{', '.join(str(t.clips) for t in targets)}")
    layer = config.student_layer or student.layer_names[-1]
    if layer not in student.layer_names:
        raise DistillError(f"student {student.name!r} has no layer {layer!r}; layers: {', '.join(student.layer_names)}")
    slot = student.layer_names.index(layer)
    student = copy.deepcopy(student)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        heads = nn.ModuleDict({head_key(t.teacher, name): PredictionHead(student.layer_dims[slot], dim,
                                                                         config.head_hidden)
                               for t in targets for name, dim in zip(t.layers, t.dims)})
    parameters = list(student.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW([{"params": parameters, "peak_lr": config.lr}], lr=config.lr,
                                  weight_decay=config.weight_decay)
    order_rng = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = -(-len(waveforms) // config.batch_size)
    schedule = WarmupCosine.from_fraction(config.epochs * steps_per_epoch, WARMUP_FRACTION)
    trainer = TrainStep(optimizer, _batch_loss(student, heads, slot, targets, waveforms, config.cosine_weight),
                        schedule, max_grad_norm=None)
    result = DistillResult(student, heads)
    bar = resolve(progress)(config.epochs * steps_per_epoch, f"distilling {student.name}")
    for epoch in range(config.epochs):
        student.train()
        heads.train()
        order = torch.randperm(len(waveforms), generator=order_rng).tolist()
        sums: dict[str, float] = {}
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            loss = trainer(rows, sums)
            sums["loss"] = sums.get("loss", 0.0) + float(loss) * len(rows)
            bar.update(1)
        result.history.append({"epoch": epoch + 1, **{k: v / len(order) for k, v in sums.items()}})
    bar.close()
    student.eval()
    heads.eval()
    return result


def _batch_loss(student: Encoder, heads: nn.ModuleDict, slot: int, targets: Sequence[TeacherTargets],
                waveforms: Sequence[np.ndarray], cosine_weight: float) -> Callable[[list[int], dict], Tensor]:
    """``loss(rows, sums)``: the mean over every head of the student's frame loss on the clips
    ``rows``; adds each head's ``l1`` and ``cosine`` terms, times the batch size, to ``sums``."""
    def loss(rows: list[int], sums: dict[str, float]) -> Tensor:
        batch, lengths = pad_batch([waveforms[i] for i in rows])
        outputs = student(batch, lengths)
        hidden, valid = outputs.hidden[slot], outputs.masks[slot].sum(dim=1)
        losses = []
        for teacher in targets:
            for index, name in enumerate(teacher.layers):
                wanted = teacher.batch(index, rows)
                aligned = align_frames(hidden, valid, [w.shape[0] for w in wanted])
                total, l1, cosine = frame_loss(heads[head_key(teacher.teacher, name)](aligned), torch.cat(wanted),
                                               cosine_weight)
                losses.append(total)
                key = f"{teacher.teacher}/{name}"
                sums[f"{key} l1"] = sums.get(f"{key} l1", 0.0) + float(l1.detach()) * len(rows)
                sums[f"{key} cosine"] = sums.get(f"{key} cosine", 0.0) + float(cosine.detach()) * len(rows)
        return torch.stack(losses).mean()

    return loss
