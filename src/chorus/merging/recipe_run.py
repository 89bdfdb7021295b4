"""Running a recipe end to end: load and check the vectors, merge, compose the heads,
optionally sweep λ, write the model directory with ``merge.json`` and ``recipe.yaml``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from ..progress import ProgressFactory
from ..taskvec.merge.compose import base_state, resolve_base, write_composed_model
from ..taskvec.merge.heads import GroupGate, compose_heads
from ..taskvec.merge.norms import equalizing_scales
from ..taskvec.merge.recipe import RECIPE_FILE, GateSpec, Recipe
from ..taskvec.merge.stats_head import DEFAULT_SHRINKAGE
from ..taskvec.merge.stream import plan_merge
from .sweep import CALIBRATIONS, GATE_STRENGTHS, sweep_lambda

GATE_FILE = "gate.safetensors"


def open_vectors(paths: Sequence[str | Path], verify_now: bool = True) -> tuple[list, list[Callable[[], None]]]:
    """Load task vectors (manifests and safetensors headers validated), read through
    :class:`~chorus.taskvec.merge.sources.StoredDeltas` (one memory map per dense tensor).

    ``verify_now``: check every file's sha256 now. Otherwise the deltas files are hashed
    from the bytes the merge reads and the checks are returned, for
    :func:`write_merged_encoder` to run before it commits its output (no second read of the
    inputs; a mismatch still leaves no output).
    """
    from ..tensorfile import verify_sha256
    from ..taskvec import TaskVector
    from ..taskvec.manifest import DELTAS_FILE
    from ..taskvec.merge.sources import StoredDeltas

    vectors = [StoredDeltas(TaskVector.load(path, verify=verify_now), path, verify=not verify_now) for path in paths]
    checks = [] if verify_now else [check for path, vector in zip(paths, vectors) for check in (
        vector.verify, *(partial(verify_sha256, Path(path) / file, digest)
                         for file, digest in sorted(vector.manifest.files.items()) if file != DELTAS_FILE))]
    return vectors, checks


def run_merge(recipe: Recipe, out_dir: str | Path, progress: ProgressFactory | None = None) -> dict:
    """Merge as ``recipe`` says into the model directory ``out_dir``; return the content
    of its ``merge.json``. The recipe is saved there with λ and every default resolved."""
    import json

    from ..data.manifest import read_manifest
    from ..data.clipset import load_eval_audio

    out_dir = Path(out_dir)
    vectors, checks = open_vectors([ref.path for ref in recipe.vectors], verify_now=recipe.sweep is not None)
    plan = plan_merge(vectors, recipe.method, recipe.params, [ref.weight for ref in recipe.vectors], recipe.seed,
                      progress)
    if recipe.equalize_norms:
        plan.scales = equalizing_scales(plan.measure_norms(progress))
    base = resolve_base(vectors, recipe.base)
    lam, calibration, extra, note = recipe.lambda_, recipe.calibration, {}, None
    gate = GroupGate.load(recipe.gate.file, recipe.gate.strength) if recipe.gate is not None else None
    if recipe.sweep is not None:
        manifest = read_manifest(recipe.sweep.data)
        clips = manifest.select(split=recipe.sweep.split).clips if recipe.sweep.split else manifest.clips
        audio = load_eval_audio(clips, vectors[0].manifest.sample_rate, progress, "loading validation clips")
        candidates = CALIBRATIONS[vectors[0].manifest.classifier.task] if calibration == "auto" else (calibration,)
        if calibration == "auto" and vectors[0].manifest.classifier.task == "multiclass" \
                and all(v.has_class_stats for v in vectors):
            candidates = (*candidates, "lda")  # every vector carries class statistics: try the statistics head
        gates = [0.0] if calibration == "lda" else recipe.sweep.gates or GATE_STRENGTHS
        result = sweep_lambda(plan, candidates, base_state(base, plan.fingerprint), audio, recipe.sweep.lambdas,
                              progress=progress, gates=gates, shrinkage=recipe.shrinkage)
        lam, calibration, gate = result.best, result.calibration, result.gate
        extra = {"sweep": {**result.as_dict(), "data": recipe.sweep.data, "split": recipe.sweep.split}}
        note = (f"lambda, calibration and gate chosen by a sweep on {recipe.sweep.data} (split {recipe.sweep.split}); "
                "see merge.json")
    heads = compose_heads(vectors, calibration, gate, recipe.shrinkage)
    on_merged = None
    if heads.calibration == "lda":
        on_merged = partial(_check_statistics, vectors, plan.fingerprint, extra, recipe.shrinkage)
    lam = plan.default_lambda() if lam is None else lam
    gate_spec = None
    if gate is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        gate.save(out_dir / GATE_FILE)
        gate_spec = GateSpec(file=GATE_FILE, strength=gate.strength)
        extra["gate"] = {"file": GATE_FILE, "strength": gate.strength, "groups": gate.groups}
    write_composed_model(plan, heads, base, out_dir, lam, extra, progress, checks, on_merged)
    shrinkage = (recipe.shrinkage if recipe.shrinkage is not None else DEFAULT_SHRINKAGE) \
        if heads.calibration == "lda" else None
    resolved = recipe.model_copy(update={"lambda_": lam, "sweep": None, "calibration": heads.calibration,
                                         "shrinkage": shrinkage,
                                         "params": plan.params.model_dump(mode="json"), "gate": gate_spec})
    resolved.save(out_dir / RECIPE_FILE, note)
    return json.loads((out_dir / "merge.json").read_text(encoding="utf-8"))


def _check_statistics(vectors: Sequence, base_fingerprint: str, extra: dict, shrinkage: float | None,
                      built: str) -> None:
    """Before the merged model is committed: refuse class statistics of a foreign encoder,
    record a warning for base statistics on a merged encoder (see :mod:`~chorus.taskvec.merge.stats_head`)."""
    from ..taskvec.merge.stats_head import DEFAULT_SHRINKAGE, encoder_warnings

    warnings = encoder_warnings(vectors, base_fingerprint, built)
    extra["class_statistics"] = {
        "shrinkage": DEFAULT_SHRINKAGE if shrinkage is None else shrinkage, "encoder_fingerprint": built,
        "computed_on": [v.manifest.classstats.computed_on for v in vectors],
        "clips": [v.manifest.classstats.clips for v in vectors]}
    extra["warnings"] = list(extra.get("warnings", [])) + warnings
