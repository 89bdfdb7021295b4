"""The real run: two real teachers distilled from one θ0, then task arithmetic between them.

Teachers: ``sfx-cnn`` (environmental sound) on synthetic animal calls (8 species, 1 s
clips) and ``crepe-full`` (pitch; one frame every ``crepe_hop`` samples) on FluidSynth
notes (12 pitch classes, several instruments and octaves, noise). Students
``student-cnn`` all start from the same θ0 (seed ``seed``): τ_sfx from sfx-cnn on the
calls' train split, τ_pitch from crepe-full on the notes' train split, and the
ensemble-distillation reference from both teachers at once on both train splits (half
the epochs, so the same number of optimizer steps). Each teacher runs once over all
those clips; its targets are cached in ``cache/``.

Every model — θ0, each student, the ensemble student and θ0 + λ1 τ_sfx + λ2 τ_pitch for
every (λ1, λ2) of the grid — is scored on both domains by frozen-feature linear probes
(best layer chosen on valid, test accuracy); each teacher is probed the same way on its
own domain, as the ceiling its student could inherit. The point kept is the one whose worse
retention (accuracy / the own-domain student's accuracy) is highest; ``chorus merge``
(task arithmetic with weights λ1, λ2) then writes that model, with both probe heads.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..encoders import load_encoder
from ..fileio import sha256_file, write_json
from ..progress import ProgressFactory
from ..distill.config import DistillConfig
from ..distill.errors import DistillError
from ..distill.targets import compute_targets, load_targets, save_targets, subset_targets
from ..distill.train import distill



@dataclass(frozen=True)
class DistillDemoSettings:
    """Sizes of the real run. ``sfx_teacher``/``pitch_teacher``/``student``: registered names
    (tiny ones make a smoke run)."""

    clips_per_species: int = 140
    notes_per_class: int = 90
    epochs: int = 6
    crepe_hop: int = 2400
    grid: tuple[float, ...] = (0.0, 0.5, 1.0)
    batch_size: int = 32
    seed: int = 0
    sfx_teacher: str = "sfx-cnn"
    pitch_teacher: str = "crepe-full"
    student: str = "student-cnn"


def make_data(out_dir: Path, settings: DistillDemoSettings, progress: ProgressFactory | None = None) -> dict[str, Path]:
    """The two labelled domains: ``{"calls": manifest, "notes": manifest}``."""
    from ..data.synth import SynthConfig, generate_dataset
    from ..distill.notes import NotesConfig, generate_notes

    calls, notes = out_dir / "data" / "calls", out_dir / "data" / "notes"
    generate_dataset(calls, SynthConfig(groups=("birds", "anurans", "insects", "mammals"), species=2,
                                        clips_per_species=settings.clips_per_species, seconds=1.0, snr_db=0.0,
                                        seed=settings.seed), progress=progress)
    generate_notes(notes, NotesConfig(clips_per_class=settings.notes_per_class, seed=settings.seed))
    return {"calls": calls / "manifest.csv", "notes": notes / "manifest.csv"}


def _cached_targets(cache: Path, teacher, name: str, layers, contents: list[str], waveforms, hop, progress):
    """``teacher``'s targets from ``cache`` when computed from the same audio (``contents``: the
    clips' sha256) and settings, else computed now and cached."""
    key = hashlib.sha256(json.dumps([name, hop, list(layers), contents]).encode()).hexdigest()
    path = cache / f"{name}.safetensors"
    found = load_targets(path, key)
    if found is None:
        found = compute_targets(teacher, name, layers, waveforms, progress=progress)
        save_targets(path, found, key)
    return found


