"""``chorus distill`` (teachers -> student + distilled task vector) and ``chorus distill-demo``
(the real two-teacher run with its trade-off report)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from . import _options as opt


def _teacher_layers(items: list[str]) -> dict[str, tuple[str, ...]]:
    """``["crepe-full=conv5,logits"]`` -> ``{"crepe-full": ("conv5", "logits")}``."""
    from ..distill import DistillError

    chosen = {}
    for item in items:
        name, sep, layers = item.partition("=")
        names = tuple(part.strip() for part in layers.split(",") if part.strip())
        if not sep or not name.strip() or not names:
            raise DistillError(f"--teacher-layers expects TEACHER=LAYER[,LAYER...], got {item!r}")
        chosen[name.strip()] = names
    return chosen


def register(app: typer.Typer) -> None:
    @app.command("distill", epilog="Example: chorus distill -t sfx-cnn --student-init student-cnn -d clips.csv "
                                            "-o runs/distill")
    def distill_command(
        teacher: List[str] = typer.Option(..., "--teacher", "-t", help="registered teacher encoder (repeat for "
                                          "ensemble distillation: all teachers at once)"),
        student_init: str = typer.Option(..., "--student-init", help="θ0: registered encoder name (random weights "
                                         "from --seed, e.g. student-cnn) or a chorus model directory"),
        data: Path = opt.data(help="manifest of the clips to distill on (labels optional)"),
        out: Path = opt.out(help="output directory"),
        seed: int = opt.seed(help="seed of θ0 (registered name) and of the distillation"),
        split: Optional[str] = opt.split("train", "split to distill on when the manifest has splits"),
        teacher_hop: Optional[int] = typer.Option(None, help="frame hop in samples of teachers that have one "
                                                  "(CREPE: e.g. 2400 at 16 kHz)"),
        teacher_layers: List[str] = typer.Option([], "--teacher-layers", help="TEACHER=LAYER[,LAYER] to predict "
                                                 "(default: three layers at 1/3, 2/3 and the end of its depth)"),
        student_layer: Optional[str] = typer.Option(None, help="student layer the heads read (default: last)"),
        head_layer: Optional[str] = typer.Option(None, help="student layer of the probe head carried by the task "
                                                 "vector when the manifest is labelled (default: last)"),
        group: Optional[str] = typer.Option(None, help="group name of the task vector (default: teacher names)"),
        epochs: int = typer.Option(10),
        batch_size: int = opt.batch_size(32, "clips per optimizer step"),
        lr: float = opt.lr(2e-3, "peak learning rate (10 % warm-up, then cosine decay)"),
        cosine_weight: float = typer.Option(1.0, help="weight of the −log σ(cos) term"),
    ) -> None:
        """Distill frozen teachers into a student; write the student and τ = θ_student − θ0."""
        from ._console import Console
        from rich.table import Table

        from ..distill import DistillConfig, DistillError, distill_to_directory
        from ..progress import tqdm_progress
        from ..schema import validated

        config = validated(DistillConfig, DistillError, student_layer=student_layer,
                           teacher_layers=_teacher_layers(teacher_layers), epochs=epochs, batch_size=batch_size, lr=lr,
                           cosine_weight=cosine_weight, seed=seed)
        record = distill_to_directory(teacher, student_init, data, out, config, seed=seed, split=split or None,
                                      teacher_hop=teacher_hop, group=group, head_layer=head_layer,
                                      progress=tqdm_progress)
        console = Console()
        for path, error in record["failures"].items():
            console.print(f"[yellow]skipped[/] {path}: {error}", highlight=False, soft_wrap=True)
        table = Table(title=f"distilling {', '.join(record['teachers'])} into {record['student']['name']} "
                            f"({record['clips']} clips)")
        for column in ("epoch", "loss"):
            table.add_column(column, justify="right")
        for row in record["history"]:
            table.add_row(str(row["epoch"]), f"{row['loss']:.4f}")
        console.print(table)
        head = "with a probe head" if record["task_vector"]["head"] else "without a head (unlabelled data)"
        console.print(f"task vector ({head}): {out / record['task_vector']['dir']}\nreport: {out / 'report.html'}",
                      soft_wrap=True)

    @app.command("distill-demo", epilog="Example: chorus distill-demo -o distill-demo/ --epochs 2")
    def distill_demo_command(
        out: Path = opt.out(Path("distill-demo"), "output directory"),
        clips_per_species: int = typer.Option(140, help="animal-call clips per species (8 species)"),
        notes_per_class: int = typer.Option(90, help="notes per pitch class (12 classes)"),
        epochs: int = typer.Option(6, help="distillation epochs per student (ensemble: half)"),
        crepe_hop: int = typer.Option(2400, help="crepe-full frame hop in samples at 16 kHz"),
        grid: str = typer.Option("0,0.5,1", help="λ values tried for each of λ1 and λ2"),
        seed: int = opt.seed(),
    ) -> None:
        """Real run: sfx-cnn and crepe-full distilled from one θ0; λ sweep of θ0 + λ1 τ1 + λ2 τ2."""
        from ._console import Console
        from rich.table import Table

        from ..demos.distillation import DistillDemoSettings, run_demo
        from ..progress import tqdm_progress
        from ._options import float_list

        settings = DistillDemoSettings(clips_per_species=clips_per_species, notes_per_class=notes_per_class, epochs=epochs,
                                crepe_hop=crepe_hop, grid=float_list(grid, "--grid"), seed=seed)
        record = run_demo(out, settings, tqdm_progress)
        console = Console()
        table = Table(title="probe test accuracy")
        for column in ("model", "calls (species)", "notes (pitch class)"):
            table.add_column(column, justify="right")
        for name, scores in record["scores"].items():
            table.add_row(name, f"{scores['calls']['accuracy']:.3f}", f"{scores['notes']['accuracy']:.3f}")
        best = record["best"]
        table.add_row(f"θ0 + {best['lambdas'][0]:g} τ1 + {best['lambdas'][1]:g} τ2",
                      f"{best['scores']['calls']['accuracy']:.3f} ({100 * best['kept']['calls']:.1f} %)",
                      f"{best['scores']['notes']['accuracy']:.3f} ({100 * best['kept']['notes']:.1f} %)")
        console.print(table)
        verdict = "kept" if record["acceptance"]["passed"] else "did NOT keep"
        console.print(f"{verdict} ≥ 90 % of each student's own-domain accuracy; report: {out / 'report.html'}")
