"""Head initialisation by a linear probe, before fine-tuning ("LP-FT": Kumar et al.,
*Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution*,
ICLR 2022): starting the encoder's training from a fitted head instead of a random one
keeps early gradients from scrambling the pretrained features.

The probe is L2-regularised logistic regression (softmax for multiclass, per-class
sigmoid for multilabel) on standardised pooled features, fitted by L-BFGS; the penalty is
chosen on the validation split and the standardisation is folded into the returned
weights, so they apply to raw features.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .metrics import MONITOR, classification_metrics, loss_function

PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1)
"""L2 penalties tried (on standardised features, per clip)."""


def fit_logistic(features: Tensor, targets: Tensor, task: str, classes: int, penalty: float,
                 max_iter: int = 200) -> tuple[Tensor, Tensor]:
    """``(weight [classes, features], bias [classes])`` minimising mean loss + penalty/2·‖W‖²
    on ``features [clips, features]`` (already standardised)."""
    weight = torch.zeros(classes, features.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    x = features.double()
    y = targets if task == "multiclass" else targets.double()
    loss_fn = loss_function(task)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = loss_fn(x @ weight.T + bias, y) + 0.5 * penalty * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def probe_head(train_features: Tensor, train_targets: Tensor, valid_features: Tensor, valid_targets: Tensor,
               task: str, classes: int, penalties: Sequence[float] = PENALTIES) -> tuple[Tensor, Tensor, float]:
    """The best probe over ``penalties`` by the validation metric (ties: the larger penalty).

    Returns ``(weight [classes, features], bias [classes], penalty)`` in float32, acting on
    raw (unstandardised) features.
    """
    mean = train_features.double().mean(dim=0)
    std = train_features.double().std(dim=0, unbiased=False).clamp_min(1e-6)
    z_train = (train_features.double() - mean) / std
    z_valid = (valid_features.double() - mean) / std
    best = None
    for penalty in sorted(penalties, reverse=True):
        weight, bias = fit_logistic(z_train, train_targets, task, classes, penalty)
        score = classification_metrics(z_valid @ weight.T + bias, valid_targets, task)[MONITOR[task]]
        if best is None or score > best[0]:
            best = (score, weight, bias, penalty)
    _, weight, bias, penalty = best
    raw_weight = weight / std
    raw_bias = bias - (weight * mean / std).sum(dim=1)
    return raw_weight.float(), raw_bias.float(), penalty
