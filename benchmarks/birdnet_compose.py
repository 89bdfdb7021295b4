"""Fine-tuned BirdNET classifiers composed with BirdNET's own 6,522-species head.

End to end on the synthetic taxon groups (3 s clips at 48 kHz): one custom classifier per
group (``chorus finetune --encoder birdnet``, full fine-tuning by default), merged with
``chorus merge`` and ``base_head: birdnet`` (λ, calibration and group gate chosen on the
validation split, BirdNET's head calibrated on the same windows). Reports, on the test
split and on a set of varied windows:

1. each custom classifier alone vs the composed model on its group's test clips: accuracy
   over every class of the composed model (custom + 6,522 BirdNET species), over the custom
   classes only (what the merge without BirdNET's head gives: the head-wide calibration and
   the centred gate change nothing among custom classes), within the group, and each
   divided by the classifier alone (normalized accuracy, :mod:`chorus.merging.sweep`);
2. retention of BirdNET's head on >= 200 windows (every group's valid and test clips,
   mixtures of two groups, white and pink noise, silence, very quiet clips): the fraction
   whose top-1 BirdNET species is the same in the composed model (its BirdNET logits
   un-calibrated with the stored mean and std) as in BirdNET, and the mean absolute change
   of BirdNET's confidences (sigmoid of the logit), over all species and over each
   window's original top-1 species;
3. per group, a logistic-regression probe on frozen BirdNET embeddings (penalty chosen on
   validation) vs the fine-tuned classifier, test accuracy.

Runs (synthetic data, fine-tuning runs) are reused from ``--work`` when present.

Run: ``PYTHONPATH=src python benchmarks/birdnet_compose.py --work runs/birdnet-compose [--epochs 5]``
Writes ``<work>/birdnet_compose.json``; prints the tables, and last the mean normalized
accuracy and the retention.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/birdnet_forward.py

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from chorus.data.clipset import load_eval_audio  # noqa: E402
from chorus.data.synth import generate_dataset, make_config  # noqa: E402
from chorus.encoders import load_encoder  # noqa: E402
from chorus.evaluate import layer_features  # noqa: E402
from chorus.evaluate.scoring import model_logits  # noqa: E402
from chorus.merging import run_merge  # noqa: E402
from chorus.model import ClassifierModel  # noqa: E402
from chorus.model.birdnet_head import BIRDNET_SETTINGS, species_labels  # noqa: E402
from chorus.taskvec.merge import parse_recipe  # noqa: E402
from chorus.finetune.config import FinetuneConfig
from chorus.finetune.runner import finetune
from chorus.train.probe_init import probe_head

GROUPS = ("birds", "anurans", "insects", "mammals")
WINDOW = 144_000


def synth(work: Path, species: int, clips: int):
    config = make_config(groups=GROUPS, species=species, clips_per_species=clips, seconds=3.0, sample_rate=48_000,
                         seed=0)
    return generate_dataset(work / "synth", config)


def tune(manifest, work: Path, group: str, args) -> Path:
    out = work / "ft" / group
    if not (out / "taskvector" / "taskvector.json").is_file():
        config = FinetuneConfig(encoder="birdnet", groups=[group], method=args.method, epochs=args.epochs,
                                batch_size=8, seed=0)
        finetune(manifest.source, out, config)
    return out


def accuracy(logits: torch.Tensor, truth: list[int]) -> float:
    return float((logits.argmax(dim=1) == torch.tensor(truth)).float().mean())


def varied_windows(valid, test, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Every valid and test clip, mixtures of two groups, noise, silence, very quiet clips."""
    rng = np.random.default_rng(seed)

    def window(wave: np.ndarray) -> np.ndarray:
        out = np.zeros(WINDOW, dtype=np.float32)
        out[:min(len(wave), WINDOW)] = wave[:WINDOW]
        return out

    waves, kinds = [], []
    for audio in (valid, test):
        for clip, wave in zip(audio.clips, audio.waveforms):
            waves.append(window(wave))
            kinds.append(f"call:{clip.group}")
    clips = list(zip(test.clips, test.waveforms))
    for _ in range(32):
        a, b = rng.choice(len(clips), 2, replace=False)
        if clips[a][0].group == clips[b][0].group:
            continue
        waves.append(0.5 * (window(clips[a][1]) + window(clips[b][1])))
        kinds.append("mixture")
    for i in range(16):
        white = rng.standard_normal(WINDOW) * 10 ** rng.uniform(-3, -0.5)
        waves.append(white.astype(np.float32))
        kinds.append("white noise")
        spectrum = np.fft.rfft(rng.standard_normal(WINDOW))
        pink = np.fft.irfft(spectrum / np.sqrt(np.arange(1, len(spectrum) + 1)), n=WINDOW)
        waves.append((pink / np.abs(pink).max() * 10 ** rng.uniform(-3, -0.5)).astype(np.float32))
        kinds.append("pink noise")
    waves += [np.zeros(WINDOW, dtype=np.float32)] * 4
    kinds += ["silence"] * 4
    for i in range(8):
        waves.append(window(clips[i * 9 % len(clips)][1]) * 1e-3)
        kinds.append("very quiet")
    return torch.from_numpy(np.stack(waves)), kinds


