"""``chorus finetune``: fine-tune an encoder + linear head; write a model and its task vector."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table

from . import _options as opt
from ._console import Console
from ._options import DEVICE
from ._outcome import finish

if TYPE_CHECKING:
    from ..finetune.runner import FinetuneResult


def _split_groups(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def register(app: typer.Typer) -> None:
    @app.command("finetune", epilog="Example: chorus finetune -d data/manifest.csv -o runs/birds --group birds")
    def finetune_command(
        data: Path = opt.data(help="manifest CSV/TSV with train and valid splits"),
        out: Path = opt.out(help="output directory (model/, taskvector/, metrics.json)"),
        encoder: str = opt.encoder(),
        group: Optional[list[str]] = typer.Option(None, "--group", help="group(s) to train on, repeatable or "
                                                  "comma-separated; several = joint training (default: all)"),
        name: Optional[str] = typer.Option(None, help="group name recorded in the task vector"),
        method: str = typer.Option("full", help="full, head-only or lora"),
        freeze: Optional[list[str]] = typer.Option(None, "--freeze", help="glob of encoder parameters to keep "
                                                   "frozen, repeatable (e.g. 'blocks.0.*')"),
        lora_rank: int = typer.Option(8, help="LoRA rank"),
        lora_alpha: float = typer.Option(16.0, help="LoRA alpha (update scale alpha/rank)"),
        lora_target: Optional[list[str]] = typer.Option(None, "--lora-target", help="glob of module names to adapt"),
        head_init: str = typer.Option("probe", help="probe (fit a logistic-regression head on the frozen "
                                      "features first, LP-FT) or random"),
        train_bn_stats: bool = typer.Option(False, help="update BatchNorm running statistics (stored as buffers.*)"),
        layer: Optional[str] = typer.Option(None, help="encoder layer feeding the head (name or index; default last)"),
        pooling: str = typer.Option("mean", help="mean, max or mean+max over valid frames, or native (the "
                                    "encoder's own)"),
        clip_seconds: Optional[float] = typer.Option(None, help="crop/pad length (default: longest clip, ≤ 10 s)"),
        epochs: int = typer.Option(10),
        batch_size: int = opt.batch_size(16, "clips per micro-batch"),
        accumulate: int = typer.Option(1, help="micro-batches per optimizer step"),
        lr: Optional[float] = opt.lr(None, "encoder peak LR (default 3e-5 full, 1e-3 LoRA)"),
        head_lr: float = typer.Option(1e-4),
        layer_decay: float = typer.Option(1.0, help="LR factor per encoder block below the last (1: one rate)"),
        weight_decay: float = typer.Option(0.01),
        warmup: float = typer.Option(0.1, help="fraction of steps warming up"),
        ema: Optional[float] = typer.Option(None, help="validate and keep an exponential moving average of the "
                                            "weights with this decay (default: none)"),
        patience: int = typer.Option(3, help="epochs without improvement before stopping (0: never)"),
        monitor: Optional[str] = typer.Option("loss", help="validation metric for early stopping and the "
                                              "comparison with the frozen probe (e.g. loss, accuracy, map)"),
        keep_probe: bool = typer.Option(True, help="keep the frozen-probe baseline when no fine-tuned epoch "
                                        "matches it on validation"),
        seed: int = opt.seed(),
        device: str = DEVICE,
        delta_dtype: str = typer.Option("float32", help="task-vector storage: float32, bfloat16, float16"),
        density: float = typer.Option(1.0, help="keep this fraction of each delta (top magnitudes)"),
        source: Optional[str] = typer.Option(None, help="where the encoder weights come from"),
        random_init: bool = typer.Option(False, "--random-init", help="start from random weights (ablation)"),
        creator: Optional[str] = typer.Option(None),
        license: Optional[str] = typer.Option(None),
        resume: bool = typer.Option(False, "--resume", help="continue from the checkpoint in --out"),
        gram: bool = typer.Option(False, "--gram", help="store Gram statistics of the training clips (for RegMean)"),
        class_stats: bool = typer.Option(False, "--class-stats",
                                         help="store class statistics of the training clips on the base encoder "
                                              "(for merge --calibration lda; multi-class only)"),
    ) -> None:
        """Fine-tune an encoder plus a linear head (softmax or sigmoid, chosen from the manifest)."""
        from ..data.manifest import read_manifest
        from ..progress import tqdm_progress
        from ..schema import validated
        from ..finetune.config import FinetuneConfig
        from ..finetune.errors import FinetuneError, FinetuneWarning
        from ..finetune.runner import finetune
        from ..taskvec.errors import SparseStorageWarning
        from ._warnings import surfaced

        config = validated(
            FinetuneConfig, FinetuneError,
            encoder=encoder, source=source, pretrained=not random_init, groups=_split_groups(group), name=name,
            method=method, freeze=freeze or [], lora_rank=lora_rank, lora_alpha=lora_alpha,
            lora_targets=lora_target or [], head_init=head_init, train_bn_stats=train_bn_stats, layer=layer,
            pooling=pooling,
            clip_seconds=clip_seconds, epochs=epochs, batch_size=batch_size, accumulate=accumulate, lr=lr,
            head_lr=head_lr, layer_decay=layer_decay, weight_decay=weight_decay, warmup=warmup, ema=ema,
            patience=patience or None, monitor=monitor, keep_probe=keep_probe,
            seed=seed, device=device, delta_dtype=delta_dtype, density=density, creator=creator, license=license)
        with warnings.catch_warnings(), surfaced(SparseStorageWarning):  # FinetuneWarning printed below
            warnings.simplefilter("ignore", FinetuneWarning)
            result = finetune(read_manifest(data), out, config, progress=tqdm_progress, resume=resume, gram=gram,
                              class_stats=class_stats)
        console = Console()
        for failure in result.failures:
            console.print(f"[yellow]skipped[/] {failure.error}", highlight=False, soft_wrap=True)
        table = Table(title=f"fine-tuning {encoder} ({result.task}, {len(result.labels)} labels)")
        columns = [key for key in result.history[0] if key not in ("epoch", "step")] if result.history else []
        for column in ["epoch", *columns]:
            table.add_column(column)
        for row in result.history:
            marker = " *" if row["epoch"] == result.best_epoch else ""
            table.add_row(f"{row['epoch']}{marker}", *[f"{row[c]:.4g}" for c in columns])
        console.print(table)
        _print_against_probe(console, result)
        console.print(f"model: {result.model_dir}\ntask vector: {result.taskvector_dir}", soft_wrap=True)
        finish(len(result.failures))


def _print_against_probe(console: Console, result: "FinetuneResult") -> None:
    """The fine-tuned metrics next to the frozen-probe baseline's, and what was kept."""
    def line(metrics: dict[str, float] | None) -> str:
        return ", ".join(f"{k} {v:.4f}" for k, v in (metrics or {}).items())

    for split, ours, probe in (("valid", result.valid_metrics, result.probe_valid_metrics),
                               ("test", result.test_metrics, result.probe_test_metrics)):
        if ours:
            console.print(f"{split}: {line(ours)}  |  frozen probe: {line(probe)}", highlight=False, soft_wrap=True)
    if result.kept_probe:
        console.print("[yellow]kept the frozen probe[/]: no fine-tuned epoch matched it on validation "
                      "(the encoder is unchanged)", highlight=False, soft_wrap=True)
    if result.warning:
        console.print(f"[yellow]warning[/] {result.warning}", highlight=False, soft_wrap=True)
