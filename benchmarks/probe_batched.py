"""Benchmark (b): batched probes for all layers × 4 learning rates against scikit-learn.

On the same T-A features (an encoder's pooled layers on synthetic calls, standardised
with train statistics), compares

- ours: :func:`chorus.probe.sweep.fit_and_select` — every layer × learning rate trained
  together (one optimizer step updates all), early stopping and selection on valid;
- scikit-learn: ``LogisticRegression`` (lbfgs, L2, ``max_iter`` 5000 so that every fit
  converges; its iterations are printed) on the same standardised features, looped over
  layers and 4 values of C, the best (layer, C) chosen on valid — as a user would run it;
- looped (``--looped``): our own trainer run once per (layer, learning rate), one probe
  at a time — the same optimisation without batching, to show what batching alone buys.

Everything runs on one thread (torch and BLAS); times are CPU seconds of this process
(best of ``--repeats``), which on one thread equal wall-clock seconds on an idle machine
and stay comparable when other processes share the cores (wall-clock seconds are printed
too). Both report the test accuracy of their validation-chosen probe, and of the probe
each chose per layer. The default data (24 species, 1 s clips at the synthetic
default 0 dB SNR, 1440/480/480 clips) is about as hard as the demo's: accuracies well
below 100 %. ``--seeds`` data sets are generated afresh (seeds 0, 1, ...), each timed
and scored on its own; the summary gives the mean test accuracies and the mean of the
per-seed speed-ups. Targets: ours ≥ 10× faster than scikit-learn, mean accuracy within
1 point. Usage:
``python benchmarks/probe_batched.py [--encoder sfx-cnn] [--seeds 3] [--random-init] [--looped]
[--set FIELD=VALUE ...]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from _common import best_times, synthetic_manifest

from chorus.encoders import load_encoder  # noqa: E402
from chorus.features import ClipTransform, extract_features  # noqa: E402
from chorus.probe.runner import StoreReader, open_probe_store  # noqa: E402
from chorus.probe.models import LinearProbes, probe_rates  # noqa: E402
from chorus.probe.sweep import evaluate, fit_and_select  # noqa: E402
from chorus.probe.task import task_from_manifest  # noqa: E402
from chorus.probe.train import TrainConfig, train_probes  # noqa: E402

C_VALUES = (0.01, 0.1, 1.0, 10.0)


class MemoryReader:
    def __init__(self, splits):
        self.splits = splits

    def read(self, split):
        return self.splits[split]


def sklearn_sweep(splits) -> dict:
    """Per layer the C with the best valid accuracy, and the best (layer, C) overall:
    test accuracies, the choice, fits not converged and lbfgs iterations of every fit."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    best, unconverged, iterations, per_layer = (-1.0, 0, 0.0, 0.0), 0, [], []
    for layer in range(len(splits["train"].pooled)):
        layer_best = (-1.0, 0.0)
        x = {name: split.pooled[layer] for name, split in splits.items()}
        mean, std = x["train"].mean(0), x["train"].std(0)
        std[std < 1e-6] = 1.0
        x = {name: (values - mean) / std for name, values in x.items()}
        for c in C_VALUES:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                model = LogisticRegression(C=c, max_iter=5000).fit(x["train"], splits["train"].targets)
            iterations.append(int(model.n_iter_.max()))
            unconverged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
            valid = model.score(x["valid"], splits["valid"].targets)
            if valid > layer_best[0]:
                layer_best = (valid, model.score(x["test"], splits["test"].targets))
            if valid > best[0]:
                best = (valid, layer, c, layer_best[1])
        per_layer.append(layer_best[1])
    return {"accuracy": best[3], "layer": best[1], "C": best[2], "unconverged": unconverged,
            "iterations": iterations, "per_layer": per_layer}


def looped_sweep(splits, config: TrainConfig, classes: int) -> None:
    """Our trainer, one (layer, learning rate) probe at a time."""
    from chorus.probe.inputs import Standardizer

    standardizer = Standardizer.fit(splits["train"].pooled)
    inputs = {name: standardizer.inputs(split.pooled, split.targets) for name, split in splits.items()}
    for layer in range(len(splits["train"].pooled)):
        single = {name: type(x)([x.pooled[layer]], x.targets) for name, x in inputs.items()}
        for rate in config.learning_rates:
            model = LinearProbes([single["train"].pooled[0].shape[1]], 1, classes)
            train_probes(model, probe_rates(model, (rate,)), single["train"], single["valid"], config)


def load_splits(encoder, args, seed: int):
    """Train/valid/test T-A features of freshly generated synthetic calls (``seed``), the
    task, and the extraction time (s; 0 when cached)."""
    manifest = synthetic_manifest(args.data / "audio", args.groups, args.species, args.clips_per_species,
                                  args.seconds, encoder.sample_rate, seed=seed)
    task = task_from_manifest(manifest)
    store = open_probe_store(encoder, args.data / "cache", ClipTransform(), False, "float32")
    start = time.perf_counter()
    keys = extract_features(encoder, task.clips, store).keys
    extraction = time.perf_counter() - start
    reader = StoreReader(task, store, dict(enumerate(keys)), with_frames=False)
    return {name: reader.read(name) for name in ("train", "valid", "test")}, task, extraction


