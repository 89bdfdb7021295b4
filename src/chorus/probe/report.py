"""Files of a probe run: ``probe.json`` (everything), ``layers.png`` (metric vs layer per
pooling and condition), ``ablations.png`` (random-init / pitch / noise curves, when asked)
and ``report.html`` (tables and both figures, self-contained). :func:`summary_tables` are
the tables the CLI prints and the report starts with: the best probes (per fold under
cross-validation) with their 95 % intervals, the refit probes, and the mean ± std over folds."""

from __future__ import annotations

from pathlib import Path

from ..fileio import atomic_open, write_json
from ..report import figure_png, heading, image, outside_legend, paragraph, table, write_page

LAYERWISE = ("mean", "max", "mean+max", "attention")


def setting_text(slot: dict) -> str:
    """A slot's chosen setting as text: ``C=1`` (L-BFGS probes) or ``lr=0.01`` (Adam)."""
    return f"C={slot['C']:g}" if "C" in slot else f"lr={slot['learning_rate']:g}"


def _figure(columns: int):
    """A figure of ``columns`` panels, with room on the right for legends off the data."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * columns + 1.6, 3.4), layout="constrained")
    return figure, figure.subplots(1, columns, squeeze=False)[0]


def layers_figure(report: dict):
    """One panel per condition: test metric of each layer's chosen probe, per pooling
    (valid dotted); the layer-weighted sum as a horizontal line."""
    conditions = report["conditions"]
    figure, axes = _figure(len(conditions))
    names = report["layers"]
    for ax, (condition, result) in zip(axes, conditions.items()):
        for index, (pooling, entry) in enumerate(result["poolings"].items()):
            colour = f"C{index}"
            if pooling in LAYERWISE:
                ax.plot(range(len(names)), [s["test"][report["metric"]] for s in entry["slots"]], "o-",
                        color=colour, label=f"{pooling} (test)")
                ax.plot(range(len(names)), [s["valid"][report["metric"]] for s in entry["slots"]], ":",
                        color=colour, label=f"{pooling} (valid)")
            else:
                ax.axhline(entry["best"]["test"][report["metric"]], color=colour, linestyle="--", label=f"{pooling} (test)")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(condition)
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(report["metric"])
    outside_legend(axes[-1])
    return figure


def _has_ablations(report: dict) -> bool:
    return len(report["conditions"]) > 1 or bool(report["noise_snrs"])


def ablations_figure(report: dict):
    """Left: mean-pooling test metric per layer for every condition. Right (with noise):
    the best probe's test metric against the SNR of the noise mixed into test clips."""
    metric, names = report["metric"], report["layers"]
    figure, axes = _figure(2 if report["noise_snrs"] else 1)
    for index, (condition, result) in enumerate(report["conditions"].items()):
        first = next(iter(result["poolings"]))
        slots = result["poolings"][first]["slots"]
        if first in LAYERWISE:
            axes[0].plot(range(len(names)), [s["test"][metric] for s in slots], "o-", color=f"C{index}",
                         label=f"{condition} ({first})")
    axes[0].set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    axes[0].set_title("conditions")
    axes[0].set_ylabel(metric)
    outside_legend(axes[0])
    if report["noise_snrs"]:
        snrs = sorted(report["noise_snrs"], reverse=True)
        ticks = ["clean"] + [f"{s:g} dB" for s in snrs]
        for index, (condition, result) in enumerate(report["conditions"].items()):
            for style, (pooling, entry) in zip(("o-", "s--", "^:"), result["poolings"].items()):
                values = [entry["best"]["test"][metric]] + [result["noise"][f"{s:g}"][pooling]["best"][metric] for s in snrs]
                axes[1].plot(range(len(ticks)), values, style, color=f"C{index}", label=f"{condition} / {pooling}")
        axes[1].set_xticks(range(len(ticks)), ticks)
        axes[1].set_title(f"{report['noise_kind']} noise in test clips")
        outside_legend(axes[1])
    for ax in axes:
        ax.grid(alpha=0.3)
    return figure


def _test_names(report: dict) -> list[str]:
    return sorted(next(iter(next(iter(report["conditions"].values()))["poolings"].values()))["best"]["test"])


def _interval(entry: dict) -> str:
    """``[low, high]`` of an entry's ``ci95`` (empty without one)."""
    low, high = entry.get("ci95") or (None, None)
    return "" if low is None else f"[{low:.3f}, {high:.3f}]"


def _runs(report: dict) -> list[tuple[str, dict]]:
    """(name, result) of every run: each condition, or under cross-validation each
    condition's folds (``condition / fold k``)."""
    return [(name, result) for condition, outcome in report["conditions"].items()
            for name, result in ([(f"{condition} / fold {fold}", run) for fold, run in outcome["folds"].items()]
                                 if "folds" in outcome else [(condition, outcome)])]


def best_rows(report: dict) -> list[list]:
    """Rows of the best-layer table: run (see :func:`_runs`), pooling, layer, setting,
    valid and test metrics, 95 % interval of the primary test metric."""
    metric = report["metric"]
    rows = []
    for run, result in _runs(report):
        for pooling, entry in result["poolings"].items():
            best = entry["best"]
            rows.append([run, pooling, best["layer"], setting_text(best), best["valid"][metric]]
                        + [best["test"][name] for name in sorted(best["test"])] + [_interval(best)])
    return rows


def refit_rows(report: dict) -> list[list]:
    """Rows of the refit table: run, pooling, layer, setting, train clips (train + valid),
    test metrics, 95 % interval of the primary test metric."""
    return [[run, refit["pooling"], refit["layer"], setting_text(refit), refit["train_clips"]]
            + [refit["test"][name] for name in sorted(refit["test"])] + [_interval(refit)]
            for run, result in _runs(report) if (refit := result.get("refit"))]


