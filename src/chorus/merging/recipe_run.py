"""Running a recipe end to end: load and check the vectors, merge, compose the heads,
optionally sweep λ, write the model directory with ``merge.json`` and ``recipe.yaml`` (its
paths relative to the model directory)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from ..progress import ProgressFactory
from ..taskvec.merge.compose import base_state, build_encoder_from, resolve_base, write_composed_model
from ..taskvec.merge.heads import BaseHead, GroupGate, compose_heads, headwide_calibration
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


def original_base_head(plan, base, lam: float, data: str, split: str | None,
                       progress: ProgressFactory | None = None) -> tuple[BaseHead, dict]:
    """The base encoder's original species head (BirdNET's), calibrated on the windows of
    ``data`` (a manifest, at ``split``; every group) through the merged encoder
    ``θ0 + λ·f``: one mean and standard deviation of its logits over every class and window
    (:func:`~chorus.taskvec.merge.heads.headwide_calibration`). Also the record for ``merge.json``."""
    from ..data.clipset import load_eval_audio
    from ..data.manifest import read_manifest
    from ..evaluate import layer_features
    from ..taskvec.merge.stream import apply_directions

    state = base_state(base, plan.fingerprint)
    raw = raw_base_head(plan, state)
    settings = compose_heads(plan.vectors, "none", base_head=raw).settings  # refuses another layer or pooling
    manifest = read_manifest(data)
    clips = manifest.select(split=split).clips if split else manifest.clips
    audio = load_eval_audio(clips, plan.vectors[0].manifest.sample_rate, progress, "loading calibration windows")
    merged = build_encoder_from(plan, apply_directions(state, plan.directions(progress), lam))
    features = layer_features(merged, settings, audio)
    calibration = headwide_calibration(features @ raw.weight.T + raw.bias)
    record = {"group": raw.group, "encoder": plan.vectors[0].manifest.base.encoder, "classes": len(raw.labels),
              "data": data, "split": split, "windows": calibration.clips, "logit_mean": calibration.logit_mean[0],
              "logit_std": calibration.logit_std[0]}
    return replace(raw, calibration=calibration), record


def raw_base_head(plan, state) -> BaseHead:
    """The original species head of the base weights ``state`` (BirdNET's), uncalibrated;
    :class:`~chorus.model.errors.BirdNETHeadError` for any other encoder."""
    from ..model.birdnet_head import BIRDNET_GROUP, original_head

    head = original_head(build_encoder_from(plan, state))
    return BaseHead(BIRDNET_GROUP, head.labels, head.weight, head.bias, head.settings.layer, head.settings.pooling)


def run_merge(recipe: Recipe, out_dir: str | Path, progress: ProgressFactory | None = None) -> dict:
    """Merge as ``recipe`` says into the model directory ``out_dir``; return the content
    of its ``merge.json``. The recipe is saved there with λ and every default resolved.
    A merge that fails leaves no folder it created behind (files are written atomically)."""
    out_dir = Path(out_dir)
    created = [folder for folder in (out_dir, *out_dir.parents) if not folder.exists()]
    try:
        return _run_merge(recipe, out_dir, progress)
    except BaseException:
        for folder in created:  # innermost first; only folders this call made and left empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def _run_merge(recipe: Recipe, out_dir: Path, progress: ProgressFactory | None) -> dict:
    import json

    import torch

    from ..data.manifest import read_manifest
    from ..data.clipset import load_eval_audio

    vectors, checks = open_vectors([ref.path for ref in recipe.vectors], verify_now=recipe.sweep is not None)
    plan = plan_merge(vectors, recipe.method, recipe.params, [ref.weight for ref in recipe.vectors], recipe.seed,
                      progress, [ref.density for ref in recipe.vectors])
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
                and all(v.has_class_stats for v in vectors) and recipe.base_head is None:
            candidates = (*candidates, "lda")  # every vector carries class statistics: try the statistics head
        gates = [0.0] if calibration == "lda" else recipe.sweep.gates or GATE_STRENGTHS
        state = base_state(base, plan.fingerprint)
        raw_head = None if recipe.base_head is None else raw_base_head(plan, state)
        result = sweep_lambda(plan, candidates, state, audio, recipe.sweep.lambdas, progress=progress,
                              gates=gates, shrinkage=recipe.shrinkage, base_head=raw_head,
                              retention=recipe.base_head.retention if recipe.base_head is not None else None)
        lam, calibration, gate = result.best, result.calibration, result.gate
        extra = {"sweep": {**result.as_dict(), "data": recipe.sweep.data, "split": recipe.sweep.split}}
        note = (f"lambda, calibration and gate chosen by a sweep on {recipe.sweep.data} (split {recipe.sweep.split}); "
                "see merge.json")
    lam = plan.default_lambda() if lam is None else lam
    base_head, head_spec = None, recipe.base_head
    if head_spec is not None:
        data, split = ((head_spec.data, head_spec.split) if head_spec.data is not None
                       else (recipe.sweep.data, recipe.sweep.split))
        head_spec = head_spec.model_copy(update={"data": data, "split": split})
        base_head, extra["base_head"] = original_base_head(plan, base, lam, data, split, progress)
    heads = compose_heads(vectors, calibration, gate, shrinkage=recipe.shrinkage, base_head=base_head)
    on_merged = None
    if heads.calibration == "lda":
        on_merged = partial(_check_statistics, vectors, plan.fingerprint, extra, recipe.shrinkage)
    gate_spec = None
    if gate is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        gate.save(out_dir / GATE_FILE)
        gate_spec = GateSpec(file=GATE_FILE, strength=gate.strength)
        extra["gate"] = {"file": GATE_FILE, "strength": gate.strength, "groups": gate.groups}
    write_composed_model(plan, heads, base, out_dir, lam, extra, progress, checks, on_merged,
                         None if recipe.dtype is None else getattr(torch, recipe.dtype))
    shrinkage = (recipe.shrinkage if recipe.shrinkage is not None else DEFAULT_SHRINKAGE) \
        if heads.calibration == "lda" else None
    resolved = recipe.model_copy(update={"lambda_": lam, "sweep": None, "calibration": heads.calibration,
                                         "shrinkage": shrinkage,
                                         "params": plan.params.model_dump(mode="json"), "gate": gate_spec,
                                         "base_head": head_spec})
    resolved.relative_to(out_dir).save(out_dir / RECIPE_FILE, note)
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
