"""Choosing λ (and the head calibration) on validation data the composer holds.

Normalized accuracy (Ilharco et al. 2023; Yadav et al. 2023) of a merged model on group
``g`` is its accuracy on ``g``'s clips divided by the accuracy of ``g``'s individually
fine-tuned model (base + τ_g with its own head) on the same clips. Two readings:

- *all species* (``normalized``): the merged model scores over the union of every group's
  labels, as the composed classifier is used — a clip is right only if its species wins
  among every species of every group;
- *within group* (``normalized_within``): the merged model scores over group ``g``'s labels
  only (the task-aware protocol of the task-arithmetic literature).

The sweep maximises the mean over groups of the all-species reading (ties: the
within-group reading, then no or a weaker gate, then the smaller λ). Multi-label models use
mAP for both.

Heads trained apart cannot tell that a clip is not from their group, so besides the
calibration the sweep tries a group gate (:class:`~chorus.taskvec.merge.heads.GroupGate`,
a linear group detector fitted on these validation clips' features) at a few strengths.

The merged direction ``f`` is computed once; each λ rebuilds ``θ0 + λ·f`` and runs one
forward pass over the clips; every candidate calibration and gate is scored on those same
pooled features (they only change the heads).

With the base encoder's own head (``base_head``, BirdNET's species head) the composed
model's classes include its labels, so the scores are over the union with them: at each λ
its head-wide calibration (:func:`~chorus.taskvec.merge.heads.headwide_calibration`) is
fitted on the same clips. ``retention``: the minimum fraction of these clips whose top-1
class of the original head is the same through ``θ0 + λ·f`` as through ``θ0``; rows below
it are not chosen (λ = 0 joins the grid, so one always qualifies).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from torch import Tensor

from ..data.clipset import EvalAudio
from ..evaluate import evaluate_logits, layer_features
from ..progress import ProgressFactory, resolve
from ..taskvec.merge.compose import build_encoder_from
from ..taskvec.naming import require_groups
from ..taskvec.merge.heads import BaseHead, ComposedHeads, GroupGate, compose_heads, headwide_calibration
from ..taskvec.merge.errors import MergeError
from ..taskvec.merge.stream import MergePlan, apply_directions

LAMBDA_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
"""Default sweep grid: multiples of the method's default λ."""
CALIBRATIONS = {"multiclass": ("zscore", "temperature", "none"), "multilabel": ("temperature", "none")}
"""Calibrations a sweep tries, per task, when the recipe leaves the choice to it (``auto``)."""
GATE_STRENGTHS = (0.0, 0.1, 0.3, 1.0)
"""Strengths of the group gate a sweep tries (0: none), each fitted on the validation clips."""


def default_grid(plan: MergePlan) -> list[float]:
    return [round(plan.default_lambda() * factor, 6) for factor in LAMBDA_FACTORS]


def score_key(task: str) -> str:
    return "accuracy" if task == "multiclass" else "map"


def group_audio(audio: EvalAudio, group: str) -> EvalAudio:
    part = audio.of_groups([group])
    if not len(part):
        raise MergeError(f"the validation data holds no clips of group {group!r} "
                         f"(groups: {', '.join(sorted({c.group or '-' for c in audio.clips}))})")
    return part


def _scores(heads: ComposedHeads, features: Tensor, audio: EvalAudio) -> dict:
    return evaluate_logits(heads.logits(features), [c.labels for c in audio.clips], [c.group for c in audio.clips],
                           heads.labels, heads.settings.task)


def individual_scores(plan: MergePlan, base_state: dict[str, Tensor], audio: EvalAudio,
                      progress: ProgressFactory | None = None) -> dict[str, float]:
    """Each vector's own model (base + τ_i, its raw heads) on its group's clips."""
    bar = resolve(progress)(len(plan.vectors), "individual models")
    scores = {}
    try:
        groups = require_groups(plan.vectors, "a λ sweep (to pick its validation clips)")
        for vector, group in zip(plan.vectors, groups):
            state = apply_directions(base_state, {name: vector.tensor(name) for name in vector.keys()}, 1.0)
            heads = compose_heads([vector], "none")
            part = group_audio(audio, group)
            features = layer_features(build_encoder_from(plan, state), heads.settings, part)
            scores[group] = _scores(heads, features, part)["overall"][score_key(heads.settings.task)]
            bar.update(1)
    finally:
        bar.close()
    return scores


