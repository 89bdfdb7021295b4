"""Figures of an analysis (matplotlib, Agg), each built from the ``analysis.json`` content.

Every function takes the analysis dict and returns ``(name, figure)`` pairs or one figure;
layers always appear in network order (the order of ``analysis["geometry"]["layers"]``).
"""

from __future__ import annotations

import math

from ..report import annotate_cells, outside_legend, pyplot


def _grid(values) -> list[list[float]]:
    return [[math.nan if v is None else v for v in row] for row in values]


def _pairs(names: list[str]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]


def cosine_heatmap(analysis: dict):
    """Whole-model cosine between task vectors (N × N, values written in the cells)."""
    plt = pyplot()
    geometry = analysis["geometry"]
    names, cosine = geometry["vectors"], _grid(geometry["whole_model"]["cosine"])
    figure, axis = plt.subplots(figsize=(1.2 + 0.9 * len(names), 0.9 + 0.8 * len(names)))
    shown = axis.imshow(cosine, cmap="RdBu_r", vmin=-1, vmax=1)
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    annotate_cells(axis, shown, cosine, digits=3)
    figure.colorbar(shown, ax=axis, label="cosine")
    axis.set_title("task-vector cosine (whole model)")
    return figure


def layer_heatmaps(analysis: dict):
    """Per layer (rows, network order) × pair (columns): cosine, sign-conflict rate and
    top-k Jaccard, side by side."""
    plt = pyplot()
    geometry = analysis["geometry"]
    names, layers = geometry["vectors"], geometry["layers"]
    pairs = _pairs(names) or [(0, 0)]
    labels = [f"{names[i]}·{names[j]}" for i, j in pairs]
    panels = (("cosine", "cosine", "RdBu_r"), ("sign_conflicts", "sign-conflict rate", "viridis"),
              ("topk_jaccard", f"top-{geometry['topk']:.0%} Jaccard", "viridis"))
    # One panel under the other, each as wide as the page: cells of ~0.7 x 0.4 inch keep
    # the written values legible however many pairs there are.
    width, panel = 2.5 + 0.7 * len(pairs), 1.2 + 0.4 * len(layers)
    figure, axes = plt.subplots(3, 1, figsize=(width, 3 * panel), sharex=True, constrained_layout=True)
    for axis, (key, title, cmap) in zip(axes, panels):
        grid = [[math.nan if layer[key][i][j] is None else layer[key][i][j] for i, j in pairs] for layer in layers]
        finite = [abs(v) for row in grid for v in row if not math.isnan(v)]
        reach = max(finite, default=1.0) or 1.0
        low, high = (-reach, reach) if key == "cosine" else (0.0, reach)  # colours span the values found
        shown = axis.imshow(grid, cmap=cmap, vmin=low, vmax=high, aspect="auto")
        if len(grid) * len(pairs) <= 200:
            annotate_cells(axis, shown, grid)
        axis.set_yticks(range(len(layers)), [layer["layer"] for layer in layers], fontsize=8)
        axis.set_title(title, fontsize=10)
        figure.colorbar(shown, ax=axis, fraction=0.04, pad=0.01)
    axes[-1].set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    figure.suptitle("per layer, in network order (blank: a vector is zero there)", fontsize=10)
    return figure


