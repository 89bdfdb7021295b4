"""``chorus probe``: layer-wise probing of a frozen encoder, with ablations and a report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ._options import BATCH_SIZE, DEVICE, ENCODER, SOURCE, float_list
from ._outcome import finish

TASKS = ("auto", "multiclass", "multilabel", "detection")


def _print_best(report: dict, console: Console) -> None:
    from ..probe.report import best_rows

    table = Table(title=f"chorus probe: {report['encoder']} ({report['task']}, best layer chosen on valid)")
    metric = report["metric"]
    test_names = sorted(next(iter(next(iter(report["conditions"].values()))["poolings"].values()))["best"]["test"])
    for column in ["condition", "pooling", "layer", "setting", f"valid {metric}"] + [f"test {n}" for n in test_names]:
        table.add_column(column)
    for condition, pooling, layer, setting, *metrics in best_rows(report):
        table.add_row(condition, pooling, layer, setting, *[f"{value:.3f}" for value in metrics])
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("probe")
    def probe_command(
        encoder: str = ENCODER,
        data: Path = typer.Option(..., "--data", "-d", help="manifest with train/valid/test splits"),
        out: Path = typer.Option(..., "--out", "-o", help="report folder"),
        source: str = SOURCE,
        task: str = typer.Option("auto", "--task", help="auto, multiclass, multilabel or detection"),
        pooling: str = typer.Option("mean,max,attention", "--pooling",
                                    help="poolings to probe: mean, max, mean+max, attention, layer-sum, native "
                                         "(the encoder's own)"),
        c_values: str = typer.Option("0.01,0.1,1,10", "--C", "--c-values",
                                     help="L2 grid of the linear probes (scikit-learn's C: loss + ||W||^2/(2 C n))"),
        solver: str = typer.Option("lbfgs", "--solver",
                                   help="linear probes: lbfgs (full batch, to the optimum) or adam (minibatch, "
                                        "early stopping)"),
        learning_rates: str = typer.Option("1e-2,3e-2,1e-1,3e-1", "--lr", help="Adam learning-rate grid"),
        epochs: int = typer.Option(100, "--epochs", min=1, help="most epochs per probe"),
        patience: int = typer.Option(3, "--patience", min=1, help="validation checks without a gain before a probe stops"),
        weight_decay: float = typer.Option(0.007, "--weight-decay", "--l2", min=0.0,
                                           help="L2 penalty on the probe weights (loss + l2/2 ||W||^2; 0: none)"),
        monitor: str = typer.Option("metric", "--monitor", help="early stopping on the validation 'metric' or 'loss'"),
        eval_every: Optional[int] = typer.Option(None, "--eval-every", min=1,
                                                 help="probe updates between validation checks (default: one epoch)"),
        probe_batch: int = typer.Option(128, "--probe-batch-size", min=1, help="clips per probe update"),
        average: float = typer.Option(0.9, "--average", min=0.0, max=0.999,
                                      help="decay of the running average of the probe weights that is validated "
                                           "and kept (0: the weights themselves)"),
        batch_size: int = BATCH_SIZE,
        dtype: str = typer.Option("float32", "--dtype", help="feature cache type: float32 or float16"),
        cache: Path = typer.Option(None, "--cache", help="feature cache folder (default OUT/cache)"),
        random_init: bool = typer.Option(False, "--random-init", help="also probe the architecture with random weights"),
        noise_snr: str = typer.Option("", "--noise-snr", help="SNRs (dB) of noise mixed into TEST clips, e.g. 0,-5,-10"),
        noise_kind: str = typer.Option("pink", "--noise-kind", help="white or pink"),
        pitch_shift: str = typer.Option("", "--pitch-shift", "--resample-factor",
                                        help="frequency factors, e.g. 0.5 plays calls an octave lower"),
        window: float = typer.Option(2.0, "--window", help="detection: window length (s)"),
        hop: float = typer.Option(1.0, "--hop", help="detection: window hop (s)"),
        min_overlap: float = typer.Option(0.2, "--min-overlap", help="detection: overlap making a window positive"),
        seed: int = typer.Option(0, "--seed"),
        device: str = DEVICE,
    ) -> None:
        """Probe every layer of ENCODER on DATA: one forward pass per batch extracts all
        layers (cached); linear probes for all layers x learning rates train together;
        layer and rate are chosen on valid, then tested. Writes OUT/probe.json, PNGs and
        OUT/report.html."""
        from ..data.manifest import read_manifest
        from ..probe.errors import ProbeConfigError
        from ..probe.report import write_probe_report
        from ..probe.runner import ProbeConfig, run_probe
        from ..probe.task import detection_task, task_from_manifest
        from ..progress import tqdm_progress
        from ..schema import validated

        if task not in TASKS:
            raise typer.BadParameter(f"choose among {', '.join(TASKS)}", param_hint="--task")
        config = validated(  # the one place these settings are checked
            ProbeConfig, ProbeConfigError,
            poolings=tuple(part.strip() for part in pooling.split(",") if part.strip()),
            train=dict(learning_rates=float_list(learning_rates, "--lr"), c_values=float_list(c_values, "--C"),
                       solver=solver, epochs=epochs, patience=patience, monitor=monitor, eval_every=eval_every,
                       batch_size=probe_batch, weight_decay=weight_decay, average=average, seed=seed),
            batch_size=batch_size, dtype=dtype, random_init=random_init,
            pitch_factors=float_list(pitch_shift, "--pitch-shift"), noise_snrs=float_list(noise_snr, "--noise-snr"),
            noise_kind=noise_kind, seed=seed, device=device,
        )
        if task == "detection":
            probe_task = detection_task(read_manifest(data, allow_unlabelled=True), window, hop, min_overlap)
        else:
            probe_task = task_from_manifest(read_manifest(data))
            if task != "auto" and task != probe_task.kind:
                raise typer.BadParameter(f"the manifest holds a {probe_task.kind} task", param_hint="--task")
        report = run_probe(encoder, probe_task, cache or out / "cache", config, source=source, progress=tqdm_progress)
        paths = write_probe_report(report, out)
        console = Console()
        for failure in report["failures"]:
            console.print(f"[yellow]skipped[/] {failure['error']}", highlight=False, soft_wrap=True)
        _print_best(report, console)
        console.print(f"report: {paths['html']}  (JSON: {paths['json']})", highlight=False)
        finish(len(report["failures"]))
