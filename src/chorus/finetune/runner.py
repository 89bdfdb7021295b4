"""``finetune``: train an encoder plus a linear head on a manifest, then write a chorus model
directory and the task vector τ = θ_finetuned − θ_base.

Outputs under ``out_dir``: ``model/`` (:class:`~chorus.model.ClassifierModel`),
``taskvector/`` (:class:`~chorus.taskvec.TaskVector`), ``metrics.json`` (per epoch, written
atomically after each), ``finetune.json`` (settings, labels, skipped files) and, while
running, ``checkpoint/`` (removed on success; ``resume=True`` continues from it).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..data.loading import FailedClip
from ..data.manifest import Clip, Manifest
from ..devices import resolve_device
from ..encoders import Encoder, load_encoder
from ..fileio import locks_folder, write_json
from ..model import ClassifierModel, ClassifierSettings, HeadEntry
from ..model.inference import predict_clips
from ..progress import ProgressBar, ProgressFactory, resolve
from ..seeding import derived_seed, generator, seed_everything
from ..taskvec import TaskVector, TrainingSummary
from ..taskvec.classstats import write_class_stats
from ..taskvec.gram import compute_gram, write_gram
from .calibration import calibration_stats, class_counts
from ..train.checkpoint import load_checkpoint, remove_checkpoints, save_checkpoint
from .config import MAX_DEFAULT_CLIP_SECONDS, FinetuneConfig
from ..data.clipset import ClipSet, crop_batch, load_clipset, shuffled_batches
from ..train.early_stopping import EarlyStopping
from ..train.lora import inject_lora, merge_lora
from ..train.metrics import METRICS, MONITOR, classification_metrics, loss_function
from ..train.ema import WeightEMA
from .baseline import ProbeBaseline, matches_probe, probe_baseline, warn_if_below
from .errors import FinetuneError
from .layerwise import layerwise_scale
from ..train.step import TrainStep, autocast_dtype, classifier_loss, cosine_schedule, parameter_groups, set_train_mode


@dataclass
class FinetuneResult:
    """Where the outputs went and how the run went."""

    out_dir: Path
    labels: list[str]
    task: str
    history: list[dict]
    best_epoch: int | None
    valid_metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    failures: list[FailedClip] = field(default_factory=list)
    resumed_from_epoch: int | None = None
    probe_valid_metrics: dict[str, float] | None = None
    probe_test_metrics: dict[str, float] | None = None
    kept_probe: bool = False
    warning: str | None = None

    @property
    def model_dir(self) -> Path:
        return self.out_dir / "model"

    @property
    def taskvector_dir(self) -> Path:
        return self.out_dir / "taskvector"


@dataclass
class _Data:
    """The selected clips, decoded, and what was decided about them."""

    train: ClipSet
    valid: ClipSet
    test: ClipSet
    labels: list[str]
    task: str
    groups: list[str]
    valid_origin: str
    clip_seconds: float
    failures: list[FailedClip]

    @property
    def clip_samples(self) -> int:
        """Training crop length."""
        return int(round(self.clip_seconds * self.train.sample_rate))

    @property
    def eval_samples(self) -> int:
        """Evaluation sees whole clips up to this length (longer ones: a centred crop)."""
        return int(round(max(self.clip_seconds, MAX_DEFAULT_CLIP_SECONDS) * self.train.sample_rate))


@dataclass
class _Fit:
    """What the epoch loop produced."""

    history: list[dict]
    stopper: EarlyStopping
    best_state: dict[str, Tensor]
    resumed_from_epoch: int | None
    baseline: ProbeBaseline
    kept_probe: bool = False


@locks_folder("out_dir")
def finetune(manifest: Manifest, out_dir: str | Path, config: FinetuneConfig, *,
             progress: ProgressFactory | None = None, resume: bool = False, gram: bool = False,
             class_stats: bool = False) -> FinetuneResult:
    """Fine-tune ``config.encoder`` on the selected groups of ``manifest`` (``train`` and
    ``valid`` splits, carved when missing; ``test`` is evaluated when present). Files that
    fail to decode are reported in the result and left out. On CPU the same seed gives the
    same bytes. ``gram``: also store the Gram statistics of the training clips with the
    task vector (:mod:`chorus.taskvec.gram`). ``class_stats``: also store the class
    statistics of the training clips on the base encoder (:mod:`chorus.taskvec.classstats`;
    multi-class only)."""
    out_dir = Path(out_dir)
    seed_everything(config.seed)
    base = load_encoder(config.encoder, source=config.source, pretrained=config.pretrained, seed=config.seed)
    data = _load_data(manifest, config, base.sample_rate, progress)
    monitor = config.monitor or MONITOR[data.task]
    if monitor not in METRICS[data.task]:
        raise FinetuneError(f"unknown monitor metric {monitor!r}; available: {', '.join(METRICS[data.task])}")
    pooling = base.resolve_pooling(config.pooling)
    settings = ClassifierSettings(layer=_layer_name(base, config.layer), pooling=pooling,
                                  clip_seconds=data.clip_seconds, task=data.task)
    group_name = config.name or "+".join(data.groups) or None
    device = resolve_device(config.device)
    model = _build_model(base, data.labels, group_name, settings, config).to(device)
    fit = _fit(model, data, config, monitor, out_dir, device, progress, resume)
    best_epoch = None if fit.kept_probe else fit.stopper.best_epoch
    model.load_state_dict(fit.best_state)
    if config.method == "lora":
        merge_lora(model.encoder)
    amp = autocast_dtype(device)
    eval_size = _eval_size(config)
    valid_logits = predict_clips(model, data.valid, data.eval_samples, eval_size, device, amp)
    valid_metrics = classification_metrics(valid_logits, data.valid.targets, data.task)
    train_counts = class_counts(data.train.targets, len(data.labels), data.task)
    model.head_entries[0] = model.head_entries[0].model_copy(update={"calibration": calibration_stats(
        valid_logits, data.valid.targets, data.task, train_counts, len(data.train))})
    test_metrics = (classification_metrics(predict_clips(model, data.test, data.eval_samples, eval_size, device, amp),
                                           data.test.targets, data.task) if len(data.test) else None)
    baseline = fit.baseline
    warning = warn_if_below(baseline, valid_metrics, test_metrics, data.task)
    _write_metrics(out_dir, monitor, fit.history, best_epoch, valid_metrics, test_metrics,
                   {"valid": baseline.valid, "test": baseline.test, "penalty": baseline.penalty,
                    "kept": fit.kept_probe})
    model = model.cpu()
    model.metrics = {**{f"valid_{k}": v for k, v in valid_metrics.items()},
                     **{f"test_{k}": v for k, v in (test_metrics or {}).items()}}
    model.licenses = [config.license] if config.license else []
    model.save_pretrained(out_dir / "model")
    summary = TrainingSummary(
        method=_method_label(config), groups=data.groups, clips_per_label=dict(zip(data.labels, train_counts)),
        hours=data.train.hours, epochs=len(fit.history), best_epoch=best_epoch,
        metrics=dict(model.metrics),
        seed=config.seed, probe_metrics=baseline.metrics(), kept_probe=fit.kept_probe,
        settings={**_recorded_settings(config, data.clip_seconds), "probe_penalty": baseline.penalty})
    vector = TaskVector.from_classifier(base, model, group=group_name, training=summary,
                                        creator=config.creator, license=config.license)
    vector.save(out_dir / "taskvector", dtype=config.delta_dtype, density=config.density)
    if gram:
        write_gram(out_dir / "taskvector", compute_gram(model.encoder, data.train.waveforms, eval_size))
    if class_stats:
        from ..taskvec.classstats import ClassStatistics, pooled_features
        from ..taskvec.fingerprint import base_fingerprint

        settings = model.settings  # crops as `chorus tv stats` and evaluation: clip_seconds, centred
        crop = None if settings.clip_seconds is None else int(round(settings.clip_seconds * base.sample_rate))
        features = pooled_features(base, data.train.waveforms, settings.layer, settings.pooling, eval_size, crop)
        write_class_stats(out_dir / "taskvector", ClassStatistics.from_features(
            features, data.train.targets.tolist(), data.labels, settings.layer, settings.pooling,
            base_fingerprint(base.state_dict())))
    write_json(out_dir / "finetune.json", {
        "config": config.model_dump(mode="json"), "task": data.task, "labels": data.labels, "groups": data.groups,
        "device": str(device), "mixed_precision": None if amp is None else str(amp).removeprefix("torch."),
        "clips": {split: len(getattr(data, split)) for split in ("train", "valid", "test")},
        "valid_split": data.valid_origin,
        "failed_files": [{"path": str(f.clip.path), "error": str(f.error)} for f in data.failures]})
    remove_checkpoints(out_dir)
    return FinetuneResult(out_dir, data.labels, data.task, fit.history, best_epoch, valid_metrics,
                          test_metrics, data.failures, fit.resumed_from_epoch, baseline.valid, baseline.test,
                          fit.kept_probe, warning)


def _eval_size(config: FinetuneConfig) -> int:
    return config.eval_batch_size or 2 * config.batch_size


def _load_data(manifest: Manifest, config: FinetuneConfig, sample_rate: int,
               progress: ProgressFactory | None) -> _Data:
    """Select groups, make sure there is a validation split, decode every split once."""
    selected, groups = _select(manifest, config.groups)
    selected, origin = with_valid_split(selected, config.seed)
    task = "multilabel" if selected.multi_label else "multiclass"
    failures: list[FailedClip] = []
    splits = {split: load_clipset(selected.select(split=split).clips, selected.labels, task, sample_rate, failures,
                                  progress, f"loading {split}") for split in ("train", "valid", "test")}
    for split in ("train", "valid"):
        if not len(splits[split]):
            raise FinetuneError(f"no usable {split} clips in the selected data")
    longest = max(w.shape[0] for w in splits["train"].waveforms) / sample_rate
    return _Data(**splits, labels=selected.labels, task=task, groups=groups, valid_origin=origin,
                 clip_seconds=config.clip_seconds or min(longest, MAX_DEFAULT_CLIP_SECONDS), failures=failures)


def _fit(model: ClassifierModel, data: _Data, config: FinetuneConfig, monitor: str, out_dir: Path,
         device: torch.device, progress: ProgressFactory | None, resume: bool) -> _Fit:
    """The epoch loop: train, validate (the weight average when ``config.ema``), keep the best
    state, checkpoint; resumable. The frozen-probe baseline is fitted first (and is the
    starting head with ``head_init="probe"``); with ``keep_probe`` it replaces a best epoch
    that is worse than it on validation."""
    amp = autocast_dtype(device)
    baseline = probe_baseline(model, {"train": data.train, "valid": data.valid, "test": data.test}, data.task,
                              data.eval_samples, _eval_size(config), device, amp)
    if config.head_init == "probe":
        model.load_state_dict(baseline.state)
    scale = layerwise_scale(model.encoder, config.layer_decay) if config.layer_decay < 1 else None
    optimizer = torch.optim.AdamW(parameter_groups(model, config.encoder_lr, config.head_lr, config.weight_decay,
                                                   encoder_scale=scale))
    batches = math.ceil(len(data.train) / config.batch_size)
    total_steps = math.ceil(batches / config.accumulate) * config.epochs
    average = WeightEMA(model, config.ema) if config.ema is not None else None
    step = TrainStep(optimizer, classifier_loss(model, loss_function(data.task)),
                     cosine_schedule(total_steps, config.warmup, config.min_lr_ratio),
                     config.accumulate, config.max_grad_norm, amp, average.update if average else None)
    evaluated = average.model if average else model
    fit = _Fit([], EarlyStopping(config.patience, mode="min" if monitor == "loss" else "max"), {}, None, baseline)
    def same_settings(state: dict) -> None:
        if state["config_digest"] != config.digest():
            raise FinetuneError(f"{out_dir}: the checkpoint was made with other settings; start without --resume")

    resumed = load_checkpoint(out_dir, model, step, check=same_settings) if resume else None
    if resumed is not None:
        state, fit.best_state = resumed.state, resumed.tensors["best"]
        fit.history, fit.resumed_from_epoch = state["history"], state["epoch"] + 1
        fit.stopper = EarlyStopping(**state["early_stopping"])
        if average:
            average.model.load_state_dict(resumed.tensors["average"])
    start = fit.resumed_from_epoch or 0
    bar = resolve(progress)((config.epochs - start) * batches, "fine-tuning")
    try:
        for epoch in range(start, config.epochs):
            if fit.stopper.should_stop:
                break
            torch.manual_seed(derived_seed(config.seed, "epoch", str(epoch)))
            set_train_mode(model, config.method == "head-only", config.train_bn_stats)
            train_loss = train_epoch(step, data.train, data.clip_samples, config.batch_size,
                                     generator(config.seed, "batches", str(epoch)), device, bar)
            if average:
                copy_buffers(model, average.model)
            logits = predict_clips(evaluated, data.valid, data.eval_samples, _eval_size(config), device, amp)
            metrics = classification_metrics(logits, data.valid.targets, data.task)
            if fit.stopper.update(metrics[monitor], epoch):
                fit.best_state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
            fit.history.append({"epoch": epoch, "train_loss": train_loss, "step": step.step,
                                "lr": optimizer.param_groups[0]["lr"], **{f"valid_{k}": v for k, v in metrics.items()}})
            _write_metrics(out_dir, monitor, fit.history, fit.stopper.best_epoch)
            save_checkpoint(out_dir, model, step, {
                "epoch": epoch, "history": fit.history, "early_stopping": fit.stopper.state(),
                "config_digest": config.digest()},
                {"best": fit.best_state, **({"average": average.model.state_dict()} if average else {})})
    finally:
        bar.close()
    best = next((row for row in fit.history if row["epoch"] == fit.stopper.best_epoch), None)
    if config.keep_probe and not (best is not None and matches_probe(best, baseline.valid, monitor, data.task)):
        fit.best_state, fit.kept_probe = baseline.state, True
    return fit


@torch.no_grad()
def copy_buffers(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy ``source``'s buffers (BatchNorm statistics) into ``target`` of the same structure."""
    for theirs, ours in zip(source.buffers(), target.buffers()):
        ours.copy_(theirs)