def fold_rows(report: dict) -> list[list]:
    """Rows of the cross-validation table: condition, probe (pooling or ``refit``), the
    primary test metric's mean ± std over folds and its value per fold."""
    metric = report["metric"]
    rows = []
    for condition, outcome in report["conditions"].items():
        cv = outcome.get("cv")
        probes = {} if cv is None else {**cv["poolings"], **({"refit": cv["refit"]} if "refit" in cv else {})}
        for probe, stats in probes.items():
            rows.append([condition, probe, f"{stats['mean'][metric]:.3f} ± {stats['std'][metric]:.3f}",
                         "  ".join(f"{value:.3f}" for value in stats["per_fold"][metric])])
    return rows


def summary_tables(report: dict) -> list[tuple[str, list[str], list[list]]]:
    """(title, headers, rows) of the summary tables: best probes, refit probes (with
    ``refit``), cross-validation (with ``folds``)."""
    metric, tests = report["metric"], [f"test {name}" for name in _test_names(report)]
    interval = f"test {metric} 95% CI"
    tables = [("best layer chosen on valid", ["condition", "pooling", "layer", "setting", f"valid {metric}"]
               + tests + [interval], best_rows(report))]
    if report.get("refit"):
        tables.append(("chosen probe refit on train + valid", ["condition", "pooling", "layer", "setting",
                                                              "train clips"] + tests + [interval], refit_rows(report)))
    if report.get("folds"):
        tables.append((f"{len(report['folds'])}-fold cross-validation",
                       ["condition", "probe", f"test {metric} mean ± std",
                        "per fold (" + ", ".join(report["folds"]) + ")"], fold_rows(report)))
    return tables


def noise_rows(report: dict) -> list[list]:
    """Rows of the noise table: condition, pooling, best test metric clean then per SNR."""
    metric = report["metric"]
    snrs = sorted(report["noise_snrs"], reverse=True)
    return [[condition, pooling, entry["best"]["test"][metric]]
            + [result["noise"][f"{s:g}"][pooling]["best"][metric] for s in snrs]
            for condition, result in report["conditions"].items()
            for pooling, entry in result["poolings"].items()]


def _protocol_text(report: dict) -> str:
    parts = []
    if report.get("folds"):
        rule = next(iter(report["conditions"].values()))["cv"]["valid_rule"]
        parts.append(f" Cross-validation over folds {', '.join(report['folds'])}: each fold is tested once; {rule}.")
    if report.get("refit"):
        parts.append(" The probe chosen on valid (pooling, layer, setting) is also refit on train + valid and "
                     "tested once.")
    if report.get("bootstrap"):
        parts.append(f" 95 % intervals: percentile bootstrap of the test clips, {report['bootstrap']} resamples "
                     f"within each class.")
    return "".join(parts)


def write_probe_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write the JSON, PNG and HTML files of a probe ``report`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "probe.json", report)
    figures = {"layers": layers_figure(report)}
    if _has_ablations(report):
        figures["ablations"] = ablations_figure(report)
    pngs = {name: figure_png(figure) for name, figure in figures.items()}
    for name, png in pngs.items():
        with atomic_open(out / f"{name}.png", "wb") as handle:
            handle.write(png)
    metric = report["metric"]
    parts = [
        paragraph(f"Encoder {report['encoder']}, {report['task']} task, {len(report['labels'])} classes; "
                  f"clips: " + ", ".join(f"{k} {v}" for k, v in report["clips"].items())
                  + f". Layer and setting (L2 strength C of the linear probes, learning rate of the "
                  f"attention and layer-sum probes) chosen on the validation split by {metric}."
                  + _protocol_text(report)),
    ]
    for title, headers, rows in summary_tables(report):
        parts += [heading(title[0].upper() + title[1:]), table(headers, rows)]
    parts += [heading("Metric against layer"), image(pngs["layers"], "test metric against layer")]
    for condition, result in report["conditions"].items():
        layerwise = [p for p in result["poolings"] if p in LAYERWISE]
        if layerwise:
            rows = [[name] + [result["poolings"][p]["slots"][i]["test"][metric] for p in layerwise]
                    for i, name in enumerate(report["layers"])]
            caption = f"{condition} (mean over folds)" if "folds" in result else condition
            parts.append(table(["layer"] + [f"{p} test {metric}" for p in layerwise], rows, caption=caption))
    if "layer-sum" in report["poolings"]:
        parts.append(paragraph("layer-sum: a learned softmax-weighted sum of the layers' mean-pooled features "
                               "(one linear map per layer when widths differ); its weights are in probe.json.",
                               note=True))
    if "ablations" in pngs:
        parts += [heading("Ablations"), image(pngs["ablations"], "ablation curves")]
    if report["noise_snrs"]:
        snrs = sorted(report["noise_snrs"], reverse=True)
        parts.append(table(["condition", "pooling", "clean"] + [f"{s:g} dB" for s in snrs], noise_rows(report),
                           caption=f"test {metric} with {report['noise_kind']} noise mixed into the test clips"))
    if report["failures"]:
        parts += [heading("Files that could not be read"),
                  table(["path", "error"], [[f["path"], f["error"]] for f in report["failures"]])]
    write_page(out / "report.html", f"chorus probe: {report['encoder']}", parts)
    return {"json": out / "probe.json", "html": out / "report.html", **{n: out / f"{n}.png" for n in pngs}}
