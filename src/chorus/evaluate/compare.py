"""One comparison of every way to get a multi-group classifier, on the same test clips.

Rows: the frozen-base probe, each individually fine-tuned model (scored on its own group
only, over its own labels), the jointly trained model, and every merge. Columns: overall
score, score per group, normalized accuracy (per group: score ÷ the individual model's
score on that group; averaged over groups) over all species (``normalized``) and within
the clip's group (``normalized_within``, the task-aware protocol of the merging
literature), and the score on a test set from another region (zero-shot transfer). Beside the table: the asymmetric gap per group,
``merged − joint``, against the group's size (training clips).

The score is accuracy for multi-class models (top-1 over every class the model has) and
mAP for multi-label ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from ..model import ClassifierModel
from ..progress import ProgressFactory, resolve
from ..data.clipset import EvalAudio
from .scoring import evaluate_model

Kind = Literal["probe", "individual", "joint", "merged"]
KINDS: tuple[str, ...] = ("probe", "individual", "joint", "merged")


@dataclass
class Entry:
    """A model in the comparison. ``group``: for an individual model, the group it was
    fine-tuned on (default: its head's group)."""

    name: str
    kind: Kind
    model: ClassifierModel
    group: str | None = None

    def own_group(self) -> str:
        group = self.group or next((h.group for h in self.model.head_entries if h.group), None)
        if group is None:
            raise ValueError(f"individual model {self.name!r} names no group")
        return group


def _score_key(model: ClassifierModel) -> str:
    return "accuracy" if model.task == "multiclass" else "map"


def _scores(entry: Entry, audio: EvalAudio, groups: Sequence[str]) -> dict:
    """Evaluate ``entry`` on ``audio``; individual models only on their own group's clips."""
    key = _score_key(entry.model)
    if entry.kind == "individual":
        group = entry.own_group()
        result = evaluate_model(entry.model, audio.of_groups([group]))
        return {"overall": result["overall"], "groups": {group: result["overall"][key]}, "result": result}
    result = evaluate_model(entry.model, audio)
    covered = covered_groups(entry.model, audio)
    return {"overall": result["overall"], "groups": {g: result["per_group"][g][key] for g in groups
                                                     if g in result["per_group"] and g in covered},
            "not_covered": [g for g in groups if g not in covered], "result": result}


def covered_groups(model: ClassifierModel, audio: EvalAudio) -> set[str]:
    """The groups of ``audio`` with at least one clip labelled with one of the model's classes
    (a merge of two of four groups covers two: the others score nothing by construction)."""
    labels = set(model.labels)
    return {clip.group for clip in audio.clips if clip.group is not None and labels.intersection(clip.labels)}


def compare_models(entries: Sequence[Entry], test: EvalAudio, transfer: EvalAudio | None = None,
                   group_sizes: dict[str, int] | None = None, progress: ProgressFactory | None = None) -> dict:
    """The comparison as a JSON-ready dict: ``rows`` (one per entry), ``references``
    (individual score per group), ``gaps`` (per merged entry and group, merged − joint)
    and ``group_sizes``."""
    groups = sorted({clip.group for clip in test.clips if clip.group is not None})
    bar = resolve(progress)(len(entries) * (2 if transfer is not None else 1), "evaluating models")
    rows = []
    try:
        for entry in entries:
            scores = _scores(entry, test, groups)
            bar.update(1)
            row = {"name": entry.name, "kind": entry.kind, "metric": _score_key(entry.model),
                   "overall": scores["overall"], "groups": scores["groups"]}
            if scores.get("not_covered"):
                row["not_covered"] = scores["not_covered"]
            if entry.model.task == "multiclass" and entry.kind != "individual":
                row["within_group"] = {g: m["accuracy_within_group"] for g, m in scores["result"]["per_group"].items()
                                       if g in scores["groups"]}
            if transfer is not None:
                moved = _scores(entry, transfer, groups)
                row["transfer"] = {"overall": moved["overall"][row["metric"]], "groups": moved["groups"]}
                bar.update(1)
            rows.append(row)
    finally:
        bar.close()
    references = {g: row["groups"][g] for row in rows if row["kind"] == "individual" for g in row["groups"]}
    for row in rows:
        if row["kind"] == "individual":
            row["normalized"] = row["normalized_within"] = 1.0
            continue
        row["normalized"] = _normalized(row["groups"], references)
        row["normalized_within"] = _normalized(row.get("within_group", row["groups"]), references)
    joint = next((row for row in rows if row["kind"] == "joint"), None)
    gaps = {}
    if joint is not None:
        for row in rows:
            if row["kind"] in ("merged", "probe"):
                gaps[row["name"]] = {g: row["groups"][g] - joint["groups"][g] for g in groups
                                     if g in row["groups"] and g in joint["groups"]}
    return {"groups": groups, "rows": rows, "references": references, "gaps": gaps,
            "group_sizes": dict(group_sizes or {}), "clips": len(test),
            "transfer_clips": len(transfer) if transfer is not None else None}


def _normalized(scores: dict[str, float], references: dict[str, float]) -> float | None:
    ratios = [scores[g] / references[g] for g in references if references[g] > 0 and g in scores]
    return sum(ratios) / len(ratios) if ratios else None


def best_merge(comparison: dict) -> dict | None:
    """The merged row with the highest normalized accuracy."""
    merged = [row for row in comparison["rows"] if row["kind"] == "merged" and row["normalized"] is not None]
    return max(merged, key=lambda row: row["normalized"]) if merged else None
