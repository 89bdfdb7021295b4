"""The demo-specific parts of ``report.html``: headline, data, λ sweeps, timings."""

from __future__ import annotations


def headline(record: dict) -> str:
    """One sentence with the numbers the demo exists to show."""
    s = record["summary"]
    if s["best_merge"] is None:
        return "No merge was run."
    verdict = "beats" if s["best_beats_probe"] else "does not beat"
    return (f"Best merge: {s['best_merge']} (λ = {s['lambda'][s['best_merge']]:g}) keeps a normalized accuracy of "
            f"{s['best_normalized_accuracy']:.3f} and reaches {s['best_accuracy']:.3f} accuracy over the species of "
            f"all {len(record['settings']['species'])} groups; it {verdict} the frozen-base "
            f"probe ({s['probe_accuracy']:.3f}).")


def report_parts(record: dict) -> list[str]:
    """HTML fragments placed above the comparison."""
    from .report import heading, paragraph, table

    settings = record["settings"]
    parts = [paragraph(headline(record)),
             paragraph("Each taxon group's institution fine-tunes the encoder on its own clips and shares only the "
                       "task vector; the composer merges the vectors and concatenates the groups' heads, calibrated "
                       f"({settings['calibration']}: z-scored logits for multi-class heads), into one classifier "
                       "over every species. The joint model is what pooling all data would give.", note=True),
             heading("Data and training"),
             table(["group", "species", "training clips"],
                   [[g, settings["species"][g], record["data"]["train_clips"][g]] for g in settings["species"]],
                   caption=f"{settings['seconds']:g} s clips in the {settings['region']} region; "
                           f"{record['data']['test_clips']} test clips, {record['data']['transfer_clips']} "
                           f"from the {settings['new_region']} region"),
             paragraph(f"Encoder {settings['encoder']}, {settings['epochs']} epochs (frozen: "
                       f"{', '.join(settings['freeze']) or 'nothing'}); probes: logistic regression (C = "
                       f"{settings['probe_c']:g}) on the frozen encoder's pooled features; seed {settings['seed']}.",
                       note=True),
             heading("Choosing λ on validation clips")]
    for name, sweep in record["sweeps"].items():
        groups = list(sweep["references"])
        rows = [[row["lambda"], *(row["scores"][g] for g in groups), row["normalized"]] for row in sweep["rows"]]
        parts.append(table(["λ", *groups, "normalized"], rows,
                           caption=f"{name}: chosen λ = {sweep['best_lambda']:g}"))
    parts += [heading("Time"), table(["stage", "seconds"], [[k, v] for k, v in record["timings_s"].items()], digits=1)]
    return parts
