"""``chorus evaluate``: metrics of a chorus model on a manifest, overall and per group."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import _options as opt
from ._options import DEVICE
from ._outcome import finish


def metrics_table(title: str, result: dict):
    """A rich table: the overall row, then one row per group."""
    from rich.table import Table

    multiclass = result["task"] == "multiclass"
    columns = (["clips", "accuracy", "macro_f1", "map", "roc_auc", "accuracy_within_group"] if multiclass
               else ["clips", "map", "roc_auc", "macro_f1", "micro_f1", "subset_accuracy"])
    table = Table(title=title)
    table.add_column("group")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")

    def cell(value) -> str:
        if value is None:
            return "-"
        return str(value) if isinstance(value, int) else f"{value:.3f}"

    table.add_row("all", *(cell(result["overall"].get(c)) for c in columns), style="bold")
    for group, metrics in result["per_group"].items():
        table.add_row(group, *(cell(metrics.get(c)) for c in columns))
    return table


def register(app: typer.Typer) -> None:
    @app.command("evaluate", epilog="Example: chorus evaluate merged/ -d data/manifest.csv --split test")
    def evaluate_command(
        model: Path = typer.Argument(..., help="Chorus model folder or Hub repo id (owner/name)."),
        data: Path = opt.data(help="Manifest (CSV) of labelled clips."),
        split: Optional[str] = opt.split("test", "Split to evaluate"),
        out: Optional[Path] = opt.out(None, "Output folder (default: MODEL-evaluation/<manifest>-<split> next to "
                                            "the model folder, which is never written)."),
        batch_size: int = opt.batch_size(16, "Clips per forward pass."),
        device: str = DEVICE,
    ) -> None:
        """Accuracy, macro-F1, mAP, ROC-AUC and the confusion matrix, overall and per group."""
        from ._console import Console

        from ..data.manifest import read_manifest
        from ..evaluate import evaluate_model
        from ..data.clipset import load_eval_audio
        from ..evaluate.confusion import write_confusion
        from ..fileio import write_json
        from ..model import ClassifierModel
        from ..progress import tqdm_progress

        classifier = ClassifierModel.from_pretrained(model).to(device)
        manifest = read_manifest(data)
        clips = manifest.select(split=split).clips if split else manifest.clips
        audio = load_eval_audio(clips, classifier.encoder.sample_rate, tqdm_progress)
        result = evaluate_model(classifier, audio, batch_size)
        result.update({"model": str(model), "data": str(data), "split": split or None})
        home = model if model.is_dir() else Path(model.name)  # a Hub id: a folder named after the repo
        out = out or home.parent / f"{home.name}-evaluation" / f"{data.stem}-{split or 'all'}"
        write_json(out / "metrics.json", result)
        if "confusion" in result:
            write_confusion(out, result["confusion"]["labels"], result["confusion"]["counts"],
                            f"{model.name} on {data.stem} ({split or 'all'})")
        console = Console()
        console.print(metrics_table(f"{model.name} on {data.name} ({split or 'all clips'})", result))
        if result["unknown_labels"]:
            console.print(f"[yellow]{len(result['unknown_labels'])} labels unknown to the model (counted as errors):"
                          f"[/] {', '.join(result['unknown_labels'][:10])}")
        for failure in result["failed_files"]:
            console.print(f"[yellow]skipped[/] {failure['path']}: {failure['error']}")
        console.print(f"written: {out}")
        finish(len(result["failed_files"]))
