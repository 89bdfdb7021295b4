"""Which merge method on audio task vectors: a composition benchmark with 8 tasks.

Synthetic calls (``chorus.data.synth``) of four taxon groups (birds, anurans, insects,
mammals), ``--species`` species each (default 8, at 0 dB SNR, nominal jitter), split into
two tasks per taxon (``birds-a`` holds the odd-numbered species, ``birds-b`` the even
ones): 8 tasks with disjoint labels, the two tasks of a taxon sharing its frequency band.
``sfx-cnn`` is fine-tuned on each task alone and on all 8 jointly with the demo's own
fine-tuning (LP-FT, :func:`chorus.demos.composition.finetune_group_vector`; default 6
epochs at encoder LR 5e-4). Each task's Gram statistics (for ``regmean``) are computed
on its fine-tuned encoder over its own training clips (:func:`chorus.taskvec.gram.compute_gram`,
as ``chorus tv gram``); ``regmean_pp`` gets one round: every task's Grams recomputed on
RegMean's merged encoder at RegMean's chosen λ. For every method, λ, the head calibration
and the group-gate strength are chosen on the validation clips only
(:func:`chorus.merging.sweep_lambda`, grid 0.25, 0.5, 1, 1.5, 2 × the method's default λ),
and the composed classifier is scored on the test clips:

- task-aware accuracy (the headline, the protocol of the task-arithmetic papers): within
  the clip's task, i.e. how much the merged encoder still serves each task's own head;
- absolute accuracy over all species (the composed classifier as used);
- normalized accuracy, both readings: per task, merged ÷ that task's individually
  fine-tuned model on the same test clips, averaged over tasks.

Reference rows: the individual models, the joint model and the base encoder with the
composed heads (λ = 0). Not run: ``slerp`` (two vectors only), ``negation`` (forgets).

Norm mismatch (seed ``--norm-seed`` only): the first task is fine-tuned again 4× longer
(4× the epochs) and merged with the other 7 with and without ``equalize_norms``
(:func:`chorus.taskvec.merge.norms.equalizing_scales`, as ``chorus merge --equalize-norms``).
The fine-tune keeps its best-validation epoch, so 4× the epochs need not give a 4× norm:
the table prints the norm ratio before and after.

Usage: ``python benchmarks/merge_quality.py [--seeds 0,1,2] [--out DIR] [--methods ...]``
(a seed's record is reused from ``--out`` when present, so seeds can run as parallel
processes and one last call prints the table); prints per-seed progress, then the norm
table and the mean ± std table over seeds, ranked by task-aware accuracy (last).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from chorus.data.clipset import load_eval_audio  # noqa: E402
from chorus.data.manifest import Clip  # noqa: E402
from chorus.data.synth import generate_dataset, make_config  # noqa: E402
from chorus.demos.composition import CompositionDemoSettings, finetune_group_vector  # noqa: E402
from chorus.evaluate import evaluate_logits, layer_features  # noqa: E402
from chorus.evaluate.scoring import evaluate_model  # noqa: E402
from chorus.merging import sweep_lambda  # noqa: E402
from chorus.merging.sweep import CALIBRATIONS, individual_scores, normalized  # noqa: E402
from chorus.model import ClassifierModel  # noqa: E402
from chorus.taskvec.merge import compose_heads, plan_merge  # noqa: E402
from chorus.taskvec.merge.compose import base_state, build_encoder_from, resolve_base  # noqa: E402
from chorus.taskvec.merge.norms import equalizing_scales, norm_ratio  # noqa: E402
from chorus.taskvec.merge.stream import apply_directions  # noqa: E402
from chorus.taskvec import TaskVector  # noqa: E402
from chorus.taskvec.fingerprint import base_fingerprint  # noqa: E402
from chorus.taskvec.gram import compute_gram, write_gram  # noqa: E402

torch.set_num_threads(1)
TAXA = ("birds", "anurans", "insects", "mammals")
METHODS = {
    "regmean": ("regmean", {}),  # first: its Gram passes are the likeliest to fail
    "mean": ("mean", {}), "task_arithmetic": ("task_arithmetic", {}), "ties": ("ties", {}),
    "dare": ("dare", {}), "dare_ties": ("dare", {"ties": True}), "breadcrumbs": ("breadcrumbs", {}),
    "della": ("della", {}), "tsv": ("tsv", {}), "iso_c": ("iso_c", {}), "iso_cts": ("iso_cts", {}),
    "model_stock": ("model_stock", {}), "karcher": ("karcher", {}), "wudi": ("wudi", {})}
NORM_METHODS = ("mean", "task_arithmetic", "ties")
REFERENCE_ROWS = ("individual", "joint", "base (λ=0)")


def dataset(out: Path, seed: int, args):
    """The generated manifest with each clip's group set to its task (taxon-a / taxon-b)."""
    config = make_config(groups=TAXA, species=args.species, clips_per_species=args.clips, seconds=args.seconds,
                         sample_rate=44_100, snr_db=args.snr, jitter=args.jitter, seed=seed)
    manifest = generate_dataset(out / "data", config)
    clips = []
    for clip in manifest.clips:
        taxon, number = clip.labels[0].rsplit("/sp", 1)
        clips.append(Clip(clip.path, clip.labels, clip.split, f"{taxon}-{'ab'[(int(number) - 1) % 2]}"))
    return dataclasses.replace(manifest, clips=clips)


