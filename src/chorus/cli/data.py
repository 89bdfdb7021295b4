"""``chorus data``: check a manifest (or dataset folder) and make deterministic splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import _options as opt
from ._console import Console

MAX_LABEL_ROWS = 100
FOLDER_MANIFEST = "manifest.csv"
"""A folder given as data is read through this manifest when it holds one."""

RootOption = typer.Option(None, "--root", help="Dataset folder the paths are relative to, and must stay in "
                                               "(default: the manifest's folder; paths may leave it).")
UnlabelledOption = typer.Option(False, "--allow-unlabelled", help="Accept clips without labels (pre-training data).")


def _open(source: Path, root: Optional[Path], allow_unlabelled: bool):
    """A manifest from a CSV/TSV file, a folder holding ``manifest.csv``, an audiofolder or
    a folder-per-class tree."""
    from ..data.manifest import from_audiofolder, read_manifest

    if source.is_dir() and (source / FOLDER_MANIFEST).is_file():
        source = source / FOLDER_MANIFEST
    elif source.is_dir():
        return from_audiofolder(source, allow_unlabelled=allow_unlabelled)
    return read_manifest(source, root, allow_unlabelled=allow_unlabelled)


def _open_or_report(console: Console, source: Path, root: Optional[Path], allow_unlabelled: bool):
    """The manifest, or every problem printed and exit status 2."""
    from ..data.manifest import ManifestError

    try:
        return _open(source, root, allow_unlabelled)
    except ManifestError as exc:
        _report(console, exc.path, [problem.describe(exc.path) for problem in exc.problems])
        raise typer.Exit(2) from exc


def _report(console: Console, path: Path, problems: list[str]) -> None:
    console.print(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", style="bold red",
                  markup=False, highlight=False, soft_wrap=True)
    for problem in problems:
        console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)


def _split_counts(clips) -> str:
    counts = Counter(clip.split or "unassigned" for clip in clips)
    order = ["train", "valid", "test", "unassigned"]
    return ", ".join(f"{name} {counts[name]}" for name in order if counts[name])


def _label_table(manifest) -> Table:
    splits = manifest.splits + (["unassigned"] if any(c.split is None for c in manifest.clips) else [])
    counts = Counter((label, clip.split or "unassigned") for clip in manifest.clips for label in clip.labels)
    table = Table(title="clips per label")
    for column in ("label", "clips", *splits):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label in manifest.labels:
        row = [counts[(label, split)] for split in splits]
        table.add_row(label, str(sum(row)), *map(str, row))
    return table


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Check dataset manifests and make deterministic splits.", no_args_is_help=True,
                           epilog="Example: chorus data check data/manifest.csv")
    app.add_typer(data_app, name="data")

    @data_app.command("check", epilog="Example: chorus data check data/manifest.csv --durations")
    def check_command(
        manifest: Path = typer.Argument(..., help="Manifest CSV/TSV, folder with manifest.csv, audiofolder or "
                                                  "folder-per-class tree."),
        root: Optional[Path] = RootOption,
        allow_unlabelled: bool = UnlabelledOption,
        durations: bool = typer.Option(False, "--durations", help="Read every audio header and report hours."),
    ) -> None:
        """Validate a manifest: print a summary, or every problem (exit status 2)."""
        console = Console()
        data = _open_or_report(console, manifest, root, allow_unlabelled)
        summary = Table(title=f"{manifest}", show_header=False)
        summary.add_column("what")
        summary.add_column("value")
        summary.add_row("clips", str(len(data)))
        summary.add_row("labels", f"{len(data.labels)}{' (multi-label)' if data.multi_label else ''}")
        summary.add_row("groups", ", ".join(data.groups) if data.groups else "-")
        summary.add_row("splits", _split_counts(data.clips))
        summary.add_row("root", str(data.root))
        if durations:
            from ..data.loading import FailedClip, clip_durations
            from ..progress import tqdm_progress

            failures: list[FailedClip] = []
            seconds = clip_durations(data.clips, failures, tqdm_progress)
            summary.add_row("hours", f"{sum(s for s in seconds if s is not None) / 3600:.3f}")
        console.print(summary)
        if len(data.labels) <= MAX_LABEL_ROWS:
            console.print(_label_table(data))
        else:
            console.print(f"({len(data.labels)} labels: per-label counts not shown)")
        if durations and failures:
            _report(console, manifest, [f"{f.error}" for f in failures])
            raise typer.Exit(2)

    @data_app.command("split", epilog="Example: chorus data split data/manifest.csv -o data/split.csv --seed 0")
    def split_command(
        manifest: Path = typer.Argument(..., help="Manifest CSV/TSV, folder with manifest.csv, audiofolder or "
                                                  "folder-per-class tree."),
        out: Path = opt.out(help="Where to write the split manifest (CSV)."),
        seed: int = opt.seed(help="Same seed, same split."),
        train: float = typer.Option(0.7, "--train", help="Fraction for train."),
        valid: float = typer.Option(0.15, "--valid", help="Fraction for valid."),
        test: float = typer.Option(0.15, "--test", help="Fraction for test."),
        by: str = typer.Option("label", "--by", help="Stratify per 'label' (first label) or 'group'."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Re-split clips that already have a split."),
        root: Optional[Path] = RootOption,
        allow_unlabelled: bool = UnlabelledOption,
    ) -> None:
        """Assign train/valid/test, stratified and deterministic, and write a new manifest."""
        from ..data.manifest import write_manifest
        from ..data.splits import stratified_split

        console = Console()
        data = _open_or_report(console, manifest, root, allow_unlabelled)
        try:
            result = stratified_split(data, {"train": train, "valid": valid, "test": test}, seed, by,
                                      overwrite=overwrite)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        write_manifest(result, out)  # paths relative to the manifest written: readable from anywhere
        console.print(f"wrote {out}: {_split_counts(result.clips)}", markup=False, highlight=False, soft_wrap=True)