def batched(fn, windows: torch.Tensor, size: int = 16) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([fn(windows[i:i + size]) for i in range(0, len(windows), size)])


def retention_of(record: dict, labels: list[str], birdnet: list[str], ours: torch.Tensor, original: torch.Tensor,
                 kinds: list[str]) -> dict:
    """How much of BirdNET's head survives in the composed model's logits ``ours``."""
    rows = [labels.index(label) for label in birdnet]
    head = record["base_head"]
    recovered = ours[:, rows]  # BirdNET's logits through the merged encoder (calibration undone)
    if record["calibration"] == "zscore":
        recovered = recovered * head["logit_std"] + head["logit_mean"]
    same = (recovered.argmax(1) == original.argmax(1)).float()
    change = (recovered.sigmoid() - original.sigmoid()).abs()
    top = original.argmax(1)
    confident = original.sigmoid().max(1).values >= 0.25
    return {"windows": len(ours), "top1_unchanged": float(same.mean()),
            "mean_abs_confidence_change": float(change.mean()),
            "mean_abs_confidence_change_top1": float(change[torch.arange(len(top)), top].mean()),
            "max_abs_confidence_change": float(change.max()),
            "confident_windows": int(confident.sum()),
            "top1_unchanged_confident": float(same[confident].mean()) if confident.any() else None,
            "top1_unchanged_by_kind": {k: float(same[[i for i, x in enumerate(kinds) if x == k]].mean())
                                       for k in dict.fromkeys(kinds)}}


def custom_scores(labels: list[str], custom: list[str], logits: torch.Tensor, test, alone: dict[str, float]) -> dict:
    """Per group: the composed model's accuracy over all classes, over the custom classes,
    within the group, and each normalized by the classifier alone."""
    out = {}
    custom_rows = [labels.index(label) for label in custom]
    for group in GROUPS:
        rows = test.rows_of_groups([group])
        part = [test.clips[i] for i in rows]
        mine = sorted({c.labels[0] for c in test.clips if c.group == group})
        everything = accuracy(logits[rows], [labels.index(c.labels[0]) for c in part])
        only_custom = accuracy(logits[rows][:, custom_rows], [custom.index(c.labels[0]) for c in part])
        within = accuracy(logits[rows][:, [labels.index(x) for x in mine]], [mine.index(c.labels[0]) for c in part])
        out[group] = {"composed_all": everything, "composed_custom": only_custom, "composed_within": within,
                      "normalized_all": everything / alone[group], "normalized_custom": only_custom / alone[group],
                      "normalized_within": within / alone[group]}
    return out


