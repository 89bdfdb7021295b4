"""Head calibration statistics, computed on the contributor's own validation split.

Temperature scaling after Guo et al., *On Calibration of Modern Neural Networks*
(ICML 2017): one scalar ``T`` minimising the validation negative log-likelihood of
``logits / T``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ..model.schema import Calibration
from ..train.metrics import loss_function


def fit_temperature(logits: Tensor, targets: Tensor, task: str) -> tuple[float, float, float]:
    """``(T, nll at T=1, nll at T)``, T searched in [0.05, 20] (bounded Brent on log T)."""
    from scipy.optimize import minimize_scalar

    loss = loss_function(task)
    logits = logits.double()
    targets = targets if task == "multiclass" else targets.double()

    def nll(log_t: float) -> float:
        return float(loss(logits / math.exp(log_t), targets))

    best = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded",
                           options={"xatol": 1e-4})
    return math.exp(best.x), nll(0.0), float(best.fun)


def class_counts(targets: Tensor, classes: int, task: str) -> list[int]:
    """Clips per class: ``targets [clips]`` indices or ``[clips, classes]`` 0/1."""
    if task == "multiclass":
        return torch.bincount(targets, minlength=classes).tolist()
    return targets.sum(dim=0).round().long().tolist()


def calibration_stats(logits: Tensor, targets: Tensor, task: str, train_counts: Sequence[int],
                      train_clips: int) -> Calibration:
    """Per-class logit mean/std (population), fitted temperature, class counts and priors.

    ``logits [clips, classes]`` and ``targets`` come from the validation split;
    ``train_counts`` and ``train_clips`` from the training split (priors = counts / clips).
    """
    classes = logits.shape[1]
    logits = logits.float()
    temperature, before, after = fit_temperature(logits, targets, task)
    return Calibration(
        clips=int(logits.shape[0]),
        logit_mean=logits.mean(dim=0).tolist(),
        logit_std=logits.std(dim=0, unbiased=False).tolist(),
        temperature=temperature, nll_before=before, nll_after=after,
        valid_counts=class_counts(targets, classes, task),
        train_counts=list(train_counts),
        priors=[count / max(1, train_clips) for count in train_counts],
    )