def test_scores(plan, sweep, state, test, references) -> dict:
    """The composed classifier at the sweep's choice (λ, calibration, gate) on ``test``."""
    heads = compose_heads(plan.vectors, sweep.calibration, sweep.gate)
    encoder = build_encoder_from(plan, apply_directions(state, plan.directions(), sweep.best))
    groups = list(references)
    part = test.of_groups(groups)
    result = evaluate_logits(heads.logits(layer_features(encoder, heads.settings, part)),
                             [c.labels for c in part.clips], [c.group for c in part.clips], heads.labels, "multiclass")
    per_group = result["per_group"]
    scores = {g: per_group[g]["accuracy"] for g in groups}
    within = {g: per_group[g]["accuracy_within_group"] for g in groups}
    return {"lambda": sweep.best, "calibration": sweep.calibration,
            "gate": sweep.gate.strength if sweep.gate is not None else 0.0,
            "acc": result["overall"]["accuracy"], "acc_within": sum(within.values()) / len(within),
            "norm": normalized(scores, references), "norm_within": normalized(within, references)}


def with_grams(vectors, directories, manifest, rate: int, encoders=None, computed_on: str = "finetuned") -> list:
    """``vectors`` reloaded with Gram statistics of each task's own training clips
    (:func:`chorus.taskvec.gram.compute_gram`, as ``chorus tv gram``): on each task's
    fine-tuned encoder (``encoders`` None; read from the run's ``model``), or on the given
    encoders (RegMean++: one merged encoder, ``computed_on`` its fingerprint)."""
    loaded = []
    for vector, directory in zip(vectors, directories):
        if vector.manifest.gram is None or vector.manifest.gram.computed_on != computed_on:
            group = vector.manifest.group
            clips = load_eval_audio(manifest.select(split="train", group=group).clips, rate)
            encoder = encoders or ClassifierModel.from_pretrained(directory.parent / "model").encoder.eval()
            with torch.no_grad():
                write_gram(directory, compute_gram(encoder, clips.waveforms), computed_on)
        loaded.append(TaskVector.load(directory))
    return loaded


def run_merge(vectors, method, params, state, valid, test, args, seed, references, equalize=False,
              factors=None) -> dict:
    """Sweep on ``valid``, score on ``test``; ``references``: the individual models' scores
    on (valid, test), computed once per set of vectors; ``factors``: the λ grid over the
    method's default (default ``--lambda-factors``)."""
    plan = plan_merge(vectors, method, params, seed=seed)
    if equalize:
        plan.scales = equalizing_scales(plan.measure_norms())
    directions = plan.directions()  # computed once for the sweep and the test
    plan.directions = lambda progress=None: directions
    grid = [round(plan.default_lambda() * f, 6) for f in factors or args.lambda_factors]
    sweep = sweep_lambda(plan, CALIBRATIONS["multiclass"], state, valid, grid, references[0])
    row = test_scores(plan, sweep, state, test, references[1])
    row["valid_norm"] = max(r["normalized"] for r in sweep.rows)
    return row