def mean_of(rows: dict, key: str) -> float:
    return float(np.mean([row[key] for row in rows.values()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--method", default="full", choices=("full", "lora", "head-only"))
    parser.add_argument("--merge", default="task_arithmetic")
    parser.add_argument("--species", type=int, default=6)
    parser.add_argument("--clips-per-species", type=int, default=16)
    parser.add_argument("--lambdas", default="0,0.075,0.15,0.3",
                        help="λ values at which to report the accuracy-retention trade-off (the sweep's calibration "
                             "and gate)")
    parser.add_argument("--sweep-lambdas", default=None, help="the sweep's λ grid (default: the method's)")
    parser.add_argument("--retention", type=float, default=None,
                        help="base_head.retention: least top-1 agreement of BirdNET's head on the validation clips")
    args = parser.parse_args()
    torch.manual_seed(0)
    work = args.work
    manifest = synth(work, args.species, args.clips_per_species)
    runs = {group: tune(manifest, work, group, args) for group in GROUPS}
    vectors = [str(runs[g] / "taskvector") for g in GROUPS]

    recipe = parse_recipe({"method": args.merge, "vectors": vectors,
                           "sweep": {"data": str(manifest.source), "split": "valid",
                                     "lambdas": [float(x) for x in args.sweep_lambdas.split(",")]
                                     if args.sweep_lambdas else None},
                           "base_head": {"kind": "birdnet", "retention": args.retention}})
    record = run_merge(recipe, work / "composed")
    composed = ClassifierModel.from_pretrained(work / "composed")
    base = load_encoder("birdnet")
    birdnet = species_labels(base)
    labels = composed.labels
    custom = [label for entry in composed.head_entries if entry.group != "birdnet" for label in entry.labels]

    test = load_eval_audio(manifest.select(split="test").clips, 48_000)
    valid = load_eval_audio(manifest.select(split="valid").clips, 48_000)
    train = load_eval_audio(manifest.select(split="train").clips, 48_000)
    result = {"merge": {k: record[k] for k in ("method", "lambda", "calibration")},
              "gate": record.get("gate", {}).get("strength", 0.0), "base_head": record["base_head"],
              "fine_tuning": {"method": args.method, "epochs": args.epochs}, "retention_target": args.retention,
              "groups": {}}

    # each custom classifier alone, and a probe on frozen BirdNET embeddings
    frozen = {name: layer_features(base, BIRDNET_SETTINGS.model_copy(update={"task": "multiclass"}), audio)
              for name, audio in (("train", train), ("valid", valid), ("test", test))}
    alone = {}
    for group in GROUPS:
        rows = test.rows_of_groups([group])
        alone_model = ClassifierModel.from_pretrained(runs[group] / "model")
        mine = alone_model.labels
        alone[group] = accuracy(model_logits(alone_model, test.subset(rows)),
                                [mine.index(test.clips[i].labels[0]) for i in rows])
        parts = {n: (a, [i for i, c in enumerate(a.clips) if c.group == group])
                 for n, a in (("train", train), ("valid", valid), ("test", test))}
        target = {n: torch.tensor([mine.index(a.clips[i].labels[0]) for i in r]) for n, (a, r) in parts.items()}
        weight, bias, _ = probe_head(frozen["train"][parts["train"][1]], target["train"],
                                     frozen["valid"][parts["valid"][1]], target["valid"], "multiclass", len(mine))
        probe = accuracy(frozen["test"][parts["test"][1]] @ weight.T + bias, target["test"].tolist())
        result["groups"][group] = {"alone": alone[group], "frozen_probe": probe, "test_clips": len(rows)}

    windows, kinds = varied_windows(valid, test)
    original = batched(lambda w: base.classify(w)[1], windows)

    def measure(model: ClassifierModel, merged: dict) -> tuple[dict, dict]:
        logits = model_logits(model, test)
        ours = batched(lambda w: model(w, torch.full((len(w),), WINDOW)), windows)
        return custom_scores(labels, custom, logits, test, alone), retention_of(merged, labels, birdnet, ours,
                                                                                 original, kinds)

    scores, retention = measure(composed, record)
    for group in GROUPS:
        result["groups"][group].update(scores[group])
    result["retention"] = retention
    curve = []
    for lam in (float(x) for x in args.lambdas.split(",")):
        if lam == record["lambda"]:
            at, kept = scores, retention
        else:
            fixed = {"method": args.merge, "vectors": vectors, "lambda": lam, "calibration": record["calibration"],
                     "base_head": {"data": str(manifest.source), "split": "valid"}}
            if "gate" in record:
                fixed["gate"] = {"file": str(work / "composed" / record["gate"]["file"]),
                                 "strength": record["gate"]["strength"]}
            merged = run_merge(parse_recipe(fixed), work / f"composed-lambda-{lam:g}")
            at, kept = measure(ClassifierModel.from_pretrained(work / f"composed-lambda-{lam:g}"), merged)
        curve.append({"lambda": lam, "normalized_all": mean_of(at, "normalized_all"),
                      "normalized_within": mean_of(at, "normalized_within"), "top1_unchanged": kept["top1_unchanged"],
                      "mean_abs_confidence_change": kept["mean_abs_confidence_change"]})
    result["lambda_curve"] = curve
    (work / "birdnet_compose.json").write_text(json.dumps(result, indent=2))

    print(f"composed model: {len(labels)} classes ({len(custom)} custom + {len(labels) - len(custom)} BirdNET), "
          f"{args.method} fine-tuning ({args.epochs} epochs), {record['method']} λ={record['lambda']:g}, "
          f"{record['calibration']} calibration, gate {result['gate']:g}, retention target {args.retention}")
    print("group | alone | composed (all classes) | norm. | composed (custom classes) | norm. | within group | norm. "
          "| frozen BirdNET + probe")
    for group, row in result["groups"].items():
        print(f"{group} | {row['alone']:.3f} | {row['composed_all']:.3f} | {row['normalized_all']:.3f} | "
              f"{row['composed_custom']:.3f} | {row['normalized_custom']:.3f} | {row['composed_within']:.3f} | "
              f"{row['normalized_within']:.3f} | {row['frozen_probe']:.3f}")
    print("windows | kind | top-1 BirdNET species unchanged")
    for kind, value in retention["top1_unchanged_by_kind"].items():
        print(f"{kinds.count(kind)} | {kind} | {value:.3f}")
    print("λ | normalized (all classes) | normalized (within group) | top-1 unchanged | mean |Δ confidence|")
    for row in curve:
        print(f"{row['lambda']:g} | {row['normalized_all']:.3f} | {row['normalized_within']:.3f} | "
              f"{row['top1_unchanged']:.3f} | {row['mean_abs_confidence_change']:.2e}")
    print(f"confidence change: mean {retention['mean_abs_confidence_change']:.2e} over all species, "
          f"{retention['mean_abs_confidence_change_top1']:.3f} on the top-1 species, "
          f"max {retention['max_abs_confidence_change']:.3f}; {retention['confident_windows']} windows with a "
          f"BirdNET confidence >= 0.25 (top-1 unchanged: {retention['top1_unchanged_confident']})")
    print(f"mean normalized accuracy (all {len(labels)} classes): {mean_of(result['groups'], 'normalized_all'):.3f}")
    print(f"retention (top-1 BirdNET species unchanged, {len(windows)} windows): {retention['top1_unchanged']:.3f}")


if __name__ == "__main__":
    main()
