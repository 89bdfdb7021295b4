"""Computing a task vector's Gram statistics from a manifest of the party's clips
(``chorus tv gram``): rebuild the fine-tuned encoder (base + τ) — or take another encoder,
e.g. a merged model for RegMean++ — run the clips through it, store ``gram.safetensors``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..progress import ProgressFactory
from .errors import TaskVectorError
from .gram import GramStatistics, compute_gram, write_gram


@dataclass
class GramResult:
    """What :func:`vector_gram` stored: the statistics, the file, and its ``computed_on``."""

    stats: GramStatistics
    path: Path
    computed_on: str
    failures: list


def vector_gram(vector_dir: str | Path, data: str | Path, split: str | None = "train", *,
                base: nn.Module | None = None, on: nn.Module | None = None, batch_size: int = 8,
                progress: ProgressFactory | None = None) -> GramResult:
    """Gram statistics of the clips of ``split`` (None: every clip) in manifest ``data``,
    stored in the task vector at ``vector_dir``.

    The inputs are those of the fine-tuned encoder ``base + τ`` (``base`` defaults to the
    registered encoder the vector names, pretrained weights), or of ``on`` when given
    (``computed_on`` is then ``on``'s fingerprint).
    """
    from ..data.manifest import read_manifest
    from ..encoders import load_encoder
    from ..data.clipset import load_eval_audio
    from .apply import apply
    from .fingerprint import base_fingerprint
    from .vector import TaskVector

    vector = TaskVector.load(vector_dir)
    if on is None:
        base = base if base is not None else load_encoder(vector.manifest.base.encoder)
        encoder, computed_on = apply(base, [vector]), "finetuned"
    else:
        encoder, computed_on = on, base_fingerprint(on.state_dict())
    manifest = read_manifest(data)
    clips = manifest.select(split=split).clips if split else manifest.clips
    if not clips:
        raise TaskVectorError(f"{data}: no clips{f' in split {split!r}' if split else ''} to compute Grams on")
    audio = load_eval_audio(clips, encoder.sample_rate, progress, "loading clips for Gram statistics")
    stats = compute_gram(encoder, audio.waveforms, batch_size)
    return GramResult(stats, write_gram(vector_dir, stats, computed_on), computed_on, audio.failures)
