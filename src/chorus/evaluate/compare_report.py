"""Rendering a comparison (:func:`chorus.evaluate.compare.compare_models`): table rows for
the terminal and HTML, the per-group and gap-vs-size figures, and the files on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..fileio import write_json
from ..report import outside_legend, pyplot


NOT_COVERED = "not covered"
"""The cell of a group whose labels a model does not have (never scored as 0)."""


def group_cell(row: dict, group: str, scores: dict | None = None):
    """``row``'s score on ``group`` (from ``scores``, default ``row["groups"]``), or
    :data:`NOT_COVERED` when the model has none of the group's labels."""
    scores = row["groups"] if scores is None else scores
    if group in scores:
        return scores[group]
    if group in row.get("not_covered", ()) or row["kind"] == "individual":
        return NOT_COVERED
    return None


def table_rows(comparison: dict) -> tuple[list[str], list[list]]:
    """Headers and rows of the summary table (scores as floats, missing as None, groups
    the model does not cover as :data:`NOT_COVERED`)."""
    groups = comparison["groups"]
    transfer = comparison.get("transfer_clips") is not None
    headers = ["model", "kind", "overall", *groups, "normalized", "normalized within group",
               *(["new region"] if transfer else [])]
    rows = []
    for row in comparison["rows"]:
        overall = row["overall"][row["metric"]]
        cells = [row["name"], row["kind"], overall, *(group_cell(row, g) for g in groups), row["normalized"],
                 row["normalized_within"]]
        if transfer:
            cells.append(row["transfer"]["overall"])
        rows.append(cells)
    return headers, rows


def group_figure(comparison: dict):
    """Grouped bars: the score per group of every non-individual model; the individual
    model's score as a black tick."""
    import numpy as np

    plt = pyplot()

    groups = comparison["groups"]
    models = [row for row in comparison["rows"] if row["kind"] != "individual"]
    figure, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(groups) + 0.35 * len(models)), 4.2))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(groups))
    for index, row in enumerate(models):
        values = [row["groups"].get(g, np.nan) for g in groups]
        ax.bar(x - 0.4 + width * (index + 0.5), values, width, label=row["name"])
    for position, group in enumerate(groups):
        if group in comparison["references"]:
            ax.hlines(comparison["references"][group], position - 0.42, position + 0.42, colors="black", linewidth=2)
    ax.set_xticks(x, groups)
    ax.set_ylabel(models[0]["metric"] if models else "score")
    ax.set_ylim(0, 1.05)
    ax.set_title("score per group (black: the group's individually fine-tuned model)", fontsize=10)
    outside_legend(ax)
    plt.close(figure)
    return figure


MARKERS = "osD^v<>pPX*h"
LINESTYLES = ("-", "--", "-.", ":")


def gap_figure(comparison: dict):
    """Merged − joint score per group against the group's training clips, one line per merge.

    Series that coincide are told apart by marker and line style, each nudged sideways by
    a few percent of the (log) x position so that identical gaps stay visible.
    """
    plt = pyplot()

    sizes = comparison["group_sizes"]
    series = list(comparison["gaps"].items())
    figure, ax = plt.subplots(figsize=(7.6, 4.2))
    for index, (name, gaps) in enumerate(series):
        points = sorted((sizes[g], gap, g) for g, gap in gaps.items() if g in sizes)
        if points:
            nudge = 1.0 + 0.025 * (index - (len(series) - 1) / 2)
            ax.plot([p[0] * nudge for p in points], [p[1] for p in points], marker=MARKERS[index % len(MARKERS)],
                    linestyle=LINESTYLES[index % len(LINESTYLES)], markersize=5, alpha=0.85, label=name)
    for group, size in sizes.items():
        ax.annotate(group, (size, 0), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training clips in the group (log)")
    ax.set_ylabel("merged − joint")
    ax.set_title("asymmetric gap: who loses when merging instead of training jointly", fontsize=10)
    outside_legend(ax)
    plt.close(figure)
    return figure


def summary_parts(comparison: dict) -> list[str]:
    """HTML fragments: the summary table, with a note on groups some models do not cover."""
    from ..report import heading, paragraph, table

    headers, rows = table_rows(comparison)
    metric = comparison["rows"][0]["metric"] if comparison["rows"] else "score"
    parts = [heading("Summary"),
             paragraph(f"{metric} on {comparison['clips']} test clips over the union of every group's labels; "
                       "individual models on their own group and labels only. normalized = mean over groups of "
                       "score ÷ the group's individual model; 'within group' scores each clip among its own "
                       "group's labels only (the task-aware protocol of the merging literature)."),
             table(headers, rows)]
    partial = [row["name"] for row in comparison["rows"] if row.get("not_covered")]
    if partial:
        parts.append(paragraph(f"{', '.join(partial)}: '{NOT_COVERED}' marks groups whose labels the model does not "
                               "have; its normalized accuracy averages the groups it covers, and its overall score "
                               "counts the other groups' clips as errors.", note=True))
    return parts


def detail_parts(comparison: dict) -> list[str]:
    """HTML fragments: the within-group table and both figures."""
    from ..report import figure_png, heading, image, paragraph, table

    parts = []
    within = [row for row in comparison["rows"] if "within_group" in row]
    if within:
        groups = comparison["groups"]
        parts += [heading("Accuracy when the group is known"),
                  paragraph("Top-1 among the labels of the clip's own group only (task-aware evaluation)."),
                  table(["model", *groups], [[row["name"], *(group_cell(row, g, row["within_group"]) for g in groups)]
                                             for row in within])]
    parts += [heading("Per group"), image(figure_png(group_figure(comparison)), "score per group and model")]
    if comparison["gaps"] and comparison["group_sizes"]:
        sizes = comparison["group_sizes"]
        rows = {row["name"]: row for row in comparison["rows"]}
        parts += [heading("Gap to joint training against group size"),
                  image(figure_png(gap_figure(comparison)), "merged minus joint score against group size"),
                  table(["model", *[f"{g} ({sizes.get(g, '?')})" for g in comparison["groups"]]],
                        [[name, *(group_cell(rows[name], g, gaps) for g in comparison["groups"])]
                         for name, gaps in comparison["gaps"].items()],
                        caption="merged − joint per group (training clips in brackets)")]
    return parts


def write_comparison(comparison: dict, out_dir: str | Path, title: str = "chorus compare",
                     lead: Sequence[str] = (), middle: Sequence[str] = (), tail: Sequence[str] = (),
                     page: str = "compare.html") -> Path:
    """``compare.json`` and the self-contained HTML page ``page`` under ``out_dir``:
    ``lead``, the summary, ``middle``, the comparison's details, ``tail`` (summary first)."""
    from ..report import write_page

    out_dir = Path(out_dir)
    write_json(out_dir / "compare.json", comparison)
    write_page(out_dir / page, title, [*lead, *summary_parts(comparison), *middle, *detail_parts(comparison), *tail])
    return out_dir / page
