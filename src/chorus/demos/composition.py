"""``chorus demo``: the main job end to end on the default encoder and generated data.

1. synthesize four taxon groups (one species-rich, one small) in a temperate region, and
   the same species' test calls recorded in a new region;
2. fine-tune the encoder on each group alone (the task vectors institutions would share)
   and on all groups jointly (the reference a data-pooling world would get), both LP-FT:
   the head starts from a logistic-regression probe on the frozen encoder — that probe,
   per group, is the frozen-base baseline;
3. merge the per-group task vectors with every method, choosing λ, the head calibration
   and the strength of a group gate fitted on the validation clips by normalized accuracy
   (the probes' calibration and gate too);
4. analyse the per-group task vectors (``chorus.analysis``: cosine, sign conflicts, linear
   mode connectivity, negation, spectral distances; on the validation clips, with a coarse
   α grid) into ``analysis/``;
5. compare everything on the test clips and the new region, and write a self-contained
   HTML report (``report.html``) and ``demo.json`` with the numbers.

Every stage's outputs are kept under ``out_dir``; a second run reuses finished stages
(a run that stopped half-way resumes), unless the settings changed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from ..schema import FrozenModel
from ..fileio import write_json
from ..progress import ProgressFactory
from .errors import DemoError


class CompositionDemoSettings(FrozenModel):
    """What the demo generates, trains and merges (recorded in ``demo.json``).

    ``species``: per taxon group. ``seconds``/``clips_per_species``/``snr_db``/``jitter``:
    synthetic clips (calls varied 0.875× the generator's nominal jitter, at 5 dB SNR: hard
    enough that a probe on the frozen encoder leaves room for fine-tuning).
    ``freeze``: encoder parameters kept frozen while fine-tuning (globs). ``merges``: name ->
    (method, parameters). ``lambda_factors``: sweep grid as multiples of each method's
    default λ. ``lmc_points`` / ``negation_lambdas``: the analysis' α grid and negation λ
    grid (coarse, to keep the stage cheap: each point is a forward pass over the clips).
    """
    encoder: str = "sfx-cnn"
    species: dict[str, int] = Field(default_factory=lambda: {"birds": 12, "anurans": 6, "insects": 5, "mammals": 3})
    clips_per_species: int = Field(15, ge=6)
    seconds: float = Field(1.0, gt=0)
    snr_db: float = 5.0
    jitter: float = Field(0.875, ge=0, description="per-call variation (1 = the generator's nominal)")
    region: str = "temperate"
    new_region: str = "wetland"
    epochs: int = Field(6, ge=1)
    batch_size: int = 16
    lr: float = 1e-4
    head_lr: float = 1e-3
    freeze: list[str] = Field(default_factory=lambda: ["blocks.0.*"])
    merges: dict[str, tuple[str, dict[str, Any]]] = Field(default_factory=lambda: {
        "mean": ("mean", {}), "task_arithmetic": ("task_arithmetic", {}), "ties": ("ties", {}),
        "dare": ("dare", {}), "dare_ties": ("dare", {"ties": True}), "breadcrumbs": ("breadcrumbs", {}),
        "tsv": ("tsv", {}), "iso_c": ("iso_c", {})})
    lambda_factors: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    lmc_points: int = Field(3, ge=2, description="α grid of the analysis' connectivity curves")
    negation_lambdas: tuple[float, ...] = (0.0, 2.0)
    calibration: str = "auto"
    seed: int = 0


def _synth(out_dir: Path, settings: CompositionDemoSettings, region: str, rate: int, progress):
    from ..data.synth import generate_dataset, make_config

    config = make_config(groups=tuple(settings.species), species_per_group=dict(settings.species),
                         clips_per_species=settings.clips_per_species, seconds=settings.seconds, sample_rate=rate,
                         snr_db=settings.snr_db, jitter=settings.jitter, region=region, seed=settings.seed)
    return generate_dataset(out_dir / "data" / region, config, progress=progress)


def finetune_group_vector(manifest, out: Path, settings: CompositionDemoSettings, groups: list[str], progress):
    """One fine-tuning run (LP-FT: the head starts from the frozen-encoder probe), reused
    when its outputs already exist."""
    from ..taskvec import TaskVector
    from ..finetune.config import FinetuneConfig
    from ..finetune.runner import finetune

    if (out / "taskvector" / "taskvector.json").is_file() and (out / "model" / "model.json").is_file():
        return TaskVector.load(out / "taskvector")
    config = FinetuneConfig(
        encoder=settings.encoder, groups=groups, method="full", freeze=list(settings.freeze), epochs=settings.epochs,
        batch_size=settings.batch_size, lr=settings.lr, head_lr=settings.head_lr, patience=None, seed=settings.seed,
        warmup=0.1, clip_seconds=settings.seconds)
    finetune(manifest, out, config, progress=progress, resume=(out / "checkpoint").exists())
    return TaskVector.load(out / "taskvector")


def _probes(vectors, state, manifest, valid, settings: CompositionDemoSettings) -> list:
    """One logistic-regression probe per group on the frozen encoder's pooled features (the
    head LP-FT starts from), as zero-delta task vectors with calibrated heads."""
    from ..encoders import build_encoder
    from ..data.clipset import load_eval_audio
    from ..evaluate import layer_features
    from ..evaluate.probe_baseline import probe_vector

    base = vectors[0].manifest.base
    encoder = build_encoder(base.architecture)
    encoder.name = base.encoder
    encoder.load_state_dict(state)
    classifier = vectors[0].manifest.classifier
    train = load_eval_audio(manifest.select(split="train").clips, encoder.sample_rate, desc="loading training clips")
    train_features = layer_features(encoder, classifier, train)
    valid_features = layer_features(encoder, classifier, valid)
    probes = []
    for group in settings.species:
        rows = [i for i, clip in enumerate(train.clips) if clip.group == group]
        valid_rows = [i for i, clip in enumerate(valid.clips) if clip.group == group]
        probes.append(probe_vector(encoder, classifier, group, train.subset(rows), valid.subset(valid_rows),
                                   train_features[rows], valid_features[valid_rows]))
    return probes


def _summary(comparison: dict, sweeps: dict) -> dict:
    """The headline numbers: the best merge against the individual models and the probes."""
    from ..evaluate.compare import best_merge

    best = best_merge(comparison)
    rows = comparison["rows"]
    probes = [row for row in rows if row["kind"] == "probe"]
    merged = [row for row in rows if row["kind"] == "merged"]
    summary = {
        "best_merge": best["name"] if best else None,
        "lambda": {name: sweep["best_lambda"] for name, sweep in sweeps.items()},
        "calibration": {name: sweep["calibration"] for name, sweep in sweeps.items()},
        "gate": {name: sweep["gate"] for name, sweep in sweeps.items()},
        "normalized_accuracy": {row["name"]: row["normalized"] for row in merged},
        "normalized_accuracy_within_group": {row["name"]: row["normalized_within"] for row in merged},
        "accuracy": {row["name"]: row["overall"][row["metric"]] for row in rows if row["kind"] != "individual"},
        "accuracy_within_group": {row["name"]: _mean(row.get("within_group", {})) for row in rows
                                  if row["kind"] != "individual"},
        "individual_accuracy": {g: v for row in rows if row["kind"] == "individual" for g, v in row["groups"].items()},
    }
    if best:
        summary["best_beats_probes"] = {row["name"]: {
            "all species": summary["accuracy"][best["name"]] > summary["accuracy"][row["name"]],
            "within group": summary["accuracy_within_group"][best["name"]] > summary["accuracy_within_group"][row["name"]]}
            for row in probes}
    return summary


def _mean(values: dict) -> float | None:
    return sum(values.values()) / len(values) if values else None


def _check_folder(out_dir: Path, settings: CompositionDemoSettings) -> None:
    record = out_dir / "demo.json"
    if not record.is_file():
        return
    try:
        previous = json.loads(record.read_text(encoding="utf-8")).get("settings")
    except (OSError, ValueError):
        previous = None
    if previous != settings.model_dump(mode="json"):
        raise DemoError(f"{out_dir}: holds a demo run with other settings; use another --out folder")


def run_demo(out_dir: str | Path, settings: CompositionDemoSettings | None = None,
             progress: ProgressFactory | None = None, log=None) -> dict:
    """Run the whole demo into ``out_dir``; return the content of ``demo.json``.

    ``log(message)``: optional callback told when each stage starts (the CLI prints it).
    """
    from ..analysis import AnalysisSettings, analyze, write_analysis
    from ..data.clipset import load_eval_audio
    from ..evaluate.compare import Entry, compare_models
    from ..evaluate.compare_report import write_comparison
    from ..model import ClassifierModel
    from ..encoders import get_spec
    from ..merging import sweep_lambda
    from ..taskvec.merge import build_classifier, compose_heads, plan_merge, write_composed_model
    from ..taskvec.merge.compose import base_state, resolve_base
    from ..merging.sweep import CALIBRATIONS, individual_scores

    settings = settings or CompositionDemoSettings()
    out_dir = Path(out_dir)
    _check_folder(out_dir, settings)
    write_json(out_dir / "demo.json", {"settings": settings.model_dump(mode="json"), "status": "running"})
    say = log or (lambda message: None)
    timings: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 1)
        clock = now

    rate = get_spec(settings.encoder).sample_rate
    say(f"1/6 synthesizing {sum(settings.species.values())} species in {len(settings.species)} groups "
        f"({settings.region}, plus test calls in {settings.new_region})")
    manifest = _synth(out_dir, settings, settings.region, rate, progress)
    moved = _synth(out_dir, settings, settings.new_region, rate, progress)
    lap("synthesize")
    groups = list(settings.species)
    say(f"2/6 fine-tuning {settings.encoder} on each of {len(groups)} groups alone and on all jointly; "
        "probes on the frozen encoder")
    runs = out_dir / "finetune"
    vectors = [finetune_group_vector(manifest, runs / group, settings, [group], progress) for group in groups]
    joint_vector = finetune_group_vector(manifest, runs / "joint", settings, groups, progress)
    valid = load_eval_audio(manifest.select(split="valid").clips, rate, progress, "loading validation clips")
    base = resolve_base(vectors)
    plan = plan_merge(vectors, "mean")
    state = base_state(base, plan.fingerprint)
    probes = _probes(vectors, state, manifest, valid, settings)
    lap("fine-tune")
    say(f"3/6 merging with {len(settings.merges)} methods; λ and calibration chosen on validation clips")
    references = individual_scores(plan, state, valid, progress)
    candidates = CALIBRATIONS["multiclass"] if settings.calibration == "auto" else (settings.calibration,)
    sweeps = {}
    for name, (method, params) in settings.merges.items():
        plan = plan_merge(vectors, method, params, seed=settings.seed)
        grid = [round(plan.default_lambda() * f, 6) for f in settings.lambda_factors]
        sweep = sweep_lambda(plan, candidates, state, valid, grid, references, progress)
        write_composed_model(plan, compose_heads(vectors, sweep.calibration, sweep.gate), base,
                             out_dir / "merged" / name, sweep.best, {"sweep": sweep.as_dict()}, progress)
        sweeps[name] = sweep.as_dict()
    probe_plan = plan_merge(probes, "mean")  # every delta is zero: the encoder stays the base
    sweep = sweep_lambda(probe_plan, candidates, state, valid, [1.0], references, progress)
    probe_model = build_classifier(probe_plan, compose_heads(probes, sweep.calibration, sweep.gate), state)
    sweeps["probe"] = sweep.as_dict()
    lap("merge")
    say("4/6 analysing the per-group task vectors: cosine, sign conflicts, connectivity, negation, spectra")
    analysis = analyze(vectors, state, valid, AnalysisSettings(alpha_points=settings.lmc_points,
                                                               lambdas=settings.negation_lambdas), progress)
    analysis_figures = write_analysis(analysis, out_dir / "analysis")
    lap("analyze")
    say("5/6 evaluating every model on the test clips and the new region")
    test = load_eval_audio(manifest.select(split="test").clips, rate, progress, "loading test clips")
    transfer = load_eval_audio(moved.select(split="test").clips, rate, progress, "loading new-region clips")
    entries = [Entry("probe", "probe", probe_model)]
    entries += [Entry(group, "individual", ClassifierModel.from_pretrained(runs / group / "model"), group)
                for group in groups]
    entries.append(Entry("joint", "joint", ClassifierModel.from_pretrained(runs / "joint" / "model")))
    entries += [Entry(name, "merged", ClassifierModel.from_pretrained(out_dir / "merged" / name))
                for name in settings.merges]
    sizes = {group: len(manifest.select(split="train", group=group)) for group in groups}
    comparison = compare_models(entries, test, transfer, sizes, progress)
    lap("evaluate")
    say("6/6 writing the report")
    summary = _summary(comparison, sweeps)
    timings["total"] = round(time.perf_counter() - started, 1)
    record = {"settings": settings.model_dump(mode="json"), "summary": summary, "comparison": comparison,
              "sweeps": sweeps, "analysis": analysis, "timings_s": timings, "joint_groups": joint_vector.manifest.group,
              "data": {"train_clips": sizes, "test_clips": len(test), "transfer_clips": len(transfer)}}
    from .composition_report import report_sections

    write_comparison(comparison, out_dir, "chorus demo: composing task vectors",
                     **report_sections(record, analysis_figures), page="report.html")
    write_json(out_dir / "demo.json", record)
    return record
