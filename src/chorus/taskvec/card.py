"""The Hugging Face model card (README.md) of a task vector, generated from its manifest."""

from __future__ import annotations

from ..model.card import base_model, front_matter, license_front, weights_license
from .manifest import TaskVectorManifest


def model_card(manifest: TaskVectorManifest, repo_id: str | None = None) -> str:
    """Markdown with YAML front matter (library_name chorus, license, tags, base model);
    the licence joins the vector's own with the base weights' (:func:`~chorus.model.card.license_front`)."""
    front: dict = {"library_name": "chorus", "pipeline_tag": "audio-classification",
                   "tags": ["chorus", "task-vector", "audio", manifest.base.encoder]
                   + ([manifest.group] if manifest.group else []),
                   **license_front([weights_license(manifest.base.encoder), manifest.license])}
    if base_model(manifest.base.encoder):
        front["base_model"] = base_model(manifest.base.encoder)
    name = manifest.group or "task vector"
    lines = front_matter(front) + [
             f"# {name}: a chorus task vector for `{manifest.base.encoder}`", "",
             "The weight difference τ = θ_finetuned − θ_base of an audio encoder fine-tuned on "
             f"**{name}**, with its classification head, stored in the chorus task-vector format "
             "(safetensors + `taskvector.json`). No training data is included.", "",
             "| | |", "|---|---|",
             f"| base encoder | `{manifest.base.encoder}` |",
             f"| base fingerprint (sha256) | `{manifest.base.fingerprint}` |",
             f"| sample rate | {manifest.sample_rate} Hz |",
             f"| labels | {len(manifest.labels)} |",
             f"| storage | {manifest.storage.dtype}, density {manifest.storage.density:g} |",
             f"| creator | {manifest.creator or 'not given'} |",
             f"| license | {manifest.license or 'not given'} |",
             f"| base weights licence | {weights_license(manifest.base.encoder) or 'not given'} |",
             f"| chorus version | {manifest.chorus_version} |", ""]
    training = manifest.training
    if training is not None:
        lines += ["## Training", "",
                  f"Method: {training.method}; {training.epochs} epochs (best {training.best_epoch}); "
                  f"{training.hours:.3f} hours of audio; seed {training.seed}.", ""]
        if training.metrics:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {key} | {value:.4f} |" for key, value in sorted(training.metrics.items())]
            lines.append("")
    if manifest.heads:
        lines += ["## Labels", "", "| label | training clips |", "|---|---|"]
        counts = training.clips_per_label if training else {}
        lines += [f"| {label} | {counts.get(label, '')} |" for label in manifest.labels]
        lines.append("")
    where = repo_id or "REPO_ID"
    lines += ["## Use", "", "```bash", f"chorus tv pull {where} --out {name.replace(' ', '-')}",
              f"chorus tv apply {name.replace(' ', '-')} --out model   # base + τ, with the head", "```", "",
              "```python", "from chorus.encoders import load_encoder",
              "from chorus.taskvec import TaskVector, compose_model", "",
              f"vector = TaskVector.load(\"{name.replace(' ', '-')}\")  # checks every sha256",
              f"model = compose_model(load_encoder(\"{manifest.base.encoder}\"), [vector])", "```", "",
              "## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| `{file}` | `{digest}` |" for file, digest in sorted(manifest.files.items())]
    return "\n".join(lines) + "\n"
