"""``chorus pretrain``: continual self-supervised pre-training on unlabelled audio."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import _options as opt
from ._console import Console
from ._options import DEVICE, float_list


def _per_stage(values: tuple[float, ...], stages: int, option: str) -> list[float]:
    """One value per stage: as many as stages, or one for all."""
    if len(values) == 1:
        return list(values) * stages
    if len(values) != stages:
        raise typer.BadParameter(f"give one value or {stages} (one per stage)", param_hint=option)
    return list(values)


def _freeze_by_stage(entries: list[str], stages: int) -> list[list[str]]:
    """``["1=blocks.0.*", "blocks.1.*"]`` -> globs per stage (no ``N=``: every stage)."""
    globs: list[list[str]] = [[] for _ in range(stages)]
    for entry in entries:
        number, sep, pattern = entry.partition("=")
        if not sep:
            for stage in globs:
                stage.append(entry)
            continue
        if not number.strip().isdigit() or not 1 <= int(number) <= stages or not pattern:
            raise typer.BadParameter(f"expected STAGE=GLOB with STAGE in 1..{stages}, got {entry!r}",
                                     param_hint="--freeze")
        globs[int(number) - 1].append(pattern)
    return globs


def _stages(steps: str, peak_lr: str, warmup: str, floor: str, freeze: list[str]) -> list[dict]:
    counts = float_list(steps, "--stage-steps")
    if not counts or any(c <= 0 or c != int(c) for c in counts):
        raise typer.BadParameter("give positive whole step counts, e.g. 20,20", param_hint="--stage-steps")
    n = len(counts)
    rates = _per_stage(float_list(peak_lr, "--peak-lr"), n, "--peak-lr")
    warmups = _per_stage(float_list(warmup, "--warmup-steps"), n, "--warmup-steps")
    floors = _per_stage(float_list(floor, "--floor"), n, "--floor")
    globs = _freeze_by_stage(freeze, n)
    return [{"steps": int(c), "peak_lr": r, "warmup_steps": int(w), "floor": f, "freeze": g}
            for c, r, w, f, g in zip(counts, rates, warmups, floors, globs)]


def register(app: typer.Typer) -> None:
    @app.command("pretrain", epilog="Example: chorus pretrain -e sfx-cnn -d unlabelled.csv -o runs/pretrain")
    def pretrain_command(
        encoder: str = opt.encoder(),
        data: Path = opt.data(help="manifest of unlabelled audio (a label column is optional)"),
        out: Path = opt.out(help="output directory (encoder/, taskvector/, pretrain.json, PNGs)"),
        objective: str = typer.Option("auto", help="auto, contrastive, masked-prediction or masked-spectrogram"),
        name: Optional[str] = typer.Option(None, help="name of the new domain, recorded in the task vector"),
        stage_steps: str = typer.Option("20,20", help="optimizer steps per stage (comma-separated)"),
        peak_lr: str = typer.Option("1e-4,5e-5", help="peak learning rate per stage (or one for all)"),
        warmup_steps: str = typer.Option("4,4", help="linear warm-up (re-warm) steps per stage"),
        floor: str = typer.Option("0.1", help="fraction of the peak each stage decays to"),
        freeze: Optional[list[str]] = typer.Option(None, "--freeze", help="STAGE=GLOB of encoder parameters "
                                                   "frozen in that stage (GLOB alone: every stage), repeatable"),
        batch_size: int = opt.batch_size(8, "crops per optimizer step"),
        clip_seconds: float = typer.Option(2.0, help="training crop length (s)"),
        head_lr_scale: float = typer.Option(10.0, help="loss heads train at this multiple of the encoder's LR"),
        weight_decay: float = typer.Option(0.01),
        mask_prob: float = typer.Option(0.65, help="transformers: share of frames starting a masked span"),
        mask_span: int = typer.Option(10, help="transformers: masked span length (frames)"),
        patch_ratio: float = typer.Option(0.4, help="sfx-cnn: share of log-mel patches masked"),
        reconstruction: str = typer.Option("l2", help="sfx-cnn: l1 or l2 on masked bins"),
        clusters: int = typer.Option(100, help="masked prediction: k-means clusters"),
        teacher_layer: Optional[str] = typer.Option(None, help="masked prediction: teacher layer (default middle)"),
        train_bn_stats: bool = typer.Option(False, help="update BatchNorm running statistics"),
        checkpoint_every: Optional[int] = typer.Option(None, help="steps between checkpoints (stage ends always)"),
        forgetting_data: Optional[Path] = typer.Option(None, "--forgetting-data", help="labelled manifest of the "
                                                       "original domain (train/valid/test): probe before and after"),
        source: Optional[str] = typer.Option(None, help="where the encoder weights come from"),
        random_init: bool = typer.Option(False, "--random-init", help="start from random weights"),
        seed: int = opt.seed(),
        device: str = DEVICE,
        resume: bool = typer.Option(False, "--resume", help="continue from the checkpoint in --out"),
    ) -> None:
        """Continue pre-training ENCODER on unlabelled DATA with a self-supervised objective
        over a multi-stage re-warm / re-decay schedule; write the adapted encoder, its task
        vector, pretrain.json, lr.png and loss.png."""
        from ..data.manifest import read_manifest
        from ..pretrain import PretrainConfig, PretrainError, pretrain
        from ..progress import tqdm_progress
        from ..schema import validated

        config = validated(
            PretrainConfig, PretrainError,
            encoder=encoder, source=source, pretrained=not random_init, objective=objective, name=name,
            stages=_stages(stage_steps, peak_lr, warmup_steps, floor, freeze or []), batch_size=batch_size,
            clip_seconds=clip_seconds, head_lr_scale=head_lr_scale, weight_decay=weight_decay,
            mask_prob=mask_prob, mask_span=mask_span, patch_ratio=patch_ratio, reconstruction=reconstruction,
            clusters=clusters, teacher_layer=teacher_layer, train_bn_stats=train_bn_stats,
            checkpoint_every=checkpoint_every, seed=seed, device=device)
        manifest = read_manifest(data, allow_unlabelled=True)
        original = read_manifest(forgetting_data) if forgetting_data else None
        result = pretrain(manifest, out, config, forgetting=original, progress=tqdm_progress, resume=resume)
        console = Console()
        if result.resumed_from_step is not None:
            console.print(f"resumed after step {result.resumed_from_step}")
        for failure in result.failures:
            console.print(f"[yellow]skipped[/] {failure.error}", highlight=False, soft_wrap=True)
        table = Table(title=f"continual pre-training of {encoder} ({result.objective})")
        for column in ("stage", "steps", "first loss", "last loss", "peak lr"):
            table.add_column(column)
        for number in sorted({row["stage"] for row in result.history}):
            rows = [row for row in result.history if row["stage"] == number]
            table.add_row(str(number), str(len(rows)), f"{rows[0]['loss']:.4g}", f"{rows[-1]['loss']:.4g}",
                          f"{max(row['lr'] for row in rows):.3g}")
        console.print(table)
        if result.forgetting:
            check = result.forgetting
            console.print(f"forgetting check ({check['metric']}, test): before {check['before']['test']:.3f} "
                          f"({check['before']['layer']}), after {check['after']['test']:.3f} "
                          f"({check['after']['layer']}), change {check['change']:+.3f}")
        console.print(f"encoder: {result.encoder_dir}\ntask vector: {result.taskvector_dir}", soft_wrap=True)