def train_epoch(step: TrainStep, clips: ClipSet, clip_samples: int | None, batch_size: int, gen: torch.Generator,
                device: torch.device, bar: ProgressBar) -> float:
    """One pass over ``clips`` in shuffled fixed-duration batches; returns the mean loss."""
    losses = []
    for indices in shuffled_batches(len(clips), batch_size, gen):
        waveforms, lengths = crop_batch(clips.waveforms, indices, clip_samples, gen)
        losses.append(step(waveforms.to(device), lengths.to(device), clips.targets[indices].to(device)))
        bar.update(1)
    step.update()
    return float(torch.stack(losses).mean())


def _select(manifest: Manifest, groups: list[str]) -> tuple[Manifest, list[str]]:
    if groups:
        unknown = sorted(set(groups) - set(manifest.groups))
        if unknown:
            raise FinetuneError(f"groups not in the manifest: {', '.join(unknown)} "
                                f"(known: {', '.join(manifest.groups) or 'none'})")
        selected = manifest.select(group=groups)
    else:
        selected, groups = manifest, manifest.groups
    unlabelled: list[Clip] = [clip for clip in selected.clips if not clip.labels]
    if unlabelled:
        raise FinetuneError(f"{len(unlabelled)} clips have no label (first: {unlabelled[0].path})")
    if not selected.clips:
        raise FinetuneError("the selection holds no clips")
    return selected, sorted(groups)