def regmean_pp_vectors(vectors, runs: Path, groups: list[str], state, lam: float, manifest, rate: int) -> list:
    """Copies of the vectors whose Grams are recomputed on RegMean's merged encoder at its
    validation-chosen λ (one round of RegMean++; each task on its own training clips)."""
    plan = plan_merge(vectors, "regmean")
    merged = build_encoder_from(plan, apply_directions(state, plan.directions(), lam))
    directories = []
    for group in groups:
        directory = runs / group / "taskvector-pp"
        if not directory.is_dir():
            shutil.copytree(runs / group / "taskvector", directory)
        directories.append(directory)
    copies = [TaskVector.load(d) for d in directories]
    return with_grams(copies, directories, manifest, rate, merged, base_fingerprint(merged.state_dict()))


def report(seed: int, name: str, row: dict, clock: float) -> dict:
    """Print one merge's result and record its seconds since ``clock``."""
    row["seconds"] = round(time.perf_counter() - clock, 1)
    print(f"seed {seed} {name:16s} λ={row['lambda']:<6g} {row['calibration']:11s} gate={row['gate']:<4g} "
          f"acc {row['acc']:.3f} within {row['acc_within']:.3f} norm {row['norm']:.3f} / "
          f"{row['norm_within']:.3f} ({row['seconds']:.0f} s)", flush=True)
    return row


def run_seed(seed: int, args) -> dict:
    out = Path(args.out) / f"seed{seed}"
    record_path = out / "merge_quality.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    started = time.perf_counter()
    manifest = dataset(out, seed, args)
    groups = sorted({clip.group for clip in manifest.clips})
    settings = CompositionDemoSettings(epochs=args.epochs, lr=args.lr, seconds=args.seconds, seed=seed,
                                       clips_per_species=max(args.clips, 6))
    runs = out / "finetune"
    vectors = [finetune_group_vector(manifest, runs / group, settings, [group], None) for group in groups]
    finetune_group_vector(manifest, runs / "joint", settings, groups, None)
    trained = time.perf_counter()
    rate = 44_100
    vectors = with_grams(vectors, [runs / g / "taskvector" for g in groups], manifest, rate)
    valid = load_eval_audio(manifest.select(split="valid").clips, rate)
    test = load_eval_audio(manifest.select(split="test").clips, rate)
    plan = plan_merge(vectors, "mean")
    state = base_state(resolve_base(vectors), plan.fingerprint)
    references = individual_scores(plan, state, test)
    both = (individual_scores(plan, state, valid), references)
    joint = evaluate_model(ClassifierModel.from_pretrained(runs / "joint" / "model"), test)
    joint_groups = {g: joint["per_group"][g]["accuracy"] for g in groups}
    joint_within = {g: joint["per_group"][g]["accuracy_within_group"] for g in groups}
    record = {"seed": seed, "groups": groups, "individual": references,
              "train_clips": {g: len(manifest.select(split="train", group=g)) for g in groups},
              "valid_clips": len(valid), "test_clips": len(test),
              "rows": {"individual": {"acc": None, "acc_within": sum(references.values()) / len(references),
                                      "norm": None, "norm_within": 1.0},
                       "joint": {"acc": joint["overall"]["accuracy"],
                                 "acc_within": sum(joint_within.values()) / len(joint_within),
                                 "norm": normalized(joint_groups, references),
                                 "norm_within": normalized(joint_within, references)}}}
    record["rows"]["base (λ=0)"] = run_merge(vectors, "mean", {}, state, valid, test, args, seed, both, factors=[0.0])
    for name in args.methods:
        method, params = METHODS[name]
        clock = time.perf_counter()
        record["rows"][name] = report(seed, name, run_merge(vectors, method, params, state, valid, test, args, seed,
                                                            both), clock)
        if name != "regmean":
            continue
        clock = time.perf_counter()  # one RegMean++ round: Grams on RegMean's merge, at its chosen λ
        pp_vectors = regmean_pp_vectors(vectors, runs, groups, state, record["rows"]["regmean"]["lambda"], manifest,
                                        rate)
        record["rows"]["regmean_pp"] = report(seed, "regmean_pp", run_merge(pp_vectors, "regmean_pp", {}, state, valid,
                                                                            test, args, seed, both), clock)
    if seed == args.norm_seed:
        long_settings = settings.model_copy(update={"epochs": 4 * args.epochs})
        long = finetune_group_vector(manifest, runs / f"{groups[0]}-x4", long_settings, [groups[0]], None)
        mixed = [long, *vectors[1:]]
        norms = plan_merge(mixed, "mean").measure_norms()
        record["norm_mismatch"] = {"long_task": groups[0], "norms": norms, "ratio": norm_ratio(norms),
                                   "ratio_before": norm_ratio(plan_merge(vectors, "mean").measure_norms()), "rows": {}}
        mixed_plan = plan_merge(mixed, "mean")
        mixed_refs = (individual_scores(mixed_plan, state, valid), individual_scores(mixed_plan, state, test))
        for name in NORM_METHODS:
            method, params = METHODS[name]
            for equalize in (False, True):
                row = run_merge(mixed, method, params, state, valid, test, args, seed, mixed_refs, equalize)
                record["norm_mismatch"]["rows"][f"{name}{' +equalize' if equalize else ''}"] = row
                print(f"seed {seed} 4x {name:16s} equalize={equalize!s:5s} λ={row['lambda']:<6g} acc {row['acc']:.3f} "
                      f"norm {row['norm']:.3f} / {row['norm_within']:.3f}", flush=True)
    record["timings_s"] = {"finetune": round(trained - started, 1), "total": round(time.perf_counter() - started, 1)}
    record_path.write_text(json.dumps(record, indent=1))
    return record


