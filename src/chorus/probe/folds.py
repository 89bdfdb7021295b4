"""k-fold cross-validation from a manifest's ``fold`` column (ESC-50 / UrbanSound8K practice).

Run ``k`` tests fold ``k``; the fold after it (cyclically, in fold order) is its validation
split, which chooses pooling, layer and setting; all other folds train. The ``split``
column is ignored. Folds named by integers are ordered numerically and must run without
a gap from the lowest to the highest (a missing one has no clips); other names sort as
text. At least three folds are needed. Features are extracted once for all runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..data.manifest import Manifest
from .errors import ProbeTaskError
from .task import ProbeTask, task_from_manifest

FOLD_COLUMN = "fold"
VALID_RULE = "the next fold (cyclically) is the validation split; the other folds train"
MIN_FOLDS = 3


@dataclass(frozen=True)
class Folds:
    """Fold names in order and the fold of every clip (in clip order)."""

    names: tuple[str, ...]
    of_clip: tuple[str, ...]

    def splits(self, run: int) -> list[str]:
        """The split of every clip in run ``run`` (testing fold ``names[run]``)."""
        test, valid = self.names[run], self.names[(run + 1) % len(self.names)]
        return ["test" if fold == test else "valid" if fold == valid else "train" for fold in self.of_clip]

    def task(self, task: ProbeTask, run: int) -> ProbeTask:
        """``task`` with its clips split as in run ``run``."""
        clips = [replace(clip, split=split) for clip, split in zip(task.clips, self.splits(run))]
        return ProbeTask(task.kind, task.labels, clips, task.skipped)


def _ordered(names: set[str], where: str) -> tuple[str, ...]:
    if not all(name.lstrip("-").isdigit() for name in names):
        return tuple(sorted(names))
    numbers = sorted(int(name) for name in names)
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        raise ProbeTaskError(f"{where}: fold {missing[0]} has no clips (folds found: "
                             f"{', '.join(map(str, numbers))})")
    by_number = {int(name): name for name in names}
    return tuple(by_number[number] for number in numbers)


def read_folds(manifest: Manifest) -> Folds:
    """The folds of ``manifest`` from its ``fold`` column (matched case-insensitively);
    :class:`ProbeTaskError` naming the manifest when the column is missing, a clip has no
    fold, a fold has no clips or there are fewer than three folds."""
    where = str(manifest.source or manifest.root)
    column = next((name for name in manifest.extra if name.strip().lower() == FOLD_COLUMN), None)
    if column is None:
        raise ProbeTaskError(f"{where}: --folds needs a {FOLD_COLUMN!r} column (extra columns: "
                             f"{', '.join(manifest.extra) or 'none'})")
    of_clip = tuple(value.strip() for value in manifest.extra[column])
    empty = [row for row, fold in enumerate(of_clip, start=1) if not fold]
    if empty:
        raise ProbeTaskError(f"{where}: clip {empty[0]} ({manifest.clips[empty[0] - 1].path}) has no fold")
    names = _ordered(set(of_clip), where)
    if len(names) < MIN_FOLDS:
        raise ProbeTaskError(f"{where}: cross-validation needs at least {MIN_FOLDS} folds, found {len(names)}")
    return Folds(names, of_clip)


def fold_task(manifest: Manifest) -> tuple[ProbeTask, Folds]:
    """The classification task of ``manifest`` (split as in the first run) and its folds."""
    folds = read_folds(manifest)
    clips = [replace(clip, split=split) for clip, split in zip(manifest.clips, folds.splits(0))]
    return task_from_manifest(replace(manifest, clips=clips)), folds


def _stats(tests: list[dict[str, float]]) -> dict:
    """Per metric: the values per fold, their mean and sample standard deviation (ddof 1)."""
    values = {name: [float(test[name]) for test in tests] for name in tests[0]}
    return {"per_fold": values, "mean": {name: float(np.mean(v)) for name, v in values.items()},
            "std": {name: float(np.std(v, ddof=1)) for name, v in values.items()}}


def _mean_metrics(dicts: list[dict[str, float]]) -> dict[str, float]:
    return {name: float(np.mean([d[name] for d in dicts])) for name in dicts[0]}


def summarise_folds(folds: Folds, runs: list[dict]) -> dict:
    """One condition's result over its fold ``runs`` (in fold order): ``folds`` (each run's
    result by fold name), ``cv`` (per pooling, and for the refit probe, the test metrics
    of each fold's chosen probe with mean and std), and ``poolings`` / ``noise`` averaged
    over folds per layer (for the figures; each fold may choose another layer)."""
    poolings = {}
    for pooling in runs[0]["poolings"]:
        entries = [run["poolings"][pooling] for run in runs]
        slots = [{"layer": slot["layer"],
                  "valid": _mean_metrics([e["slots"][i]["valid"] for e in entries]),
                  "test": _mean_metrics([e["slots"][i]["test"] for e in entries])}
                 for i, slot in enumerate(entries[0]["slots"])]
        poolings[pooling] = {"slots": slots, "best": {"valid": _mean_metrics([e["best"]["valid"] for e in entries]),
                                                      "test": _mean_metrics([e["best"]["test"] for e in entries])}}
    noise = {snr: {pooling: {"best": _mean_metrics([run["noise"][snr][pooling]["best"] for run in runs])}
                   for pooling in runs[0]["noise"][snr]}
             for snr in runs[0]["noise"]}
    cv = {"folds": list(folds.names), "valid_rule": VALID_RULE,
          "poolings": {pooling: {**_stats([run["poolings"][pooling]["best"]["test"] for run in runs]),
                                 "layers": [run["poolings"][pooling]["best"]["layer"] for run in runs]}
                       for pooling in poolings}}
    if "refit" in runs[0]:
        cv["refit"] = {**_stats([run["refit"]["test"] for run in runs]),
                       "poolings": [run["refit"]["pooling"] for run in runs],
                       "layers": [run["refit"]["layer"] for run in runs]}
    return {"poolings": poolings, "noise": noise, "cv": cv, "folds": dict(zip(folds.names, runs))}
