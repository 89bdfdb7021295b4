"""Does fine-tuning beat the frozen encoder? One synthetic taxon group, its test split.

Three classifiers on the same clips and encoder layer, all evaluated on whole clips:

1. frozen-encoder linear probe: logistic regression on pooled features of the frozen
   encoder (C chosen on the validation split);
2. head-only run of ``chorus finetune`` (the frozen encoder with a linear head trained
   by the same loop, AdamW, same training crops);
3. full fine-tuning with ``chorus finetune`` (encoder + head).

    python benchmarks/finetune_vs_probe.py [--encoder sfx-cnn] [--group birds] [--epochs 8]

Prints test accuracies; the last line is the fine-tuned accuracy minus the better probe's.

With ``--presets`` (hard small-data sets of :data:`chorus.data.synth.HARD_SETTINGS`), the
default fine-tuning (``FinetuneConfig`` defaults; ``--epochs`` and the seed aside) runs on
every preset × seed (region cycling with the seed) and is compared with its own starting
point, the frozen-probe baseline it reports: per seed the probe's and the fine-tuned test
accuracy, whether it ends at or above the probe, whether it kept the probe and whether it
warned; the last line counts the runs at or above their probe (target: ≥ 4 of 5 per preset).

    python benchmarks/finetune_vs_probe.py --presets few-clips,unbalanced --seeds 5 --epochs 4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import warnings

from chorus.data.synth import REGIONS, generate_dataset, make_config
from chorus.encoders import load_encoder
from chorus.finetune.config import FinetuneConfig
from chorus.data.clipset import crop_batch, load_clipset
from chorus.finetune.errors import FinetuneWarning
from chorus.finetune.runner import finetune


def logistic_probe(manifest, encoder_name: str, layer: int = -1) -> dict[str, float]:
    """Test and validation accuracy of logistic regression on mean-pooled frozen features of
    whole clips."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    encoder = load_encoder(encoder_name)
    labels = manifest.labels
    features, targets = {}, {}
    for split in ("train", "valid", "test"):
        clips = load_clipset(manifest.select(split=split).clips, labels, "multiclass", encoder.sample_rate, [])
        rows = []
        with torch.inference_mode():
            for begin in range(0, len(clips), 16):
                indices = list(range(begin, min(begin + 16, len(clips))))
                waves, lengths = crop_batch(clips.waveforms, indices, None, None)
                rows.append(encoder(waves, lengths).pooled()[layer].numpy())
        features[split], targets[split] = np.concatenate(rows), clips.targets.numpy()
    scaler = StandardScaler().fit(features["train"])
    best = None
    for c in (0.01, 0.1, 1.0, 10.0):
        probe = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(features["train"]), targets["train"])
        valid = probe.score(scaler.transform(features["valid"]), targets["valid"])
        if best is None or valid > best[0]:
            best = (valid, c, probe.score(scaler.transform(features["test"]), targets["test"]))
    return {"valid_accuracy": best[0], "test_accuracy": best[2], "C": best[1]}


