"""The demo-specific parts of ``report.html``: headline, data, λ sweeps, the task-vector
analysis, timings."""

from __future__ import annotations


def _number(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def headline(record: dict) -> str:
    """The numbers the demo exists to show, in two sentences."""
    s = record["summary"]
    best = s["best_merge"]
    if best is None:
        return "No merge was run."
    groups = len(record["settings"]["species"])
    probes = "; ".join(f"{name} {_number(s['accuracy'][name])} ({_number(s['accuracy_within_group'][name])})"
                       for name in s.get("best_beats_probes", {}))
    calibration = "raw logits" if s["calibration"][best] == "none" else f"{s['calibration'][best]} calibration"
    return (f"Best merge: {best} (λ = {s['lambda'][best]:g}, {calibration}, group gate "
            f"{s['gate'][best]:g}) keeps a "
            f"normalized accuracy of {_number(s['normalized_accuracy'][best])} over the species of all {groups} groups "
            f"({_number(s['normalized_accuracy_within_group'][best])} within each group) and reaches "
            f"{_number(s['accuracy'][best])} accuracy ({_number(s['accuracy_within_group'][best])} within group). "
            f"Frozen-encoder probes: {probes}; joint training: {_number(s['accuracy'].get('joint'))} "
            f"({_number(s['accuracy_within_group'].get('joint'))}).")


def analysis_line(record: dict) -> str:
    """The analysis' headline numbers next to the seed paper's."""
    s = record["analysis"]["summary"]
    low, high = s["pair_cosine_range"] or (None, None)
    rho = s.get("spearman_rho")
    return (f"Task vectors: mean off-diagonal cosine {_number(s['mean_off_diagonal_cosine'])} (pairs {_number(low)}–"
            f"{_number(high)}; the seed paper reports 0.01–0.09); Spearman ρ between spectral distance and cosine "
            f"{_number(rho)}; largest LMC loss barrier {_number(s.get('max_loss_barrier'))}; sign conflicts "
            f"{_number(s['mean_pairwise_sign_conflicts'])} per pair, {_number(s['sign_conflict_rate'])} among all "
            f"vectors.")


def report_sections(record: dict, analysis_figures: dict[str, bytes]) -> dict[str, list[str]]:
    """HTML fragments around the comparison, by place: ``lead`` (the headline, above the
    summary table), ``middle`` (the task-vector analysis, below it) and ``tail`` (data,
    training, the folded λ sweeps, timings: after the comparison's details).
    ``analysis_figures``: the analysis' PNGs by stem, as :func:`chorus.analysis.write_analysis`
    wrote them."""
    from ..report import folded, heading, paragraph, table

    settings = record["settings"]
    lead = [paragraph(headline(record)),
            paragraph("Each taxon group's institution fine-tunes the encoder on its own clips and shares only the "
                      "task vector; the composer merges the vectors and concatenates the groups' heads, calibrated "
                      "with the statistics each vector carries, into one classifier over every species. The joint "
                      "model is what pooling all data would give; the probes keep the encoder frozen.", note=True)]
    middle = []
    if "analysis" in record:
        from ..analysis.report import report_parts as analysis_parts

        middle = analysis_parts(record["analysis"], analysis_figures)
    tail = [heading("Data and training"),
            table(["group", "species", "training clips"],
                  [[g, settings["species"][g], record["data"]["train_clips"][g]] for g in settings["species"]],
                  caption=f"{settings['seconds']:g} s clips in the {settings['region']} region; "
                          f"{record['data']['test_clips']} test clips, {record['data']['transfer_clips']} "
                          f"from the {settings['new_region']} region"),
            paragraph(f"Encoder {settings['encoder']}: {settings['epochs']} epochs, encoder learning rate "
                      f"{settings['lr']:g}, head {settings['head_lr']:g} (frozen: "
                      f"{', '.join(settings['freeze']) or 'nothing'}), the head initialised by the probe (LP-FT); "
                      f"the probe is that L2 logistic regression on the frozen encoder's pooled features, its "
                      f"penalty chosen on each group's validation clips; seed {settings['seed']}.",
                      note=True),
            heading("Choosing λ and the calibration on validation clips")]
    for name, sweep in record["sweeps"].items():
        rows = [[row["lambda"], row["calibration"], row["gate"], row["normalized"], row["normalized_within"]]
                for row in sweep["rows"]]
        chosen = f"{name}: chosen λ = {sweep['best_lambda']:g}, {sweep['calibration']}, gate {sweep['gate']:g}"
        tail.append(folded(f"{chosen} ({len(rows)} settings tried)",
                           [table(["λ", "calibration", "gate", "normalized", "normalized within group"], rows)]))
    tail += [heading("Time"), table(["stage", "seconds"], [[k, v] for k, v in record["timings_s"].items()], digits=1)]
    return {"lead": lead, "middle": middle, "tail": tail}
