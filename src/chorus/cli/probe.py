"""``chorus probe``: layer-wise probing of a frozen encoder, with ablations and a report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import _options as opt
from ._console import Console
from ._options import BATCH_SIZE, DEVICE, ENCODER, SOURCE, float_list
from ._outcome import finish


def _print_summary(report: dict, console: Console) -> None:
    from ..probe.report import summary_tables

    for title, headers, rows in summary_tables(report):
        table = Table(title=f"chorus probe: {report['encoder']} ({report['task']}, {title})")
        for column in headers:
            table.add_column(column)
        for row in rows:
            table.add_row(*[f"{cell:.3f}" if isinstance(cell, float) else str(cell) for cell in row])
        console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("probe", epilog="Example: chorus probe -e sfx-cnn -d data/manifest.csv -o probe-report/")
    def probe_command(
        encoder: str = ENCODER,
        data: Path = opt.data(help="manifest with train/valid/test splits"),
        out: Path = opt.out(help="report folder"),
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
        learning_rates: str = opt.lr("1e-2,3e-2,1e-1,3e-1", "Adam learning-rate grid"),
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
        refit: bool = typer.Option(False, "--refit",
                                   help="also refit the probe chosen on valid (pooling, layer, C or rate) on "
                                        "train + valid and test it once (BEANS/HEAR practice)"),
        folds: bool = typer.Option(False, "--folds",
                                   help="k-fold cross-validation from the manifest's 'fold' column (split column "
                                        "ignored): each fold is tested once, the next fold (cyclically) chooses "
                                        "the setting, the others train; mean ± std over folds"),
        bootstrap: int = typer.Option(1000, "--bootstrap", min=0,
                                      help="stratified bootstrap resamples of the test clips for 95% intervals "
                                           "of the test metric (0: none)"),
        seed: int = opt.seed(),
        device: str = DEVICE,
    ) -> None:
        """Probe every layer of ENCODER on DATA: one forward pass per batch extracts all
        layers (cached); linear probes for all layers x learning rates train together;
        layer and rate are chosen on valid, then tested (with 95% bootstrap intervals;
        --refit: the chosen probe refit on train + valid; --folds: once per fold of the
        manifest's fold column). Writes OUT/probe.json, PNGs and OUT/report.html."""
        from ..probe.api import probe
        from ..probe.errors import ProbeConfigError
        from ..probe.runner import ProbeConfig
        from ..progress import tqdm_progress
        from ..schema import validated

        config = validated(  # the one place these settings are checked
            ProbeConfig, ProbeConfigError,
            poolings=tuple(part.strip() for part in pooling.split(",") if part.strip()),
            train=dict(learning_rates=float_list(learning_rates, "--lr"), c_values=float_list(c_values, "--C"),
                       solver=solver, epochs=epochs, patience=patience, monitor=monitor, eval_every=eval_every,
                       batch_size=probe_batch, weight_decay=weight_decay, average=average, seed=seed),
            batch_size=batch_size, dtype=dtype, random_init=random_init,
            pitch_factors=float_list(pitch_shift, "--pitch-shift"), noise_snrs=float_list(noise_snr, "--noise-snr"),
            noise_kind=noise_kind, refit=refit, bootstrap=bootstrap, seed=seed, device=device,
        )
        report = probe(encoder, data, out, config, task=task, source=source, cache=cache, window=window, hop=hop,
                       min_overlap=min_overlap, folds=folds, progress=tqdm_progress)
        paths = report["files"]
        console = Console()
        for failure in report["failures"]:
            console.print(f"[yellow]skipped[/] {failure['error']}", highlight=False, soft_wrap=True)
        _print_summary(report, console)
        console.print(f"report: {paths['html']}  (JSON: {paths['json']})", highlight=False)
        finish(len(report["failures"]))
