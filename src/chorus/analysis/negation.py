"""Negation: what subtracting one group's task vector does to every group.

For each group ``g`` and each λ of the grid the encoder ``θ0 − λ·τg`` (parameters only;
BatchNorm statistics stay the base's, since subtracting statistics has no meaning) is
scored on the validation clips of every group ``h`` with ``h``'s own head (raw logits, as
in ``h``'s individual model): the negated group's accuracy should fall while the others'
stays near the base's (Ilharco et al., ICLR 2023, "forgetting via negation").
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data.clipset import EvalAudio
from ..progress import ProgressFactory, resolve
from ..taskvec.merge import apply_directions, compose_heads, plan_merge
from ..taskvec.naming import require_groups
from .errors import AnalysisError
from .scoring import features_of, score

LAMBDAS = (0.0, 0.5, 1.0, 2.0)


def score_negations(vectors: Sequence, base_state: dict[str, Tensor], audio: EvalAudio,
                    lambdas: Sequence[float] = LAMBDAS, progress: ProgressFactory | None = None,
                    device: str | torch.device = "cpu") -> list[dict]:
    """Per negated group: ``{"negated", "lambda", "accuracy": {group: [...]}, "loss": {...}}``
    (encoders run on ``device``)."""
    vectors = list(vectors)
    lambdas = [float(value) for value in lambdas]
    if not lambdas:
        raise AnalysisError("the negation λ grid is empty")
    groups = require_groups(vectors, "the analysis of groups")
    plan = plan_merge(vectors, "mean")
    own_heads = [compose_heads([v], "none") for v in vectors]
    everything = audio.of_groups(groups)
    rows = [torch.tensor(everything.rows_of_groups([g]), dtype=torch.int64) for g in groups]
    if any(not len(r) for r in rows):
        raise AnalysisError("the validation data must hold clips of every group for the negation curves")
    base_features = features_of(plan, base_state, own_heads[0], everything, device) if 0.0 in lambdas else None
    bar = resolve(progress)(len(vectors) * len(lambdas), "negation")
    results = []
    try:
        for index, vector in enumerate(vectors):
            negated = plan_merge([vector], "negation")
            directions = {name: negated.direction(name) for name in negated.parameters}
            record = {"negated": groups[index], "lambda": lambdas, "accuracy": {g: [] for g in groups},
                      "loss": {g: [] for g in groups}}
            for lam in lambdas:
                features = base_features if lam == 0.0 else features_of(
                    plan, apply_directions(base_state, directions, lam), own_heads[0], everything, device)
                for group, heads, part in zip(groups, own_heads, rows):
                    scores = score(heads, features[part], [everything.clips[r] for r in part])
                    record["accuracy"][group].append(scores["accuracy"])
                    record["loss"][group].append(scores["loss"])
                bar.update(1)
            results.append(record)
    finally:
        bar.close()
    return results