def norms_and_ranks(analysis: dict):
    """Per-layer task-vector norm and mean effective rank of the layer's matrices."""
    plt = pyplot()
    geometry = analysis["geometry"]
    names, layers = geometry["vectors"], geometry["layers"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
    positions = range(len(layers))
    for index, name in enumerate(names):
        left.plot(positions, [layer["norms"][index] for layer in layers], marker="o", label=name)
        right.plot(positions, [math.nan if layer["effective_rank"][index] is None else layer["effective_rank"][index]
                               for layer in layers], marker="o", label=name)
    for axis, title in ((left, "‖τ‖ per layer"), (right, "effective rank (mean over the layer's matrices)")):
        axis.set_xticks(list(positions), [layer["layer"] for layer in layers], rotation=60, ha="right", fontsize=7)
        axis.set_title(title, fontsize=9)
    outside_legend(right)
    return figure


def _panel_columns(rows: int, columns: int, column_inches: float, height_inches: float, **shared):
    """A figure of ``rows`` x ``columns`` panels, ``column_inches`` wide each; axes always 2-D."""
    return pyplot().subplots(rows, columns, figsize=(column_inches * columns + 1, height_inches), squeeze=False,
                             **shared)


def lmc_curves(analysis: dict):
    """Loss and accuracy along θ0 + α·τa + (1−α)·τb for every pair (one column per pair)."""
    curves = analysis["connectivity"]
    figure, axes = _panel_columns(2, len(curves), 2.6, 5, sharex=True)
    for column, curve in enumerate(curves):
        a, b = curve["pair"]
        for row, key in enumerate(("loss", "accuracy")):
            axis = axes[row][column]
            axis.plot(curve["alpha"], curve[key], marker="o", markersize=3)
            axis.plot([0, 1], [curve[key][0], curve[key][-1]], linestyle=":", color="grey")
            if column == 0:
                axis.set_ylabel(key)
        axes[0][column].set_title(f"{b} (α=0) → {a} (α=1)\nbarrier {curve['loss_barrier']:.3f}", fontsize=8)
        axes[1][column].set_xlabel("α")
    figure.suptitle("linear mode connectivity on each pair's validation clips (dotted: the chord)", fontsize=9, y=1.02)
    return figure


def spectral_scatter(analysis: dict):
    """Task-vector cosine against the JS distance of the groups' spectra, one dot per pair;
    and the groups' spectra."""
    plt = pyplot()
    spectral = analysis["spectra"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    figure.subplots_adjust(wspace=0.35)
    for pair in spectral["pairs"]:
        if pair["cosine"] is not None:
            left.scatter(pair["js_distance"], pair["cosine"], color="C0")
            left.annotate("·".join(pair["pair"]), (pair["js_distance"], pair["cosine"]), fontsize=7)
    rho = spectral["spearman"]["rho"]
    left.set_xlabel("Jensen–Shannon distance of normalised log-mel spectra")
    left.set_ylabel("task-vector cosine")
    left.set_title(f"Spearman ρ = {'–' if rho is None else f'{rho:.2f}'}", fontsize=9)
    centres = spectral.get("band_hz")
    for group, spectrum in spectral["spectra"].items():
        right.plot(centres or range(len(spectrum)), spectrum, label=group)
    if centres:
        right.set_xscale("log")
        right.set_xlabel("frequency (Hz, mel band centres)")
    else:  # an analysis.json written before the band centres were recorded
        right.set_xlabel("mel band")
    right.set_ylabel("share of the log-mel level")
    outside_legend(right)
    return figure


def negation_curves(analysis: dict):
    """Accuracy of every group's own head against λ in θ0 − λ·τg, one panel per negated group."""
    records = analysis["negation"]
    figure, axes = _panel_columns(1, len(records), 3, 3, sharey=True)
    for axis, record in zip(axes[0], records):
        for group, values in record["accuracy"].items():
            negated = group == record["negated"]
            axis.plot(record["lambda"], values, marker="o", linewidth=2.5 if negated else 1,
                      label=f"{group} (negated)" if negated else group)
        axis.set_title(f"θ0 − λ·τ[{record['negated']}]", fontsize=9)
        axis.set_xlabel("λ")
    axes[0][0].set_ylabel("accuracy")
    outside_legend(axes[0][-1])
    return figure


FIGURES = {"cosine": cosine_heatmap, "layers": layer_heatmaps, "norms": norms_and_ranks, "lmc": lmc_curves,
           "spectra": spectral_scatter, "negation": negation_curves}
"""File stem -> figure builder; a builder runs only when its section is in the analysis."""
NEEDS = {"lmc": "connectivity", "spectra": "spectra", "negation": "negation"}
