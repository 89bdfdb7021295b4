"""``report.html`` + ``loss.png`` of one distillation run."""

from __future__ import annotations

from pathlib import Path

from ..fileio import atomic_open
from ..report.html import figure_png, heading, image, paragraph, table, write_page


def loss_figure(history: list[dict]):
    """Total loss per epoch, and per head the cosine similarity to its target."""
    from ..report import pyplot

    plt = pyplot()

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [entry["epoch"] for entry in history]
    left.plot(epochs, [entry["loss"] for entry in history], marker="o")
    left.set(xlabel="epoch", ylabel="loss (L1 − log σ(cos))", title="distillation loss")
    for key in (k for k in history[0] if k.endswith(" cosine")):
        right.plot(epochs, [entry[key] for entry in history], marker=".", label=key.removesuffix(" cosine"))
    right.set(xlabel="epoch", ylabel="mean cosine similarity", title="per head")
    figure.tight_layout()
    from ..report import outside_legend

    outside_legend(right)
    return figure


def write_distill_report(record: dict, out_dir: str | Path) -> Path:
    """Write ``loss.png`` and ``report.html`` into ``out_dir``; return the page's path."""
    out_dir = Path(out_dir)
    import matplotlib.pyplot as plt

    figure = loss_figure(record["history"])
    png = figure_png(figure)
    plt.close(figure)
    with atomic_open(out_dir / "loss.png", "wb") as handle:
        handle.write(png)
    student = record["student"]
    rows = [[t["teacher"], layer, dim, rate] for t in record["targets"]
            for layer, dim, rate in zip(t["layers"], t["dims"], t["frame_rates"])]
    parts = [
        paragraph(f"Student {student['name']} ({student['parameters']:,} parameters, θ0 = {student['init']} seed "
                  f"{student['seed']}), layer {student['layer']} → teachers {', '.join(record['teachers'])}, "
                  f"{record['clips']} clips, {record['config']['epochs']} epochs. Loss: {record['loss']}."),
        heading("Teacher layers predicted"),
        table(["teacher", "layer", "features", "frame rate (Hz)"], rows),
        heading("Loss"),
        image(png, "distillation loss per epoch"),
        paragraph(f"Task vector τ = θ_student − θ0 in {record['task_vector']['dir']}/ "
                  f"(base fingerprint {record['task_vector']['base_fingerprint'][:16]}…, "
                  f"{'with' if record['task_vector']['head'] else 'without'} a probe head)."),
    ]
    path = out_dir / "report.html"
    write_page(path, "chorus distill", parts)
    return path
