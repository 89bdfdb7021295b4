"""``chorus distill`` end to end: manifest in, student + distilled task vector out.

Output directory:

- ``taskvector/``: τ = θ_student − θ0 (:class:`chorus.taskvec.TaskVector`, safetensors +
  JSON), carrying a calibrated linear-probe head when the manifest is labelled with
  train and valid splits (so ``chorus merge`` can compose distilled vectors);
- ``init.safetensors``: θ0, the base of the vector (``chorus merge --base`` reads it);
- ``student.safetensors``: the distilled student's state dict;
- ``distill.json``: settings, clips, teacher layers, loss history, file digests;
- ``report.html`` + ``loss.png``: the loss curves.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..data.manifest import Manifest, read_manifest
from ..encoders import Encoder, load_encoder
from ..fileio import locks_folder, write_json
from ..progress import ProgressFactory
from ..tensorfile import save_tensors
from .config import DistillConfig
from .errors import DistillError
from .targets import TeacherTargets, compute_targets
from .train import DistillResult, distill

RECORD_FILE = "distill.json"
VECTOR_DIR = "taskvector"
INIT_FILE = "init.safetensors"
STUDENT_FILE = "student.safetensors"


def load_student_init(spec: str | Path, seed: int = 0) -> Encoder:
    """θ0: a registered encoder name with random weights from ``seed`` (the same bytes for
    the same seed), or a chorus model directory (its encoder)."""
    path = Path(spec)
    if path.is_dir():
        from ..model import ClassifierModel

        return ClassifierModel.from_pretrained(path).encoder.eval()
    return load_encoder(str(spec), pretrained=False, seed=seed)


def load_teacher(name: str, hop: int | None = None) -> Encoder:
    """A registered teacher with its pretrained weights, frozen; ``hop`` (samples) sets the
    frame hop of teachers that have one (CREPE) and is ignored by the others."""
    teacher = load_encoder(name)
    if hop is not None and hasattr(teacher, "hop"):
        if hop < 1:
            raise DistillError(f"teacher hop must be at least 1 sample, got {hop}")
        teacher.hop = int(hop)  # CREPE's frame rates follow its hop
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher.eval()


def distill_clips(manifest: Manifest, split: str | None) -> Manifest:
    """The clips to distill on: ``split`` when given and the manifest has splits, else all."""
    chosen = manifest.select(split=split) if split and manifest.splits else manifest
    if not len(chosen):
        raise DistillError(f"{manifest.source}: no clip in split {split!r} to distill on")
    return chosen


def _load_audio(clips, rates: Sequence[int], progress: ProgressFactory | None
                ) -> tuple[list, dict[int, list], dict[str, str]]:
    """Decode ``clips`` at every rate; keep only clips that decode (the same set at every
    rate). Returns the kept clips, their waveforms per rate and ``{path: error}`` of the others."""
    from ..data.clipset import load_eval_audio

    loaded = {rate: load_eval_audio(clips, rate, progress, f"loading clips at {rate} Hz") for rate in rates}
    keep = set.intersection(*({clip.path for clip in audio.clips} for audio in loaded.values()))
    kept = [clip for clip in clips if clip.path in keep]
    if not kept:
        raise DistillError("no clip of the manifest could be decoded")
    waveforms = {rate: [w for clip, w in zip(audio.clips, audio.waveforms) if clip.path in keep]
                 for rate, audio in loaded.items()}
    failures = {str(f.clip.path): str(f.error) for audio in loaded.values() for f in audio.failures}
    return kept, waveforms, failures


def probe_head_vector(theta0: Encoder, student: Encoder, manifest: Manifest, layer: str, group: str,
                      training=None, progress: ProgressFactory | None = None):
    """τ = student − θ0 with a calibrated linear-probe head on the student's pooled ``layer``
    (fitted on the manifest's train split, penalty and calibration from valid); None when the
    manifest is not single-label with both splits."""
    from ..data.clipset import load_eval_audio
    from ..evaluate.probe_baseline import probe_vector
    from ..evaluate.scoring import layer_features
    from ..model import ClassifierSettings
    from ..taskvec import TaskVector

    if manifest.multi_label or not manifest.labels or not {"train", "valid"} <= set(manifest.splits):
        return None
    train = load_eval_audio(manifest.select(split="train").clips, student.sample_rate, progress, "head: train clips")
    valid = load_eval_audio(manifest.select(split="valid").clips, student.sample_rate, progress, "head: valid clips")
    longest = max(len(w) for w in train.waveforms + valid.waveforms) / student.sample_rate
    settings = ClassifierSettings(layer=layer, clip_seconds=longest)  # whole clips, none cropped
    probe = probe_vector(student, settings, group, train, valid, layer_features(student, settings, train),
                         layer_features(student, settings, valid))
    return TaskVector.from_models(theta0, student, group=group, classifier=settings, heads=probe.heads,
                                  head_tensors=probe.head_tensors(), training=training)


@locks_folder("out_dir")
def distill_to_directory(teachers: Sequence[str], student_init: str | Path, data: str | Path, out_dir: str | Path,
                         config: DistillConfig = DistillConfig(), *, seed: int = 0, split: str | None = "train",
                         teacher_hop: int | None = None, group: str | None = None, head_layer: str | None = None,
                         progress: ProgressFactory | None = None) -> dict:
    """Distill ``teachers`` (registered names; several = ensemble distillation) into the
    student θ0 (``student_init`` + ``seed``, see :func:`load_student_init`) on the clips of
    manifest ``data``; write the output directory (module docstring); return the record."""
    from ..taskvec import TaskVector, TrainingSummary

    if not teachers:
        raise DistillError("give at least one --teacher")
    if len(set(teachers)) != len(teachers):
        raise DistillError(f"teachers repeat: {list(teachers)}")
    out_dir = Path(out_dir)
    manifest = read_manifest(data, allow_unlabelled=True)
    theta0 = load_student_init(student_init, seed)
    models = {name: load_teacher(name, teacher_hop) for name in teachers}
    if teacher_hop is not None and not any(hasattr(m, "hop") for m in models.values()):
        raise DistillError(f"--teacher-hop given but no teacher among {list(teachers)} has a frame hop")
    layer = head_layer or theta0.layer_names[-1]
    if layer not in theta0.layer_names:
        raise DistillError(f"student has no layer {layer!r}; layers: {', '.join(theta0.layer_names)}")
    chosen = distill_clips(manifest, split)
    rates = sorted({theta0.sample_rate, *(m.sample_rate for m in models.values())})
    clips, waveforms, failures = _load_audio(chosen.clips, rates, progress)
    targets: list[TeacherTargets] = [
        compute_targets(model, name, config.layers_of(name, model.layer_names), waveforms[model.sample_rate],
                        progress=progress)
        for name, model in models.items()]
    result = distill(theta0, targets, waveforms[theta0.sample_rate], config, progress)
    group = group or "+".join(teachers)
    seconds = sum(len(w) for w in waveforms[theta0.sample_rate]) / theta0.sample_rate
    per_label = Counter(label for clip in clips for label in clip.labels)
    summary = TrainingSummary(method="distill", groups=[group], clips_per_label=dict(sorted(per_label.items())),
                              hours=seconds / 3600,
                              epochs=config.epochs, metrics={"final_loss": result.losses[-1]}, seed=config.seed,
                              settings={"teachers": list(teachers), "student_layer": config.student_layer
                                        or theta0.layer_names[-1], "teacher_hop": teacher_hop})
    vector = probe_head_vector(theta0, result.student, manifest, layer, group, summary, progress)
    if vector is None:
        vector = TaskVector.from_models(theta0, result.student, group=group, training=summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    vector.save(out_dir / VECTOR_DIR)
    files = {INIT_FILE: save_tensors(out_dir / INIT_FILE, theta0.state_dict()),
             STUDENT_FILE: save_tensors(out_dir / STUDENT_FILE, result.student.state_dict())}
    record = distill_record(teachers, student_init, seed, data, config, clips, failures, targets, result,
                            files, vector, teacher_hop)
    write_json(out_dir / RECORD_FILE, record)
    from .report import write_distill_report

    write_distill_report(record, out_dir)
    return record


def distill_record(teachers, student_init, seed, data, config: DistillConfig, clips, failures, targets,
                   result: DistillResult, files: dict, vector, teacher_hop) -> dict:
    """The content of ``distill.json``."""
    return {
        "chorus_version": __version__, "teachers": list(teachers), "teacher_hop": teacher_hop,
        "student": {"init": str(student_init), "seed": seed, "name": result.student.name,
                    "architecture": result.student.architecture(), "parameters": result.student.num_parameters,
                    "layer": config.student_layer or result.student.layer_names[-1]},
        "data": str(data), "clips": len(clips), "failures": failures,
        "config": config.model_dump(mode="json"),
        "loss": "mean over heads of L1 - cosine_weight * log sigmoid(cos), per frame (DistilHuBERT)",
        "targets": [t.summary() for t in targets], "history": result.history,
        "task_vector": {"dir": VECTOR_DIR, "base_fingerprint": vector.fingerprint,
                        "head": bool(vector.heads), "group": vector.manifest.group},
        "files": files,
    }
