"""The CLI's one vocabulary: options every command spells the same way (``-e/--encoder``,
``-d/--data``, ``-o/--out``, ``--device``, ``--batch-size``, ``--seed``, ``--split``), and
comma-separated values (``--noise-snr 0,-5,-10``).

Factories take the command's own default and help; the names, short flags and checks
live only here.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

ALL_CLIPS = "all"
"""The ``--split`` value meaning every clip (the old spelling ``''`` is accepted too)."""


def encoder(default: Any = "sfx-cnn", help: str = "registered encoder name (chorus encoders)") -> Any:
    return typer.Option(default, "--encoder", "-e", help=help)


def data(default: Any = ..., help: str = "manifest CSV/TSV of the clips") -> Any:
    return typer.Option(default, "--data", "-d", help=help)


def out(default: Any = ..., help: str = "output folder") -> Any:
    return typer.Option(default, "--out", "-o", help=help)


def batch_size(default: int = 8, help: str = "clips per encoder forward pass") -> Any:
    return typer.Option(default, "--batch-size", min=1, help=help)


def seed(default: int = 0, help: str = "random seed: the same seed gives the same bytes") -> Any:
    return typer.Option(default, "--seed", help=help)


def lr(default: Any, help: str) -> Any:
    return typer.Option(default, "--lr", help=help)


def split_value(value: Optional[str]) -> Optional[str]:
    """``all`` (or the old ``''``) -> None: every clip."""
    return None if value in (None, "", ALL_CLIPS) else value


def split(default: Optional[str], help: str = "manifest split to use") -> Any:
    return typer.Option(default, "--split", callback=split_value, help=f"{help} ('{ALL_CLIPS}': every clip)")


ENCODER = encoder()
SOURCE = typer.Option(None, "--source", help="hub id or local path overriding the encoder's weights")
BATCH_SIZE = batch_size()


def _checked_device(name: str) -> str:
    """The ``--device`` value, checked before any work (``auto`` resolved)."""
    from ..devices import resolve_device

    return str(resolve_device(name))


DEVICE = typer.Option("auto", "--device", callback=_checked_device,
                      help="torch device: auto (CUDA when available, else cpu), cpu, cuda, cuda:N")
FEATURE_DTYPES = ("float32", "float16")


def check_dtype(dtype: str) -> str:
    if dtype not in FEATURE_DTYPES:
        raise typer.BadParameter(f"choose {' or '.join(FEATURE_DTYPES)}", param_hint="--dtype")
    return dtype


def float_list(text: str | None, option: str) -> tuple[float, ...]:
    """``"0,-5,-10"`` -> ``(0.0, -5.0, -10.0)``; empty or None -> ``()``."""
    if not text:
        return ()
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}", param_hint=option) from None


ENGINE = typer.Option("local", "--engine", help="local (process pool sized to the machine) or ray (Ray Data)")
WORKERS = typer.Option(None, "--workers", min=1,
                       help="processes (local) or model replicas (ray); default one per core, 1 = in-process")
ADDRESS = typer.Option(None, "--address", help="Ray cluster address (--engine ray); default a local Ray")


def check_engine(engine: str) -> str:
    if engine not in ("local", "ray"):
        raise typer.BadParameter("choose local or ray", param_hint="--engine")
    return engine