def run_demo(out_dir: str | Path, settings: DistillDemoSettings = DistillDemoSettings(),
             progress: ProgressFactory | None = None) -> dict:
    """Run everything into ``out_dir`` (data/, cache/, students/, vectors/, merged/,
    distill-demo.json, report.html, tradeoff.png); return the JSON record."""
    if not any(settings.grid):
        raise DistillError(f"the λ grid {list(settings.grid)} holds no merge (every value is 0)")
    from ..data.manifest import read_manifest
    from ..data.clipset import load_eval_audio
    from ..taskvec import TaskVector
    from .distillation_report import write_demo_report
    from ..distill.session import load_teacher, probe_head_vector
    from ..distill.tradeoff import domain_from_audio, interpolation_sweep, probe_all, probe_domain, retention

    out_dir = Path(out_dir)
    clock, seconds = time.perf_counter(), {}

    def lap(phase: str) -> None:
        nonlocal clock
        seconds[phase] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    manifests = make_data(out_dir, settings, progress)
    sfx, pitch = settings.sfx_teacher, settings.pitch_teacher
    theta0 = load_encoder(settings.student, pretrained=False, seed=settings.seed)
    audio = {name: load_eval_audio(read_manifest(path).clips, theta0.sample_rate, progress, f"loading {name}")
             for name, path in manifests.items()}
    domains = [domain_from_audio(name, audio[name]) for name in manifests]
    lap("data")
    config = DistillConfig(epochs=settings.epochs, batch_size=settings.batch_size, seed=settings.seed)

    train = {name: [i for i, c in enumerate(audio[name].clips) if c.split == "train"] for name in manifests}
    clips = [audio[n].clips[i] for n in manifests for i in train[n]]
    student_waves = [audio[n].waveforms[i] for n in manifests for i in train[n]]
    first_notes = len(train["calls"])
    contents = [sha256_file(clip.path) for clip in clips]  # the audio itself, wherever the run lives
    targets, teacher_scores = {}, {}
    for name, hop, domain in ((sfx, None, "calls"), (pitch, settings.crepe_hop, "notes")):
        teacher = load_teacher(name, hop)
        waves = student_waves if teacher.sample_rate == theta0.sample_rate else \
            load_eval_audio(clips, teacher.sample_rate, progress, f"loading clips for {name}").waveforms
        targets[name] = _cached_targets(out_dir / "cache", teacher, name, config.layers_of(name, teacher.layer_names),
                                        contents, waves, hop, progress)
        lap(f"teacher {name}")
        own = audio[domain] if teacher.sample_rate == theta0.sample_rate else \
            load_eval_audio(audio[domain].clips, teacher.sample_rate, progress, f"loading {domain} for {name}")
        teacher_scores[name] = {domain: probe_domain(teacher, domain_from_audio(domain, own))}
        del teacher
        lap(f"probe teacher {name}")
    calls_rows, notes_rows = list(range(first_notes)), list(range(first_notes, len(clips)))
    runs = {
        "student-sfx": ([subset_targets(targets[sfx], calls_rows)], [student_waves[i] for i in calls_rows], config),
        "student-pitch": ([subset_targets(targets[pitch], notes_rows)], [student_waves[i] for i in notes_rows], config),
        "ensemble": ([targets[sfx], targets[pitch]], student_waves,
                     config.model_copy(update={"epochs": max(1, settings.epochs // 2)})),
    }
    students, histories = {}, {}
    for name, (teacher_targets, waves, run_config) in runs.items():
        result = distill(theta0, teacher_targets, waves, run_config, progress)
        students[name], histories[name] = result.student, result.history
        lap(f"distill {name}")

    from ..tensorfile import save_tensors

    (out_dir / "students").mkdir(parents=True, exist_ok=True)
    save_tensors(out_dir / "students" / "init.safetensors", theta0.state_dict())
    vectors = {}
    for name, domain in (("student-sfx", "calls"), ("student-pitch", "notes")):
        save_tensors(out_dir / "students" / f"{name}.safetensors", students[name].state_dict())
        vector = probe_head_vector(theta0, students[name], read_manifest(manifests[domain]), theta0.layer_names[-1], domain,
                                   progress=progress)
        vectors[name] = TaskVector.load(vector.save(out_dir / "vectors" / name))

    lap("vectors")
    models = {"θ0": theta0, **students}
    scores = {name: probe_all(model, domains) for name, model in models.items()}
    lap("probes")
    references = {"calls": scores["student-sfx"]["calls"]["accuracy"],
                  "notes": scores["student-pitch"]["notes"]["accuracy"]}
    grid = [(a, b) for a in settings.grid for b in settings.grid]
    rows = retention(interpolation_sweep(theta0, [vectors["student-sfx"], vectors["student-pitch"]], grid, domains,
                                         progress=progress), references)
    lap("sweep")
    merges = [row for row in rows if any(row["lambdas"])]  # θ0 itself is not a merge
    best = max(merges, key=lambda r: (r["worst"], -sum(r["lambdas"])))
    merged = merge_best(out_dir, vectors, best["lambdas"], theta0)
    lap("merge")
    record = {
        "settings": asdict(settings), "teachers": {sfx: {"domain": "calls"}, pitch: {"domain": "notes",
                                                                                  "hop": settings.crepe_hop}},
        "student": {"name": theta0.name, "parameters": theta0.num_parameters, "seed": settings.seed},
        "clips": {name: {split: len(domain.targets[split]) for split in domain.targets} for name, domain in
                  zip(manifests, domains)},
        "distill_clips": {"student-sfx": len(calls_rows), "student-pitch": len(notes_rows), "ensemble": len(clips)},
        "targets": {name: t.summary() for name, t in targets.items()},
        "histories": histories, "scores": scores, "teacher_scores": teacher_scores, "references": references,
        "sweep": rows,
        "best": best, "acceptance": {"threshold": 0.9, "passed": best["worst"] >= 0.9}, "merged": merged,
        "seconds": seconds,
    }
    write_json(out_dir / "distill-demo.json", record)
    write_demo_report(record, out_dir)
    return record


def merge_best(out_dir: Path, vectors: dict, lambdas, theta0) -> dict:
    """``chorus merge`` (task arithmetic, weights λ1, λ2, λ = 1) of the two distilled vectors
    into ``out_dir/merged``; checks its encoder against θ0 + λ1 τ1 + λ2 τ2 computed here."""
    from ..model import ClassifierModel
    from ..taskvec import apply
    from ..merging import run_merge
    from ..taskvec.merge import parse_recipe

    recipe = parse_recipe({"method": "task_arithmetic", "lambda": 1.0, "calibration": "zscore",
                           "base": str(out_dir / "students" / "init.safetensors"),
                           "vectors": [{"path": str(out_dir / "vectors" / name), "weight": w}
                                       for name, w in zip(vectors, lambdas)]}, "distill demo")
    run_merge(recipe, out_dir / "merged")
    model = ClassifierModel.from_pretrained(out_dir / "merged")
    merged = model.encoder.state_dict()
    expected = apply(theta0, list(vectors.values()), list(lambdas)).state_dict()
    gap = max(float((merged[k].double() - expected[k].double()).abs().max()) for k in expected
              if expected[k].is_floating_point())
    return {"dir": "merged", "lambdas": list(lambdas), "max_abs_difference_to_task_arithmetic": gap,
            "labels": model.labels}