def with_valid_split(manifest: Manifest, seed: int) -> tuple[Manifest, str]:
    """The manifest with a validation split, and where it came from.

    Unsplit clips get a stratified 70/15/15 split; without any ``valid`` clip, a
    stratified 15 % of the training clips becomes the validation split (seeded).
    """
    from dataclasses import replace

    from ..data.splits import DEFAULT_FRACTIONS, stratified_split

    if any(clip.split is None for clip in manifest.clips):
        manifest = stratified_split(manifest, DEFAULT_FRACTIONS, seed)
        origin = f"stratified split of unsplit clips (70/15/15, seed {seed})"
    else:
        origin = "manifest"
    if any(clip.split == "valid" for clip in manifest.clips):
        return manifest, origin
    train = replace(manifest, clips=[clip for clip in manifest.clips if clip.split == "train"])
    carved = stratified_split(train, {"train": 0.85, "valid": 0.15}, seed, overwrite=True)
    others = [clip for clip in manifest.clips if clip.split != "train"]
    return replace(manifest, clips=carved.clips + others), f"15 % of train (stratified, seed {seed})"


def _layer_name(encoder: Encoder, layer: str | None) -> str:
    if layer is None:
        return encoder.layer_names[-1]
    if layer in encoder.layer_names:
        return layer
    try:
        return encoder.layer_names[int(layer)]
    except (ValueError, IndexError):
        raise FinetuneError(f"encoder {encoder.name!r} has no layer {layer!r}; "
                            f"layers: {', '.join(encoder.layer_names)}") from None