@dataclass
class SweepResult:
    """``rows``: per (λ, calibration, gate strength), the merged model's scores per group
    (all species and within group) and both normalized accuracies. ``references``: the
    individual models' scores. ``best``/``calibration``/``gate``: the choice (``gate``:
    the :class:`GroupGate` fitted at the chosen λ with the chosen strength, or None)."""

    metric: str
    references: dict[str, float]
    rows: list[dict] = field(default_factory=list)
    best: float | None = None
    calibration: str | None = None
    gate: GroupGate | None = None

    def as_dict(self) -> dict:
        return {"metric": self.metric, "references": self.references, "rows": self.rows, "best_lambda": self.best,
                "calibration": self.calibration, "gate": self.gate.strength if self.gate is not None else 0.0}


def normalized(scores: dict[str, float], references: dict[str, float]) -> float:
    """Mean over groups of merged ÷ individual (a group whose individual scores 0 is left out)."""
    ratios = [scores[g] / references[g] for g in references if references[g] > 0]
    return sum(ratios) / len(ratios) if ratios else float("nan")


def sweep_lambda(plan: MergePlan, calibrations: Sequence[str], base_state: dict[str, Tensor], audio: EvalAudio,
                 lambdas: Sequence[float] | None = None, references: dict[str, float] | None = None,
                 progress: ProgressFactory | None = None, gates: Sequence[float] = GATE_STRENGTHS,
                 shrinkage: float | None = None, base_head: BaseHead | None = None,
                 retention: float | None = None) -> SweepResult:
    """Score ``θ0 + λ·f`` for every λ of ``lambdas`` (default: :func:`default_grid`), with
    every calibration of ``calibrations`` and every group-gate strength of ``gates`` (a gate
    fitted on these clips' features at that λ), and pick the best (module docstring).
    ``shrinkage``: the ridge of an ``lda`` calibration (None: its default); ``base_head``,
    ``retention``: the base encoder's own head composed too."""
    lambdas = list(lambdas) if lambdas else default_grid(plan)
    if retention is not None and base_head is not None and 0.0 not in lambdas:
        lambdas = [0.0, *lambdas]
    references = references or individual_scores(plan, base_state, audio, progress)
    groups = require_groups(plan.vectors, "a λ sweep (to pick its validation clips)")
    for group in groups:
        group_audio(audio, group)
    part = audio.of_groups(groups)
    settings = compose_heads(plan.vectors, "none").settings
    metric = score_key(settings.task)
    directions = plan.directions(progress)
    result = SweepResult(metric, dict(references))
    fitted: dict[tuple[float, float], GroupGate] = {}
    original_top = None
    if base_head is not None and retention is not None:
        base_features = layer_features(build_encoder_from(plan, base_state), settings, part)
        original_top = (base_features @ base_head.weight.T + base_head.bias).argmax(dim=1)
    bar = resolve(progress)(len(lambdas), f"λ sweep ({plan.method.name})")
    try:
        for lam in lambdas:
            features = layer_features(build_encoder_from(plan, apply_directions(base_state, directions, lam)),
                                      settings, part)
            head, kept = None, None
            if base_head is not None:
                species = features @ base_head.weight.T + base_head.bias
                head = replace(base_head, calibration=headwide_calibration(species))
                if original_top is not None:
                    kept = float((species.argmax(dim=1) == original_top).float().mean())
            for strength in gates:
                gate = GroupGate.fit(features, [c.group for c in part.clips], strength) if strength else None
                if gate is not None:
                    fitted[(lam, strength)] = gate
                for name in calibrations:
                    if name == "lda" and gate is not None:  # the statistics head takes no gate
                        continue
                    heads = compose_heads(plan.vectors, name, gate, shrinkage=shrinkage, base_head=head)
                    per_group = _scores(heads, features, part)["per_group"]
                    scores = {g: per_group[g][metric] for g in groups}
                    within = {g: per_group[g].get("accuracy_within_group", per_group[g][metric]) for g in groups}
                    row = {"lambda": lam, "calibration": name, "gate": strength, "scores": scores, "within": within,
                           "normalized": normalized(scores, references),
                           "normalized_within": normalized(within, references)}
                    if kept is not None:
                        row["retention"] = kept
                    result.rows.append(row)
            bar.update(1)
    finally:
        bar.close()
    allowed = [row for row in result.rows if retention is None or row.get("retention", 1.0) >= retention]
    best = max(allowed, key=lambda row: (row["normalized"], row["normalized_within"], -row["gate"], -row["lambda"]))
    result.best, result.calibration = best["lambda"], best["calibration"]
    result.gate = fitted.get((best["lambda"], best["gate"]))
    return result