def fmt(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="/tmp/chorus-merge-quality")
    parser.add_argument("--species", type=int, default=8, help="per taxon (half per task)")
    parser.add_argument("--clips", type=int, default=10, help="per species")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--snr", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lambda-factors", type=lambda s: [float(x) for x in s.split(",")], default=[0.25, 0.5, 1, 1.5, 2])
    parser.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS),
                        help="comma-separated (default: all; regmean_pp runs with regmean)")
    parser.add_argument("--norm-seed", type=int, default=0, help="seed of the 4×-longer experiment (-1: none)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    records = [run_seed(seed, args) for seed in seeds]
    first = records[0]
    print(f"\n{len(first['groups'])} tasks ({', '.join(first['groups'])}), sfx-cnn, {args.species} species per taxon, "
          f"{args.clips} clips per species, {args.seconds:g} s, SNR {args.snr:g} dB, {args.epochs} epochs, "
          f"lr {args.lr:g}; test clips per seed: {[r['test_clips'] for r in records]}; "
          f"valid clips: {[r['valid_clips'] for r in records]}; seconds per seed: "
          f"{[r['timings_s']['total'] for r in records]}")
    for record in records:
        if "norm_mismatch" in record:
            nm = record["norm_mismatch"]
            print(f"\nnorm mismatch, seed {record['seed']}: {nm['long_task']} trained 4x longer; norm ratio "
                  f"{nm['ratio_before']:.2f} -> {nm['ratio']:.2f}")
            print("| merge | λ | all species | within task | normalized (all / within) |\n|---|---|---|---|---|")
            for name, row in nm["rows"].items():
                print(f"| {name} | {row['lambda']:g} | {row['acc']:.3f} | {row['acc_within']:.3f} | "
                      f"{row['norm']:.3f} / {row['norm_within']:.3f} |")
    print(f"\nseeds {', '.join(map(str, seeds))}: mean ± std on the test clips (λ, calibration, gate chosen on "
          "validation); rank by mean task-aware (within-task) accuracy")
    print("| rank | model | within task | normalized, within task | all species | normalized, all species "
          "| λ per seed |")
    print("|---|---|---|---|---|---|---|")
    means = {name: statistics.mean(r["rows"][name]["acc_within"] for r in records) for name in first["rows"]}
    merges = sorted((n for n in means if n not in REFERENCE_ROWS), key=lambda n: -means[n])
    for name in [*REFERENCE_ROWS, *merges]:
        rows = [r["rows"][name] for r in records]
        lams = "/".join(f"{row['lambda']:g}" for row in rows) if "lambda" in rows[0] else "–"
        rank = merges.index(name) + 1 if name in merges else "–"
        print(f"| {rank} | {name} | {fmt([r['acc_within'] for r in rows])} | {fmt([r['norm_within'] for r in rows])} | "
              f"{fmt([r['acc'] for r in rows])} | {fmt([r['norm'] for r in rows])} | {lams} |")

if __name__ == "__main__":
    main()
