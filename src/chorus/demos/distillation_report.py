"""``report.html`` + ``tradeoff.png`` of the real distillation run (:mod:`chorus.demos.distillation`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import atomic_open
from ..report.html import figure_png, heading, image, paragraph, table, write_page


def tradeoff_figure(record: dict):
    """Left: probe accuracy on calls vs notes for every (λ1, λ2), the students, θ0 and the
    ensemble. Right: the worse of the two retentions over the grid."""
    from ..report import annotate_cells, pyplot

    plt = pyplot()

    rows, scores = record["sweep"], record["scores"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    x = [r["scores"]["calls"]["accuracy"] for r in rows]
    y = [r["scores"]["notes"]["accuracy"] for r in rows]
    ratio = [r["lambdas"][0] / max(1e-9, sum(r["lambdas"])) if sum(r["lambdas"]) else 0.5 for r in rows]
    points = left.scatter(x, y, c=ratio, cmap="coolwarm", s=[20 + 40 * sum(r["lambdas"]) for r in rows], alpha=0.8)
    figure.colorbar(points, ax=left, label="λ1 / (λ1 + λ2)")
    line = sorted((r for r in rows if abs(sum(r["lambdas"]) - 1.0) < 1e-9), key=lambda r: r["lambdas"][0])
    left.plot([r["scores"]["calls"]["accuracy"] for r in line], [r["scores"]["notes"]["accuracy"] for r in line],
              color="grey", lw=1, label="λ1 + λ2 = 1")
    for name, marker in (("θ0", "s"), ("student-sfx", "^"), ("student-pitch", "v"), ("ensemble", "*")):
        left.scatter(scores[name]["calls"]["accuracy"], scores[name]["notes"]["accuracy"], marker=marker, s=120,
                     color="black", label=name, zorder=3)
    best = record["best"]
    left.scatter(best["scores"]["calls"]["accuracy"], best["scores"]["notes"]["accuracy"], s=220, facecolors="none",
                 edgecolors="green", linewidths=2, label=f"kept (λ1, λ2) = {tuple(best['lambdas'])}", zorder=4)
    left.set(xlabel="animal-call species accuracy (probe)", ylabel="pitch-class accuracy (probe)",
             title="θ0 + λ1 τ_sfx + λ2 τ_pitch")
    left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.15), ncol=3, frameon=False)
    values = sorted({r["lambdas"][0] for r in rows})
    grid = np.full((len(values), len(values)), np.nan)
    for r in rows:
        grid[values.index(r["lambdas"][1]), values.index(r["lambdas"][0])] = r["worst"]
    shown = right.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=max(1.0, float(np.nanmax(grid))))
    annotate_cells(right, shown, grid.tolist(), fontsize=7)
    right.set_xticks(range(len(values)), [f"{v:g}" for v in values])
    right.set_yticks(range(len(values)), [f"{v:g}" for v in values])
    right.set(xlabel="λ1 (τ_sfx)", ylabel="λ2 (τ_pitch)", title="worse retention of own-domain accuracy")
    figure.colorbar(shown, ax=right)
    figure.tight_layout()
    return figure


def write_demo_report(record: dict, out_dir: str | Path) -> Path:
    """Write ``tradeoff.png`` and ``report.html`` into ``out_dir``; return the page's path."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    figure = tradeoff_figure(record)
    png = figure_png(figure)
    plt.close(figure)
    with atomic_open(out_dir / "tradeoff.png", "wb") as handle:
        handle.write(png)
    scores, best = record["scores"], record["best"]
    model_rows = [[name, s["calls"]["accuracy"], s["calls"]["layer"], s["notes"]["accuracy"], s["notes"]["layer"]]
                  for name, s in scores.items()]
    for name, own in record["teacher_scores"].items():
        cells = {domain: [own[domain]["accuracy"], own[domain]["layer"]] if domain in own else ["–", "–"]
                 for domain in ("calls", "notes")}
        model_rows.append([f"teacher {name}", *cells["calls"], *cells["notes"]])
    sweep_rows = [[f"{r['lambdas'][0]:g}", f"{r['lambdas'][1]:g}", r["scores"]["calls"]["accuracy"],
                   r["scores"]["notes"]["accuracy"], r["kept"]["calls"], r["kept"]["notes"]] for r in record["sweep"]]
    settings = record["settings"]
    verdict = "passes" if record["acceptance"]["passed"] else "FAILS"
    parts = [
        paragraph(f"Teachers {settings['sfx_teacher']} (animal calls) and {settings['pitch_teacher']} (hop "
                  f"{settings['crepe_hop']} samples; pitch "
                  f"classes of FluidSynth notes) distilled into {record['student']['name']} "
                  f"({record['student']['parameters']:,} parameters), every student from the same θ0 (seed "
                  f"{record['student']['seed']}). Distillation clips: {record['distill_clips']}; "
                  f"{settings['epochs']} epochs (ensemble: half, same steps). Scores: test accuracy of the best "
                  "frozen-feature linear probe (layer chosen on valid)."),
        heading("Trade-off"),
        image(png, "trade-off between the two domains"),
        paragraph(f"Kept point (λ1, λ2) = ({best['lambdas'][0]:g}, {best['lambdas'][1]:g}): calls "
                  f"{best['scores']['calls']['accuracy']:.3f} ({100 * best['kept']['calls']:.1f} % of student-sfx), "
                  f"notes {best['scores']['notes']['accuracy']:.3f} ({100 * best['kept']['notes']:.1f} % of "
                  f"student-pitch): {verdict} the ≥ 90 % criterion."),
        heading("θ0, students, the ensemble reference and the teachers"),
        table(["model", "calls accuracy", "layer", "notes accuracy", "layer"], model_rows),
        heading("λ sweep"),
        table(["λ1 (sfx)", "λ2 (pitch)", "calls", "notes", "kept calls", "kept notes"], sweep_rows),
        paragraph(f"chorus merge (task arithmetic) wrote the kept point to {record['merged']['dir']}/ with both probe "
                  f"heads ({len(record['merged']['labels'])} classes); its encoder differs from θ0 + λ1 τ1 + λ2 τ2 "
                  f"by at most {record['merged']['max_abs_difference_to_task_arithmetic']:.2g}.", note=True),
    ]
    path = out_dir / "report.html"
    write_page(path, "chorus distill: distilled task vectors and their interpolation", parts)
    return path