def _build_model(base: Encoder, labels: list[str], group: str | None, settings: ClassifierSettings,
                 config: FinetuneConfig) -> ClassifierModel:
    """A trainable copy of ``base`` with a seeded head; parameters frozen per ``config``."""
    import fnmatch

    encoder = copy.deepcopy(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(config.seed, "head"))
        model = ClassifierModel(encoder, [HeadEntry(group=group, labels=labels)], settings)
    if config.method == "head-only":
        encoder.requires_grad_(False)
    elif config.method == "lora":
        inject_lora(encoder, config.lora_rank, config.lora_alpha, config.lora_targets, config.seed)
    for name, parameter in encoder.named_parameters():
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in config.freeze):
            parameter.requires_grad_(False)
    return model


def _method_label(config: FinetuneConfig) -> str:
    if config.method == "lora":
        return f"lora (rank {config.lora_rank}, alpha {config.lora_alpha:g})"
    if config.freeze and config.method == "full":
        return f"full (frozen: {', '.join(config.freeze)})"
    return config.method


def _recorded_settings(config: FinetuneConfig, clip_seconds: float) -> dict:
    keys = ("encoder", "method", "head_init", "epochs", "batch_size", "accumulate", "head_lr", "layer_decay",
            "weight_decay", "warmup", "min_lr_ratio", "max_grad_norm", "ema", "patience", "monitor", "keep_probe",
            "pooling", "train_bn_stats", "freeze")
    return {**{k: getattr(config, k) for k in keys}, "lr": config.encoder_lr, "clip_seconds": clip_seconds}


def _write_metrics(out_dir: Path, monitor: str, history: list[dict], best_epoch: int | None,
                   valid: dict | None = None, test: dict | None = None, probe: dict | None = None) -> None:
    """``probe``: the frozen-probe baseline (``valid``, ``test`` metrics, ``penalty``, ``kept``)."""
    write_json(out_dir / "metrics.json", {"monitor": monitor, "best_epoch": best_epoch, "epochs": history,
                                          "best_valid": valid, "test": test, "probe": probe})
