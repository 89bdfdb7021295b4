"""``chorus separate`` and ``chorus separation-metrics``."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import _options as opt
from ._console import Console
from ._options import DEVICE


_METRIC_HEADERS = {"si_sdr": "SI-SDR", "si_sdri": "SI-SDRi", "sdr": "SDR", "sir": "SIR", "sar": "SAR",
                   "mel_distance": "mel dist.", "clap_a": "CLAP-A", "clap_t": "CLAP-T"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "source"


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in map(_slug, names):
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def _parse_priors(spec: str, device: str):
    """``A,B`` or ``DIR#LABEL,DIR#LABEL`` -> prior sources (each folder loaded once)."""
    from ..separate.priors.model import SourcePrior
    from ..separate.priors.sampler import PriorSource

    loaded: dict[str, SourcePrior] = {}
    sources = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        folder, _, label = item.partition("#")
        if folder not in loaded:
            loaded[folder] = SourcePrior.from_pretrained(folder, device)
        sources.append(PriorSource(loaded[folder], label or None))
    for source in sources:
        source.class_id()
    return sources


def register(app: typer.Typer) -> None:
    @app.command("separate", epilog="Example: chorus separate mix.wav --priors priors/frog,priors/bird -o separated/")
    def separate_command(
        mix: Path = typer.Argument(..., help="Mixture audio file."),
        prompt: Optional[list[str]] = typer.Option(None, "--prompt", "-P",
                                                   help="Text describing one source (repeat; needs --model)."),
        model: Optional[str] = typer.Option(None, "--model", help="AudioLDM/AudioLDM2 hub id or local folder."),
        priors: Optional[str] = typer.Option(None, "--priors",
                                             help="Comma-separated prior folders, one per source; "
                                                  "PRIOR_DIR#LABEL picks a class of a class-conditional prior."),
        out: Optional[Path] = opt.out(None, "Output folder [default: MIX's folder/<stem>-separated]."),
        steps: int = typer.Option(50, help="Diffusion steps."),
        omega: float = typer.Option(1.0, help="ZeroSep guidance weight (0 reconstructs the mixture, >1 hallucinates)."),
        omega_schedule: str = typer.Option("constant", help="constant | linear (omega falls to 0)."),
        inversion: str = typer.Option("ddpm", help="ddpm (edit-friendly) | ddim."),
        guidance: float = typer.Option(0.5, help="Prior separation: reconstruction-guidance step, in posterior stds."),
        seed: int = opt.seed(),
        window_seconds: Optional[float] = typer.Option(None, help="Chunk length [default: the model's window]."),
        overlap_seconds: Optional[float] = typer.Option(None, help="Cross-fade between chunks [default: 1/8 window]."),
        device: str = DEVICE,
    ) -> None:
        """Separate MIX into one file per --prompt (ZeroSep, --model) or per prior (--priors)."""
        from ..audio import load_audio, write_audio
        from ..fileio import write_json
        from ..progress import tqdm_progress
        from ..schema import validated
        from ..separate.errors import SeparationError

        if (model is None) == (priors is None):
            raise SeparationError("give either --model with --prompt (ZeroSep) or --priors (source priors)")
        waveform, rate = load_audio(mix)
        if model is not None:
            from ..separate.zerosep import ZeroSep, ZeroSepConfig

            if not prompt:
                raise SeparationError("--model needs at least one --prompt")
            config = validated(ZeroSepConfig, SeparationError, steps=steps, omega=omega, omega_schedule=omega_schedule,
                               inversion=inversion, seed=seed, window_seconds=window_seconds,
                               overlap_seconds=overlap_seconds)
            result = ZeroSep.from_pretrained(model, device=device).separate(waveform, rate, list(prompt), config,
                                                                             progress=tqdm_progress)
        else:
            from ..separate.priors.sampler import PriorSeparationConfig, separate_with_priors

            if prompt:
                raise SeparationError("--prompt works with --model; priors name their own sources")
            config = validated(PriorSeparationConfig, SeparationError, steps=steps, guidance=guidance, seed=seed,
                               window_seconds=window_seconds, overlap_seconds=overlap_seconds)
            result = separate_with_priors(waveform, rate, _parse_priors(priors, device), config, progress=tqdm_progress)
        out = out or mix.parent / f"{mix.stem}-separated"
        files = []
        for name, source in zip(_unique_names(result.names), result.sources):
            path = out / f"{mix.stem}.{name}.wav"
            write_audio(path, source, result.sample_rate, subtype="FLOAT")
            files.append(path)
        write_json(out / "separation.json", {
            "input": str(mix), "sample_rate": result.sample_rate, "samples": len(waveform),
            "sources": [{"name": n, "file": p.name} for n, p in zip(result.names, files)],
            "evaluations": result.evaluations, "chunks": result.chunks, "settings": result.settings,
        })
        table = Table(title=f"separated {mix.name}")
        table.add_column("source")
        table.add_column("file")
        for name, path in zip(result.names, files):
            table.add_row(name, str(path))
        console = Console()
        console.print(table)
        console.print(f"{result.evaluations} network evaluations over {result.chunks} chunk(s)")

    @app.command("separation-metrics", epilog="Example: chorus separation-metrics ref1.wav ref2.wav --est a.wav "
                                                       "--est b.wav --mix mix.wav")
    def metrics_command(
        references: list[Path] = typer.Argument(..., help="Reference source files, in source order."),
        est: list[Path] = typer.Option(..., "--est", help="Estimated source files, same order (repeat)."),
        mix: Optional[Path] = typer.Option(None, "--mix", help="The mixture (enables SI-SDRi)."),
        prompt: Optional[list[str]] = typer.Option(None, "--prompt", help="Text of each source (CLAP-T; repeat)."),
        clap: Optional[str] = typer.Option(None, "--clap", help="CLAP model hub id or folder (CLAP-A, CLAP-T)."),
        json_out: Optional[Path] = typer.Option(None, "--json",
                                                help="Where to write the scores [default: next to the first estimate]."),
        trim: bool = typer.Option(False, "--trim", help="Score the common part when an estimate and its reference "
                                                        "differ in length (default: refuse)."),
    ) -> None:
        """Score separated sources: SI-SDR(i), SDR/SIR/SAR, mel distance, CLAP-A/T."""
        from ..audio import load_audio, resample
        from ..fileio import write_json
        from ..separate.errors import SeparationError
        from ..separate.metrics import ClapScorer, matched_lengths, score_separation

        if len(references) != len(est):
            raise SeparationError(f"{len(references)} references but {len(est)} --est files")
        refs = [load_audio(path) for path in references]
        rate = refs[0][1]
        ref_waves = [resample(w, r, rate) for w, r in refs]
        est_waves = [load_audio(path, rate)[0] for path in est]
        mixture = load_audio(mix, rate)[0] if mix is not None else None
        scorer = ClapScorer.from_pretrained(clap) if clap else None
        names = [p.stem for p in est]
        ref_waves, est_waves, cut = matched_lengths(ref_waves, est_waves, [str(p) for p in est], rate, trim)
        for name, seconds in zip(names, cut):
            if seconds:
                Console().print(f"[yellow]trimmed[/] {name}: {seconds:.3f} s cut to match its reference", highlight=False)
        rows = score_separation(ref_waves, est_waves, rate, mixture, names, list(prompt) if prompt else None, scorer)
        columns = list(_METRIC_HEADERS)
        shown = [c for c in columns if any(not math.isnan(getattr(r, c)) for r in rows)]
        table = Table(title="separation metrics (dB except mel distance and CLAP)")
        table.add_column("source")
        for column in shown:
            table.add_column(_METRIC_HEADERS[column], justify="right")
        for row in rows:
            table.add_row(row.name, *(f"{getattr(row, c):.2f}" for c in shown))
        means = {c: float(sum(getattr(r, c) for r in rows) / len(rows)) for c in shown}
        table.add_row("mean", *(f"{means[c]:.2f}" for c in shown), style="bold")
        Console().print(table)
        target = json_out or est[0].parent / "separation-metrics.json"
        write_json(target, {
            "sample_rate": rate, "references": [str(p) for p in references], "estimates": [str(p) for p in est],
            "mixture": str(mix) if mix else None, "clap": clap, "trimmed_seconds": dict(zip(names, cut)),
            "sources": [{"name": r.name, **{c: (None if math.isnan(getattr(r, c)) else getattr(r, c)) for c in columns}}
                        for r in rows],
            "mean": means,
        })
        Console().print(f"scores written to {target}")
