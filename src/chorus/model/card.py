"""The model card (``README.md``) of a model folder, generated from its ``config.json``.

YAML front matter as the Hugging Face Hub reads it (``library_name: chorus``, ``license``,
``tags``, ``base_model``), then the base encoder and its licence, the labels with the
training clips per label when the heads carry calibration, known metrics and how to load.
The licence is the base weights' (from the encoder registry) joined with the licences of
what was added to them (``config.licenses``: task vectors, fine-tuning).
"""

from __future__ import annotations

from typing import Iterable

import yaml

from ..hub import HUB_ID
from .schema import ModelConfig

MAX_LABEL_ROWS = 500
"""Label rows a card lists (BirdNET has 6,522); the rest are counted."""


def weights_license(encoder: str) -> str | None:
    """The licence id of a registered encoder's weights (None: unknown or random weights)."""
    from ..encoders import EncoderNotFound, get_spec

    try:
        return get_spec(encoder).license
    except EncoderNotFound:
        return None


def base_model(encoder: str) -> str | None:
    """The Hub id of a registered encoder's weights, when it has one."""
    from ..encoders import EncoderNotFound, get_spec

    try:
        source = get_spec(encoder).default_source
    except EncoderNotFound:
        return None
    return source if source and HUB_ID.match(source) else None


def license_front(licenses: Iterable[str | None]) -> dict[str, str]:
    """Front-matter licence keys: one distinct licence as ``license``; several as
    ``license: other`` with ``license_name`` listing them all; none: nothing."""
    distinct = sorted({name for name in licenses if name})
    if not distinct:
        return {}
    if len(distinct) == 1:
        return {"license": distinct[0]}
    return {"license": "other", "license_name": " AND ".join(distinct)}


def front_matter(front: dict) -> list[str]:
    """``---``-fenced YAML lines of ``front`` (keys sorted)."""
    return ["---", yaml.safe_dump(front, sort_keys=True).strip(), "---", ""]


def model_card(config: ModelConfig, repo_id: str | None = None) -> str:
    """Markdown of the model card of ``config``; ``repo_id`` names where it is loaded from."""
    encoder = config.encoder.name
    base_license = weights_license(encoder)
    groups = [head.group for head in config.heads if head.group]
    front: dict = {"library_name": "chorus", "pipeline_tag": "audio-classification",
                   "tags": ["chorus", "audio", "audio-classification", encoder] + groups,
                   **license_front([base_license, *config.licenses])}
    if base_model(encoder):
        front["base_model"] = base_model(encoder)
    settings = config.classifier
    labels = [label for head in config.heads for label in head.labels]
    lines = front_matter(front) + [
        f"# {' + '.join(groups) or 'chorus classifier'}: audio classifier on `{encoder}`", "",
        f"A chorus {settings.task} classifier: the `{encoder}` encoder, its layer `{settings.layer}` "
        f"{settings.pooling}-pooled over time, and {len(config.heads)} linear head(s) over {len(labels)} labels.", "",
        "| | |", "|---|---|",
        f"| base encoder | `{encoder}` |",
        f"| base weights licence | {base_license or 'not given'} |",
        f"| other licences | {', '.join(config.licenses) or 'none'} |",
        f"| sample rate | {config.encoder.sample_rate} Hz |",
        f"| clip length | {f'{settings.clip_seconds:g} s' if settings.clip_seconds else 'whole clips'} |",
        f"| chorus version | {config.chorus_version} |", ""]
    lines += _labels(config) + _metrics(config.metrics)
    where = repo_id or "MODEL"
    lines += ["## Use", "", "```python", "import chorus", "",
              f'model = chorus.load_model("{where}")  # a folder or a Hub id; every file is validated',
              'table = model.predict(["recording.wav"])  # pandas DataFrame: path, begin, end, label, score',
              "```", "", "```bash", f"chorus predict {where} recording.wav --out predictions --format csv", "```", "",
              "## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| `{file}` | `{digest}` |" for file, digest in sorted(config.files.items())]
    return "\n".join(lines) + "\n"


def _labels(config: ModelConfig) -> list[str]:
    """The labels table, with training and validation clips where calibration records them."""
    lines = ["## Labels", "", "| head | label | training clips | validation clips |", "|---|---|---|---|"]
    rows = []
    for index, head in enumerate(config.heads):
        calibration = head.calibration
        for position, label in enumerate(head.labels):
            train = calibration.train_counts[position] if calibration else ""
            valid = calibration.valid_counts[position] if calibration else ""
            rows.append(f"| {head.group or index} | {label} | {train} | {valid} |")
    lines += rows[:MAX_LABEL_ROWS]
    if len(rows) > MAX_LABEL_ROWS:
        lines.append(f"| ... | {len(rows) - MAX_LABEL_ROWS} more labels (all in `config.json`) | | |")
    known = any(head.calibration for head in config.heads)
    note = ("Clip counts come from each head's own training data (no audio is included)." if known
            else "No training data summary is recorded for these heads.")
    return lines + ["", note, ""]


def _metrics(metrics: dict[str, float | None]) -> list[str]:
    if not metrics:
        return []
    return (["## Metrics", "", "Measured when the model was written (valid_: its validation split, test_: its test split).",
             "", "| metric | value |", "|---|---|"]
            + [f"| {name} | {'n/a' if value is None or value != value else f'{value:.4f}'} |"
               for name, value in sorted(metrics.items())] + [""])
