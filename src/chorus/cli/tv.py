"""``chorus tv``: inspect, apply, compare, convert and share task vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from . import _options as opt
from ._console import Console

# Options shared by the statistics a party computes on its own clips (gram, stats).
PARTY_DATA = opt.data(help="manifest of the party's own clips")
PARTY_SPLIT = opt.split("train", "split of --data to use")
BASE_SOURCE = typer.Option(None, help="where the base weights come from (hub id or local path)")
EQUAL_LENGTH_BATCH = opt.batch_size(8, "clips per forward pass (equal lengths only)")


tv_app = typer.Typer(help="Task vectors: info, apply, diff, convert, push, pull.", no_args_is_help=True,
                     epilog="Example: chorus tv info runs/birds/taskvector")


def _say(message: str) -> None:
    """One message line, never wrapped inside a path."""
    Console(soft_wrap=True, highlight=False).print(message)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def register(app: typer.Typer) -> None:
    app.add_typer(tv_app, name="tv")


@tv_app.command("info", epilog="Example: chorus tv info runs/birds/taskvector --tensors")
def info_command(
    path: Path = typer.Argument(..., help="task-vector directory"),
    as_json: bool = typer.Option(False, "--json", help="print the manifest as JSON"),
    tensors: bool = typer.Option(False, "--tensors", help="also list every delta tensor with its norm"),
) -> None:
    """Show a task vector's manifest (validated, every sha256 checked)."""
    from ..taskvec import TaskVector
    from ..taskvec.naming import is_buffer
    from ..taskvec.stats import parameter_count, tensor_stats

    vector = TaskVector.load(path)
    manifest = vector.manifest
    console = Console()
    if as_json:
        console.print_json(json.dumps(manifest.model_dump(mode="json"), sort_keys=True))
        return
    table = Table(title=f"task vector {path}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    training = manifest.training
    rows = [
        ("group", manifest.group or "-"), ("base encoder", manifest.base.encoder),
        ("base fingerprint", manifest.base.fingerprint), ("sample rate", f"{manifest.sample_rate} Hz"),
        ("labels", f"{len(manifest.labels)}: {', '.join(manifest.labels[:8])}"
                   f"{' ...' if len(manifest.labels) > 8 else ''}"),
        ("heads", str(len(manifest.heads))),
        ("tensors", f"{len(manifest.tensors)} ({parameter_count(vector):,} parameter entries)"),
        ("buffers", ", ".join(n for n in manifest.tensors if is_buffer(n))
         or "none (BatchNorm statistics frozen)"),
        ("storage", f"{manifest.storage.dtype}, density {manifest.storage.density:g}"),
        ("training", "-" if training is None else
         f"{training.method}, {training.epochs} epochs, best {training.best_epoch}, {training.hours:.3f} h"),
        ("metrics", "-" if training is None else
         ", ".join(f"{k} {v:.4f}" for k, v in sorted(training.metrics.items()))),
        ("gram statistics", "-" if manifest.gram is None else
         f"{manifest.gram.clips} clips, on {manifest.gram.computed_on}"),
        ("class statistics", "-" if manifest.classstats is None else
         f"{manifest.classstats.clips} clips, on {manifest.classstats.computed_on[:12]}"),
        ("derivation", manifest.derivation or "-"), ("creator", manifest.creator or "-"),
        ("license", manifest.license or "-"), ("chorus version", manifest.chorus_version),
    ]
    for field, value in rows:
        table.add_row(field, value)
    console.print(table)
    if tensors:
        detail = Table(title="deltas")
        for column in ("tensor", "entries", "L2 norm", "max |δ|", "non-zero"):
            detail.add_column(column)
        for row in tensor_stats(vector):
            detail.add_row(row.name, f"{row.numel:,}", _fmt(row.norm), _fmt(row.max_abs), f"{row.nonzero:.1%}")
        console.print(detail)


@tv_app.command("apply", epilog="Example: chorus tv apply tv-birds/ tv-frogs/ --coef 0.5 --coef 0.5 -o model/")
def apply_command(
    vectors: list[Path] = typer.Argument(..., help="task-vector directories"),
    out: Path = opt.out(help="chorus model directory to write"),
    coef: Optional[list[float]] = typer.Option(None, "--coef", help="one coefficient per vector (default 1)"),
    encoder: Optional[str] = opt.encoder(None, "base encoder (default: the one named in the vectors)"),
    source: Optional[str] = BASE_SOURCE,
    random_init: bool = typer.Option(False, "--random-init", help="random base weights (seeded)"),
    seed: int = opt.seed(help="seed of --random-init weights"),
) -> None:
    """Add task vectors to their base encoder and write a chorus model with their heads."""
    from ..encoders import load_encoder
    from ..taskvec import TaskVector, compose_model

    loaded = [TaskVector.load(path) for path in vectors]
    name = encoder or loaded[0].manifest.base.encoder
    base = load_encoder(name, source=source, pretrained=not random_init, seed=seed)
    model = compose_model(base, loaded, coef or None)
    model.save_pretrained(out)
    _say(f"wrote {out}: {base.name} + {len(loaded)} task vector(s), {len(model.heads)} head(s), "
                    f"{len(model.labels)} labels")


@tv_app.command("diff", epilog="Example: chorus tv diff tv-birds/ tv-frogs/ --top 10")
def diff_command(
    a: Path = typer.Argument(..., help="first task-vector directory"),
    b: Path = typer.Argument(..., help="second task-vector directory"),
    top: int = typer.Option(20, help="tensors to list, least similar first"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON"),
) -> None:
    """Compare two task vectors of the same base: cosine and norms per tensor and overall, labels."""
    from dataclasses import asdict

    from ..taskvec import TaskVector
    from ..taskvec.stats import compare

    result = compare(TaskVector.load(a), TaskVector.load(b))
    console = Console()
    if as_json:
        console.print_json(json.dumps(asdict(result)))
        return
    _say(f"overall cosine {_fmt(result.cosine)}; ‖a‖ {_fmt(result.norm_a)}, ‖b‖ {_fmt(result.norm_b)}")
    _say(f"labels: {len(result.labels_shared)} shared, {len(result.labels_only_in_a)} only in a, "
                  f"{len(result.labels_only_in_b)} only in b")
    if result.only_in_a or result.only_in_b:
        _say(f"tensors only in a: {', '.join(result.only_in_a) or '-'}; only in b: "
                      f"{', '.join(result.only_in_b) or '-'}")
    table = Table(title="per tensor")
    for column in ("tensor", "cosine", "‖a‖", "‖b‖", "‖a−b‖/max"):
        table.add_column(column)
    ordered = sorted(result.tensors, key=lambda r: (r.cosine is not None, r.cosine if r.cosine is not None else 0.0))
    for row in ordered[:top]:
        table.add_row(row.name, _fmt(row.cosine), _fmt(row.norm_a), _fmt(row.norm_b), _fmt(row.relative_difference))
    console.print(table)


@tv_app.command("convert", epilog="Example: chorus tv convert tv-birds/ tv-birds-small/ --dtype bfloat16 --density 0.2")
def convert_command(
    source: Path = typer.Argument(..., help="task-vector directory to read"),
    out: Path = typer.Argument(..., help="task-vector directory to write"),
    dtype: str = typer.Option("float32", help="float32, bfloat16 or float16"),
    density: float = typer.Option(1.0, help="keep this fraction of each parameter delta (top magnitudes)"),
) -> None:
    """Re-store a task vector in another dtype or sparsity."""
    from ..taskvec import TaskVector

    TaskVector.load(source).save(out, dtype=dtype, density=density)
    _say(f"wrote {out} ({dtype}, density {density:g})")


@tv_app.command("push", epilog="Example: chorus tv push runs/birds/taskvector user/birds-tau --private")
def push_command(
    path: Path = typer.Argument(..., help="task-vector directory"),
    repo_id: str = typer.Argument(..., help="Hugging Face model repo, e.g. user/birds-tau"),
    private: bool = typer.Option(False, "--private", help="create the repo private"),
    message: Optional[str] = typer.Option(None, help="commit message"),
) -> None:
    """Upload a task vector with a generated model card (token: HF_TOKEN or `hf auth login`)."""
    from ..taskvec.hub import push

    push(path, repo_id, private=private or None, commit_message=message)
    _say(f"pushed {path} to {repo_id}")


@tv_app.command("pull", epilog="Example: chorus tv pull user/birds-tau -o tv-birds/")
def pull_command(
    repo_id: str = typer.Argument(..., help="Hugging Face model repo"),
    out: Path = opt.out(help="directory to download into"),
    revision: Optional[str] = typer.Option(None, help="branch, tag or commit"),
) -> None:
    """Download a task vector and check it (manifest, formats, every sha256)."""
    from ..taskvec.hub import pull

    vector = pull(repo_id, out, revision=revision)
    _say(f"pulled {repo_id} into {out}: {vector.manifest.group or 'task vector'} for "
                    f"{vector.manifest.base.encoder}, {len(vector.manifest.labels)} labels")


@tv_app.command("gram", epilog="Example: chorus tv gram runs/birds/taskvector -d data/manifest.csv --split train")
def gram_command(
    path: Path = typer.Argument(..., help="task-vector directory (gram.safetensors is written into it)"),
    data: Path = PARTY_DATA,
    split: str = PARTY_SPLIT,
    on: Optional[Path] = typer.Option(None, "--on", help="compute on this model directory's encoder (e.g. a "
                                                          "merged model, for regmean_pp) instead of base + vector"),
    source: Optional[str] = BASE_SOURCE,
    random_init: bool = typer.Option(False, "--random-init", help="random base weights (seeded)"),
    seed: int = opt.seed(help="seed of --random-init weights"),
    batch_size: int = EQUAL_LENGTH_BATCH,
) -> None:
    """Store Gram statistics (XᵀX of every linear/conv layer's inputs) with a task vector, for RegMean."""
    from ..encoders import load_encoder
    from ..model import ClassifierModel
    from ..progress import tqdm_progress
    from ..taskvec import TaskVector
    from ..taskvec.gram_pass import vector_gram

    base = other = None
    if on is not None:
        other = ClassifierModel.from_pretrained(on).encoder
    else:
        name = TaskVector.load(path, verify=False).manifest.base.encoder
        base = load_encoder(name, source=source, pretrained=not random_init, seed=seed)
    result = vector_gram(path, data, split, base=base, on=other,
                         batch_size=batch_size, progress=tqdm_progress)
    for failure in result.failures:
        _say(f"skipped {failure.error}")
    on_what = "the fine-tuned encoder" if result.computed_on == "finetuned" else f"encoder {result.computed_on[:12]}"
    _say(f"wrote {result.path}: {len(result.stats.grams)} layers, {result.stats.clips} clips, on {on_what}")


@tv_app.command("stats", epilog="Example: chorus tv stats runs/birds/taskvector -d data/manifest.csv")
def stats_command(
    path: Path = typer.Argument(..., help="task-vector directory (classstats.safetensors is written into it)"),
    data: Path = PARTY_DATA,
    split: str = PARTY_SPLIT,
    on: Optional[Path] = typer.Option(None, "--on", help="compute on this model directory's encoder (e.g. a merged "
                                                          "model, for an lda head on it) instead of the base encoder"),
    source: Optional[str] = BASE_SOURCE,
    batch_size: int = EQUAL_LENGTH_BATCH,
) -> None:
    """Store class statistics (per-class counts and means, within-class scatter of the pooled
    features the heads read) with a task vector, for `chorus merge --calibration lda`."""
    from ..encoders import load_encoder
    from ..model import ClassifierModel
    from ..progress import tqdm_progress
    from ..taskvec import TaskVector
    from ..taskvec.classstats import vector_class_stats

    base = other = None
    if on is not None:
        other = ClassifierModel.from_pretrained(on).encoder
    else:
        base = load_encoder(TaskVector.load(path, verify=False).manifest.base.encoder, source=source)
    result = vector_class_stats(path, data, split, base=base, on=other,
                                batch_size=batch_size, progress=tqdm_progress)
    for failure in result.failures:
        _say(f"skipped {failure.error}")
    stats = result.stats
    _say(f"wrote {result.path}: {len(stats.labels)} classes, {stats.clips} clips, {stats.means.shape[1]} features "
         f"of layer {stats.layer} ({stats.pooling}), on encoder {stats.computed_on[:12]}")
