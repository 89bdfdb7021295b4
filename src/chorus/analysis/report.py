"""Writing an analysis: ``analysis.json``, one PNG per figure and ``analysis.html``; and the
HTML fragments other reports (the demo's) embed."""

from __future__ import annotations

import math
from pathlib import Path

from ..fileio import atomic_open, write_json
from . import plots

ANALYSIS_JSON = "analysis.json"
ANALYSIS_HTML = "analysis.html"


def clean(value):
    """``value`` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def figures(analysis: dict) -> dict[str, bytes]:
    """PNG bytes of every figure the analysis has data for, by file stem."""
    from ..report import figure_png

    plt = plots.pyplot()
    pngs = {}
    for stem, build in plots.FIGURES.items():
        if plots.NEEDS.get(stem, "geometry") in analysis:
            figure = build(analysis)
            pngs[stem] = figure_png(figure)
            plt.close(figure)
    return pngs


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def report_parts(analysis: dict, pngs: dict[str, bytes]) -> list[str]:
    """HTML fragments: headline, tables and the embedded figures."""
    from ..report import heading, image, paragraph, table

    summary, geometry = analysis["summary"], analysis["geometry"]
    names = geometry["vectors"]
    low, high = summary["pair_cosine_range"] or (None, None)
    text = (f"Mean off-diagonal cosine between task vectors {_fmt(summary['mean_off_diagonal_cosine'])} (pairs "
            f"{_fmt(low)} to {_fmt(high)}); sign conflicts: {_fmt(summary['mean_pairwise_sign_conflicts'])} "
            f"per pair on average, {_fmt(summary['sign_conflict_rate'])} among entries two or more vectors change.")
    if "connectivity" in analysis:
        negation = summary["negation"]
        text += (f" Largest LMC loss barrier {_fmt(summary['max_loss_barrier'])} (accuracy "
                 f"{_fmt(summary['max_accuracy_barrier'])}); Spearman ρ between spectral JS distance and cosine "
                 f"{_fmt(summary['spearman_rho'])}. Negation at λ = {negation['lambda']:g}: negated group "
                 f"{_fmt(negation['negated_accuracy'][0])}–{_fmt(negation['negated_accuracy'][1])}, others "
                 f"{_fmt(negation['other_accuracy'][0])}–{_fmt(negation['other_accuracy'][1])}.")
    parts = [heading("Task-vector analysis"), paragraph(text),
             table([""] + names, [[name] + row for name, row in zip(names, geometry["whole_model"]["cosine"])],
                   caption="whole-model cosine"), image(pngs["cosine"], "cosine heatmap"),
             paragraph(f"Sign conflicts count entries with |τ| > {geometry['sign_threshold']:g}; top-k masks keep "
                       f"each vector's {geometry['topk']:.0%} largest magnitudes per tensor.", note=True),
             image(pngs["layers"], "per-layer heatmaps"), image(pngs["norms"], "norms and effective ranks")]
    if "connectivity" in analysis:
        parts += [heading("Linear mode connectivity", 3),
                  table(["pair", "clips", "loss barrier", "accuracy barrier", "acc. α=0", "acc. α=1"],
                        [["·".join(c["pair"]), c["clips"], c["loss_barrier"], c["accuracy_barrier"], c["accuracy"][0],
                          c["accuracy"][-1]] for c in analysis["connectivity"]]),
                  image(pngs["lmc"], "LMC curves"), heading("Spectral distance and cosine", 3),
                  table(["pair", "JS distance", "cosine"],
                        [["·".join(p["pair"]), p["js_distance"], p["cosine"]] for p in analysis["spectra"]["pairs"]]),
                  image(pngs["spectra"], "spectral distance scatter"), heading("Negation", 3),
                  image(pngs["negation"], "negation curves")]
    return parts


def write_analysis(analysis: dict, out_dir: str | Path) -> dict[str, bytes]:
    """Write ``analysis`` (as :func:`chorus.analysis.analyze` returns it) into ``out_dir`` as
    ``analysis.json``, ``<figure>.png`` and ``analysis.html``; return the PNGs by stem."""
    from ..report import write_page

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = figures(analysis)
    for stem, png in pngs.items():
        with atomic_open(out_dir / f"{stem}.png", "wb") as handle:
            handle.write(png)
    write_json(out_dir / ANALYSIS_JSON, analysis)
    write_page(out_dir / ANALYSIS_HTML, "chorus analyze: task-vector geometry", report_parts(analysis, pngs))
    return pngs
