"""``pretrain``: continual self-supervised pre-training of an encoder on unlabelled audio,
over a multi-stage (re-warm / re-decay) learning-rate schedule.

Outputs under ``out_dir``: ``encoder/`` (the adapted encoder, see
:mod:`chorus.pretrain.encoder_dir`), ``taskvector/`` (τ = adapted − start over the
encoder's tensors only: loss heads are discarded), ``pretrain.json`` (settings, loss and
learning rate per step, stage starts, forgetting check), ``lr.png`` and ``loss.png``.
While running, ``checkpoint/`` holds the newest checkpoint (written at every stage end and
every ``checkpoint_every`` steps; :mod:`chorus.train.checkpoint` layout); ``resume=True`` continues from it, and the result is the same
bytes as an uninterrupted run: every step's batch, crops, masks and dropout are drawn from
generators seeded by ``(seed, step)``.
"""

from __future__ import annotations

import copy
import fnmatch
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..data.loading import FailedClip
from ..data.manifest import Manifest
from ..encoders import Encoder, load_encoder
from ..fileio import locks_folder, write_json
from ..probe.task import task_from_manifest
from ..progress import ProgressFactory, resolve
from ..seeding import derived_seed, generator, seed_everything
from ..taskvec import TaskVector, TrainingSummary
from ..train.checkpoint import load_checkpoint, remove_checkpoints, save_checkpoint
from ..data.clipset import crop_batch
from ..train.schedule import MultiStage, Stage, stage_at, stage_starts
from ..devices import resolve_device
from ..train.step import TrainStep, parameter_groups, set_train_mode
from .config import PretrainConfig
from .encoder_dir import save_encoder
from .forgetting import forgetting_check
from .masking import numpy_seeded
from .objective import Objective
from .errors import PretrainError
from .objectives import build_objective, resolve_objective
from .plots import plot_curve


@dataclass
class PretrainResult:
    """Where the outputs went and how the run went."""

    out_dir: Path
    objective: str
    history: list[dict]
    forgetting: dict | None = None
    failures: list[FailedClip] = field(default_factory=list)
    resumed_from_step: int | None = None

    @property
    def encoder_dir(self) -> Path:
        return self.out_dir / "encoder"

    @property
    def taskvector_dir(self) -> Path:
        return self.out_dir / "taskvector"


@locks_folder("out_dir")
def pretrain(manifest: Manifest, out_dir: str | Path, config: PretrainConfig, *,
             forgetting: Manifest | None = None, progress: ProgressFactory | None = None,
             resume: bool = False) -> PretrainResult:
    """Continue pre-training ``config.encoder`` on every clip of ``manifest`` (labels, if
    any, are ignored). With ``forgetting`` (a labelled manifest of the original domain with
    train/valid/test splits), probe it before and after adaptation. Files that fail to
    decode are reported in the result and left out. On CPU the same seed gives the same bytes.
    """
    out_dir = Path(out_dir)
    seed_everything(config.seed)
    device = resolve_device(config.device)
    base = load_encoder(config.encoder, source=config.source, pretrained=config.pretrained, seed=config.seed)
    base.requires_grad_(False)
    original_task = None if forgetting is None else task_from_manifest(forgetting)  # refused before training
    waveforms, failures = _load_audio(manifest, base.sample_rate, progress)
    name = resolve_objective(config.objective, base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derived_seed(config.seed, "heads"))
        objective = build_objective(name, _trainable_copy(base), base, waveforms, config, device)
    _check_freeze_globs(objective.encoder, config.stages)
    history, resumed = _train(objective, waveforms, config, out_dir, device, progress, resume)
    adapted = objective.encoder.cpu().eval()
    adapted.requires_grad_(False)
    base = base.cpu()
    hours = _hours(waveforms, base.sample_rate)
    _save_adapted(base, adapted, out_dir, config, name, history, hours)
    forgotten = None
    if original_task is not None:
        forgotten = forgetting_check(base, adapted, original_task, out_dir / "forgetting-cache", seed=config.seed,
                                     batch_size=config.batch_size, device=str(device), progress=progress)
        shutil.rmtree(out_dir / "forgetting-cache", ignore_errors=True)
    _plot(out_dir, config, name, history)
    write_json(out_dir / "pretrain.json", {
        "config": config.model_dump(mode="json"), "objective": name, "heads_from": objective.heads_source,
        "device": str(device),
        "clips": len(waveforms), "hours": hours, "stage_starts": stage_starts(config.stages),
        "steps": history, "forgetting": forgotten,
        "failed_files": [{"path": str(f.clip.path), "error": str(f.error)} for f in failures]})
    remove_checkpoints(out_dir)
    return PretrainResult(out_dir, name, history, forgotten, failures, resumed)


def _save_adapted(base: Encoder, adapted: Encoder, out_dir: Path, config: PretrainConfig, objective: str,
                  history: list[dict], hours: float) -> None:
    """``encoder/`` and ``taskvector/`` (τ = adapted − base, encoder tensors only)."""
    save_encoder(adapted, out_dir / "encoder")
    summary = TrainingSummary(
        method=f"continual pre-training ({objective})", clips_per_label={}, hours=hours, epochs=0,
        metrics={"first_loss": history[0]["loss"], "final_loss": history[-1]["loss"]}, seed=config.seed,
        settings={"objective": objective, "stages": config.model_dump(mode="json")["stages"],
                  "batch_size": config.batch_size, "clip_seconds": config.clip_seconds})
    TaskVector.from_models(base, adapted, group=config.name, training=summary).save(out_dir / "taskvector")


