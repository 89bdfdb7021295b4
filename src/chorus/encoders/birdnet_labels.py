"""BirdNET's species labels: one ``Scientific name_Common name`` per line."""

from __future__ import annotations

from pathlib import Path

from .errors import EncoderLoadError


def read_labels(path: str | Path, expected: int | None = None) -> list[str]:
    """The labels of ``path`` in order (``Scientific_Common``), ``expected`` of them if given."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EncoderLoadError(f"{path}: cannot read BirdNET labels: {exc}") from None
    labels = [line.strip() for line in lines if line.strip()]
    bad = next((i for i, label in enumerate(labels) if "_" not in label), None)
    if bad is not None:
        raise EncoderLoadError(f"{path}: label {bad + 1} {labels[bad]!r} is not 'Scientific name_Common name'")
    if expected is not None and len(labels) != expected:
        raise EncoderLoadError(f"{path}: {len(labels)} labels, the model has {expected} classes")
    return labels


def split_label(label: str) -> tuple[str, str]:
    """``'Turdus merula_Eurasian Blackbird'`` -> ``('Turdus merula', 'Eurasian Blackbird')``."""
    scientific, _, common = label.partition("_")
    return scientific, common
