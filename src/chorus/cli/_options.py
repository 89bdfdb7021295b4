"""Options shared by ``chorus embed`` and ``chorus probe``, and comma-separated values
(``--noise-snr 0,-5,-10``)."""

from __future__ import annotations

import typer

ENCODER = typer.Option("sfx-cnn", "--encoder", "-e", help="registered encoder name (chorus encoders)")
SOURCE = typer.Option(None, "--source", help="hub id or local path overriding the encoder's weights")
BATCH_SIZE = typer.Option(8, "--batch-size", min=1, help="clips per encoder forward pass")
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