def _plot(out_dir: Path, config: PretrainConfig, objective: str, history: list[dict]) -> None:
    starts = stage_starts(config.stages)
    steps = [row["step"] for row in history]
    schedule = "two-stage schedule (re-warm, re-decay)" if len(starts) == 2 else "learning rate"
    plot_curve(out_dir / "lr.png", steps, [row["lr"] for row in history], starts, "learning rate",
               f"{config.encoder}: {schedule}")
    plot_curve(out_dir / "loss.png", steps, [row["loss"] for row in history], starts, f"{objective} loss",
               f"{config.encoder}: {objective} loss", log=True)


def _load_audio(manifest: Manifest, sample_rate: int,
                progress: ProgressFactory | None) -> tuple[list[np.ndarray], list[FailedClip]]:
    from ..data.clipset import load_eval_audio

    audio = load_eval_audio(manifest.clips, sample_rate, progress, "loading audio")
    waveforms, failures = audio.waveforms, audio.failures
    if not waveforms:
        where = manifest.source or manifest.root
        reason = f"all {len(failures)} clips failed to load (first: {failures[0].error})" if failures else "no clips"
        raise PretrainError(f"{where}: nothing to pre-train on: {reason}")
    return waveforms, failures


def _hours(waveforms: list[np.ndarray], sample_rate: int) -> float:
    return sum(w.shape[0] for w in waveforms) / sample_rate / 3600.0


def _trainable_copy(base: Encoder) -> Encoder:
    encoder = copy.deepcopy(base)
    encoder.requires_grad_(True)
    return encoder


def _check_freeze_globs(encoder: nn.Module, stages: list[Stage]) -> None:
    names = [name for name, _ in encoder.named_parameters()]
    for number, stage in enumerate(stages, start=1):
        for pattern in stage.freeze:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
                raise PretrainError(f"stage {number}: freeze pattern {pattern!r} matches no encoder parameter "
                                    f"(e.g. {', '.join(names[:3])})")


def _apply_freeze(encoder: nn.Module, patterns: tuple[str, ...]) -> None:
    """Parameters matching ``patterns`` stop receiving gradients; all others train."""
    for name, parameter in encoder.named_parameters():
        parameter.requires_grad_(not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns))


def _train(objective: Objective, waveforms: list[np.ndarray], config: PretrainConfig, out_dir: Path,
           device: torch.device, progress: ProgressFactory | None, resume: bool) -> tuple[list[dict], int | None]:
    """The step loop over all stages; resumable from the newest checkpoint."""
    optimizer = torch.optim.AdamW(parameter_groups(objective, 1.0, config.head_lr_scale, config.weight_decay,
                                                   key="lr_scale"))
    schedule = MultiStage(tuple(config.stages))
    clip_samples = int(round(config.clip_seconds * objective.encoder.sample_rate))
    trainer = TrainStep(optimizer, _step_loss(objective, waveforms, clip_samples, config, device), schedule,
                        max_grad_norm=config.max_grad_norm)
    history: list[dict] = []
    resumed = None
    def same_settings(state: dict) -> None:
        if state["config_digest"] != config.digest():
            raise PretrainError(f"{out_dir}: the checkpoint was made with other settings; start without --resume")

    restored = load_checkpoint(out_dir, objective, trainer, check=same_settings) if resume else None
    if restored is not None:
        history, resumed = restored.state["history"], restored.step - 1
    start = trainer.step
    starts = set(stage_starts(config.stages))
    ends = {s + stage.steps - 1 for s, stage in zip(sorted(starts), config.stages)}
    bar = resolve(progress)(config.total_steps - start, "pre-training")
    try:
        for step in range(start, config.total_steps):
            stage, _ = stage_at(step, config.stages)
            if step == start or step in starts:  # what a stage freezes holds for all its steps
                _apply_freeze(objective.encoder, config.stages[stage].freeze)
                set_train_mode(objective, False, config.train_bn_stats)
            loss = float(trainer(step))
            history.append({"step": step, "stage": stage + 1, "lr": schedule(step), "loss": loss})
            if step in ends or (config.checkpoint_every and (step + 1) % config.checkpoint_every == 0):
                save_checkpoint(out_dir, objective, trainer, {"history": history, "config_digest": config.digest()})
            bar.update(1)
    finally:
        bar.close()
    return history, resumed


def _step_loss(objective: Objective, waveforms: list[np.ndarray], clip_samples: int, config: PretrainConfig,
               device: torch.device) -> Callable[[int], torch.Tensor]:
    """``loss(step)``: the objective's loss on the batch, crops, masks and dropout drawn for
    optimizer step ``step``."""
    def loss(step: int) -> torch.Tensor:
        gen = generator(config.seed, "batch", str(step))
        indices = torch.randperm(len(waveforms), generator=gen)[:config.batch_size].tolist()
        batch, lengths = crop_batch(waveforms, indices, clip_samples, gen)
        torch.manual_seed(derived_seed(config.seed, "step", str(step)))
        with numpy_seeded(derived_seed(config.seed, "numpy", str(step))):
            value = objective.loss(batch.to(device), lengths.to(device), generator(config.seed, "mask", str(step)))
        if not torch.isfinite(value):
            raise PretrainError(f"step {step}: the loss is {float(value)} (lower the learning rate?)")
        return value

    return loss