def run_seed(encoder, args, seed: int, config: TrainConfig) -> dict:
    """One seed: both sweeps on the same features, accuracies and CPU times."""
    splits, task, extraction = load_splits(encoder, args, seed)

    def ours():
        return fit_and_select(MemoryReader(splits), task.kind, len(task.labels), ("mean",), config)

    selection = ours()
    fitted = selection.fitted["mean"]
    tested = evaluate(selection, splits["test"])["mean"]
    sk = sklearn_sweep(splits)
    functions = {"ours": ours, "sklearn": lambda: sklearn_sweep(splits)}
    if args.looped:
        functions["looped"] = lambda: looped_sweep(splits, config, len(task.labels))
    rates = len(config.learning_rates)
    return {"seed": seed, "splits": splits, "task": task, "extraction": extraction,
            "wall": best_times(functions, 1), "cpu": best_times(functions, args.repeats, clock=time.process_time),
            "ours": {"accuracy": tested["best"]["accuracy"], "per_layer": [slot["accuracy"] for slot in tested["slots"]],
                     "layer": fitted.best // rates, "lr": config.learning_rates[fitted.best % rates]},
            "sklearn": sk}


def train_config(settings: list[str]) -> TrainConfig:
    """TrainConfig with ``FIELD=VALUE`` overrides (numbers; learning_rates comma-separated)."""
    fields = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name == "learning_rates":
            fields[name] = tuple(float(v) for v in value.split(","))
        else:
            fields[name] = int(value) if value.lstrip("-").isdigit() else float(value)
    return TrainConfig(**fields)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def print_seed(result: dict, layer_names: list[str], config: TrainConfig) -> None:
    splits, cpu, wall, ours, sk = result["splits"], result["cpu"], result["wall"], result["ours"], result["sklearn"]
    iterations = sk["iterations"]
    print(f"seed {result['seed']}: {len(result['task'].labels)} classes, clips train/valid/test "
          f"{'/'.join(str(len(splits[s].targets)) for s in ('train', 'valid', 'test'))}; "
          f"extraction {result['extraction']:.1f} s (0 if cached)")
    print(f"  ours:    {cpu['ours']:6.2f} s CPU ({wall['ours']:.2f} s wall), best layer {layer_names[ours['layer']]} "
          f"lr {ours['lr']:g}, test accuracy {ours['accuracy']:.4f}")
    print(f"  sklearn: {cpu['sklearn']:6.2f} s CPU ({wall['sklearn']:.2f} s wall), best layer {layer_names[sk['layer']]} "
          f"C {sk['C']:g}, test accuracy {sk['accuracy']:.4f} ({sk['unconverged']} fits hit max_iter; lbfgs "
          f"iterations {min(iterations)}-{max(iterations)}, mean {_mean(iterations):.0f})")
    print("  test accuracy of each layer's valid-chosen probe (ours/sklearn): "
          + ", ".join(f"{name} {a:.4f}/{b:.4f}" for name, a, b in zip(layer_names, ours["per_layer"], sk["per_layer"]))
          + f"; mean {_mean(ours['per_layer']):.4f}/{_mean(sk['per_layer']):.4f}")
    if "looped" in cpu:
        print(f"  looped:  our trainer, one probe at a time: {cpu['looped']:6.2f} s CPU "
              f"(batching alone: {cpu['looped'] / cpu['ours']:.1f}x faster)")
    print(f"  speed-up {cpu['sklearn'] / cpu['ours']:.1f}x, accuracy difference "
          f"{100 * (ours['accuracy'] - sk['accuracy']):+.2f} points")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="sfx-cnn")
    parser.add_argument("--groups", default="birds,anurans,insects,mammals")
    parser.add_argument("--species", type=int, default=6)
    parser.add_argument("--clips-per-species", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=3, help="data sets, each freshly generated (seeds 0..n-1)")
    parser.add_argument("--random-init", action="store_true", help="probe the encoder with random weights")
    parser.add_argument("--looped", action="store_true", help="also time our trainer looped one probe at a time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a TrainConfig default of ours, e.g. --set batch_size=512 --set average=0")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "chorus-bench-probe")
    args = parser.parse_args()

    encoder = load_encoder(args.encoder, pretrained=not args.random_init)
    config = train_config(args.set)
    print(f"encoder {args.encoder}{' (random weights)' if args.random_init else ''}: {len(encoder.layer_names)} "
          f"layers; ours: all layers x {len(config.learning_rates)} learning rates {config.learning_rates}, batch "
          f"{config.batch_size}, patience {config.patience}, L2 {config.weight_decay:g}, average {config.average:g}; "
          f"sklearn: all layers x "
          f"{len(C_VALUES)} C values {C_VALUES}; 1 thread, CPU seconds best of {args.repeats}", flush=True)
    results = []
    for seed in range(args.seeds):
        results.append(run_seed(encoder, args, seed, config))
        print_seed(results[-1], encoder.layer_names, config)
    ours = [r["ours"]["accuracy"] for r in results]
    sk = [r["sklearn"]["accuracy"] for r in results]
    ratios = [r["cpu"]["sklearn"] / r["cpu"]["ours"] for r in results]
    print(f"over {len(results)} seeds: test accuracy ours {', '.join(f'{a:.4f}' for a in ours)} (mean {_mean(ours):.4f}); "
          f"sklearn {', '.join(f'{a:.4f}' for a in sk)} (mean {_mean(sk):.4f}); mean of each layer's chosen probe "
          f"{_mean(_mean(r['ours']['per_layer']) for r in results):.4f}/"
          f"{_mean(_mean(r['sklearn']['per_layer']) for r in results):.4f} (ours/sklearn)")
    our_times = ", ".join(f"{r['cpu']['ours']:.2f}" for r in results)
    sk_times = ", ".join(f"{r['cpu']['sklearn']:.2f}" for r in results)
    print(f"CPU seconds ours {our_times}; sklearn {sk_times}; speed-ups {', '.join(f'{x:.1f}' for x in ratios)}")
    print(f"accuracy difference of the means (ours - sklearn): {100 * (_mean(ours) - _mean(sk)):+.2f} points "
          "(target within 1)")
    print(f"mean speed-up (sklearn time / ours): {_mean(ratios):.1f}x (target >= 10)")


if __name__ == "__main__":
    main()
