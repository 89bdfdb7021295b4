"""Choosing λ on validation data the composer holds, by normalized accuracy.

Normalized accuracy (Ilharco et al. 2023; Yadav et al. 2023) of a merged model on group
``g`` is its accuracy on ``g``'s clips divided by the accuracy of ``g``'s individually
fine-tuned model (base + τ_g with its own head) on the same clips; the sweep maximises
the mean over groups. The merged model is scored over the union of labels (a clip counts
as right only if its species wins among every species of every group); the individual
one over its own labels. Multi-label models use mAP in place of accuracy.

The merged direction ``f`` is computed once; each λ only rebuilds ``θ0 + λ·f``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from torch import Tensor

from ...evaluate import EvalAudio, evaluate_model
from ...progress import ProgressFactory, resolve
from .compose import build_classifier
from .heads import ComposedHeads, compose_heads
from .registry import MergeError
from .stream import MergePlan, apply_directions

LAMBDA_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
"""Default sweep grid: multiples of the method's default λ."""


def default_grid(plan: MergePlan) -> list[float]:
    return [round(plan.default_lambda() * factor, 6) for factor in LAMBDA_FACTORS]


def score_key(task: str) -> str:
    return "accuracy" if task == "multiclass" else "map"


def vector_group(vector, index: int) -> str:
    group = vector.manifest.group or next((h.group for h in vector.manifest.heads if h.group), None)
    if group is None:
        raise MergeError(f"task vector {index} names no group; a sweep needs each vector's group to pick its "
                         "validation clips")
    return group


def group_audio(audio: EvalAudio, group: str) -> EvalAudio:
    part = audio.of_groups([group])
    if not len(part):
        raise MergeError(f"the validation data holds no clips of group {group!r} "
                         f"(groups: {', '.join(sorted({c.group or '-' for c in audio.clips}))})")
    return part


def individual_scores(plan: MergePlan, base_state: dict[str, Tensor], audio: EvalAudio,
                      progress: ProgressFactory | None = None) -> dict[str, float]:
    """Each vector's own model (base + τ_i, its raw heads) on its group's clips."""
    bar = resolve(progress)(len(plan.vectors), "individual models")
    scores = {}
    try:
        for index, vector in enumerate(plan.vectors):
            group = vector_group(vector, index)
            state = apply_directions(base_state, {name: vector.tensor(name) for name in vector.keys()}, 1.0)
            model = build_classifier(plan, compose_heads([vector], "none"), state)
            metrics = evaluate_model(model, group_audio(audio, group))
            scores[group] = metrics["overall"][score_key(model.task)]
            bar.update(1)
    finally:
        bar.close()
    return scores


@dataclass
class SweepResult:
    """``rows``: per λ, the merged model's score per group and the normalized accuracy.
    ``references``: the individual models' scores. ``best``: the chosen λ."""

    metric: str
    references: dict[str, float]
    rows: list[dict] = field(default_factory=list)
    best: float | None = None

    def as_dict(self) -> dict:
        return {"metric": self.metric, "references": self.references, "rows": self.rows, "best_lambda": self.best}


def normalized(scores: dict[str, float], references: dict[str, float]) -> float:
    """Mean over groups of merged ÷ individual (a group whose individual scores 0 is left out)."""
    ratios = [scores[g] / references[g] for g in references if references[g] > 0]
    return sum(ratios) / len(ratios) if ratios else float("nan")


def sweep_lambda(plan: MergePlan, heads: ComposedHeads, base_state: dict[str, Tensor], audio: EvalAudio,
                 lambdas: Sequence[float] | None = None, references: dict[str, float] | None = None,
                 progress: ProgressFactory | None = None) -> SweepResult:
    """Score ``θ0 + λ·f`` for every λ of ``lambdas`` (default: :func:`default_grid`) and
    pick the λ with the highest normalized accuracy (the smallest λ on ties)."""
    lambdas = list(lambdas) if lambdas else default_grid(plan)
    references = references or individual_scores(plan, base_state, audio, progress)
    groups = [vector_group(v, i) for i, v in enumerate(plan.vectors)]
    parts = {group: group_audio(audio, group) for group in groups}
    directions = plan.directions(progress)
    metric = score_key(heads.settings.task)
    result = SweepResult(metric, dict(references))
    bar = resolve(progress)(len(lambdas), f"λ sweep ({plan.method.name})")
    try:
        for lam in lambdas:
            model = build_classifier(plan, heads, apply_directions(base_state, directions, lam))
            scores = {group: evaluate_model(model, part)["overall"][metric] for group, part in parts.items()}
            result.rows.append({"lambda": lam, "scores": scores, "normalized": normalized(scores, references)})
            bar.update(1)
    finally:
        bar.close()
    best = max(result.rows, key=lambda row: (row["normalized"], -row["lambda"]))
    result.best = best["lambda"]
    return result