def hard_small_data(args: argparse.Namespace) -> None:
    """The default fine-tuning against its own frozen-probe baseline on hard presets × seeds."""
    regions = list(REGIONS)
    print(f"{args.encoder}, default fine-tuning ({args.epochs} epochs) vs its frozen-probe baseline, test accuracy")
    print(f"{'preset':12s} {'seed':>4s} {'region':11s} {'train':>5s} {'probe':>6s} {'tuned':>6s}  at/above  kept  warned")
    totals: dict[str, list[bool]] = {}
    for preset in args.presets.split(","):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            fields = {"species": args.species} if args.species else {}
            if preset == "unbalanced":
                fields["clips_per_species"] = 24  # ≤ 24 clips per class (the preset's 80 is not small data)
            region = regions[seed % len(regions)]
            manifest = generate_dataset(args.out / "data" / f"{preset}-{seed}", make_config(
                preset, groups=(args.group,), region=region, seed=seed, **fields))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", FinetuneWarning)
                result = finetune(manifest, args.out / f"{preset}-{seed}", FinetuneConfig(
                    encoder=args.encoder, groups=[args.group], epochs=args.epochs, seed=seed))
            probe, tuned = result.probe_test_metrics["accuracy"], result.test_metrics["accuracy"]
            warned = any(issubclass(w.category, FinetuneWarning) for w in caught)
            totals.setdefault(preset, []).append(tuned >= probe)
            print(f"{preset:12s} {seed:4d} {region:11s} {len(manifest.select(split='train')):5d} {probe:6.3f} "
                  f"{tuned:6.3f}  {'yes' if tuned >= probe else 'NO':8s}  {'yes' if result.kept_probe else 'no':4s}  "
                  f"{'yes' if warned else 'no'}", flush=True)
            assert warned == (tuned < probe), "the warning must fire exactly when the run ends below its probe"
    print("runs at or above their frozen probe on test: " + ", ".join(
        f"{preset} {sum(runs)} of {len(runs)}" for preset, runs in totals.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="sfx-cnn")
    parser.add_argument("--group", default="birds")
    parser.add_argument("--species", type=int, default=None, help="species of the group (default 8; "
                        "with --presets: the preset's)")
    parser.add_argument("--clips-per-species", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--snr", type=float, default=0.0, help="call-to-background SNR of the synthetic clips, dB")
    parser.add_argument("--clip-seconds", type=float, default=2.0, help="training crop length (random crops)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-data/finetune_vs_probe"))
    parser.add_argument("--presets", default=None,
                        help="comma-separated hard presets: compare the default fine-tuning with its probe instead")
    parser.add_argument("--seeds", type=int, default=5, help="with --presets: seeds per preset")
    parser.add_argument("--first-seed", type=int, default=0, help="with --presets: the first seed")
    args = parser.parse_args()
    if args.presets:
        hard_small_data(args)
        return

    manifest = generate_dataset(args.out / "data", make_config(
        groups=(args.group,), species=args.species or 8, clips_per_species=args.clips_per_species,
        seconds=args.seconds, snr_db=args.snr, seed=args.seed))
    common = dict(encoder=args.encoder, groups=[args.group], epochs=args.epochs, batch_size=args.batch_size,
                  clip_seconds=args.clip_seconds or args.seconds, seed=args.seed, patience=None)
    rows = []
    begin = time.perf_counter()
    probe = logistic_probe(manifest, args.encoder)
    rows.append(("frozen encoder + logistic regression", probe["valid_accuracy"], probe["test_accuracy"],
                 time.perf_counter() - begin))
    for label, method, lr in (("frozen encoder + head (chorus head-only)", "head-only", None),
                              ("fine-tuned encoder + head (chorus full)", "full", args.lr)):
        begin = time.perf_counter()
        result = finetune(manifest, args.out / method, FinetuneConfig(method=method, lr=lr, **common))
        rows.append((label, result.valid_metrics["accuracy"], result.test_metrics["accuracy"],
                     time.perf_counter() - begin))
    counts = {split: len(manifest.select(split=split)) for split in ("train", "valid", "test")}
    print(f"{args.encoder} on synthetic group {args.group!r}: {len(manifest.labels)} species, clips {counts}, "
          f"{args.seconds:g} s clips at {args.snr:g} dB SNR, {args.clip_seconds or args.seconds:g} s training crops, "
          f"{args.epochs} epochs, seed {args.seed}")
    for label, valid, test, seconds in rows:
        print(f"  {label:44s} valid {valid:.3f}  test {test:.3f}  ({seconds:.0f} s)")
    best_probe = max(rows[0][2], rows[1][2])
    print(f"fine-tuned minus best frozen probe, test accuracy: {rows[2][2] - best_probe:+.3f} "
          f"({rows[2][2]:.3f} vs {best_probe:.3f})")


if __name__ == "__main__":
    main()
