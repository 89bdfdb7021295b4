"""Benchmark (b): batched probes for all layers × 4 learning rates against scikit-learn.

On the same T-A features (an encoder's pooled layers on synthetic calls, standardised
with train statistics), compares

- ours: :func:`chorus.probe.sweep.fit_and_select` — every layer × learning rate trained
  together (one optimizer step updates all), early stopping and selection on valid;
- scikit-learn: ``LogisticRegression`` (lbfgs, L2, ``max_iter`` 5000 so that every fit
  converges; its iterations are printed) on the same standardised features, looped over
  layers and 4 values of C, the best (layer, C) chosen on valid — as a user would run it;
- looped: our own trainer run once per (layer, learning rate), one probe at a time —
  the same optimisation without batching, to show what batching alone buys.

Everything runs on one thread (torch and BLAS); times are CPU seconds of this process
(best of ``--repeats``), which on one thread equal wall-clock seconds on an idle machine
and stay comparable when other processes share the cores (wall-clock seconds are printed
too). Both report the test accuracy of their validation-chosen probe, and of the probe
each chose per layer. The default data (24 species, 1 s clips at the synthetic
default 0 dB SNR, 1440/480/480 clips) is about as hard as the demo's: accuracies well
below 100 %. Targets: ours ≥ 10× faster than scikit-learn, accuracy within 1 point.
Usage: ``python benchmarks/probe_batched.py [--encoder sfx-cnn] [--random-init]``
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="sfx-cnn")
    parser.add_argument("--groups", default="birds,anurans,insects,mammals")
    parser.add_argument("--species", type=int, default=6)
    parser.add_argument("--clips-per-species", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--random-init", action="store_true", help="probe the encoder with random weights")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "chorus-bench-probe")
    args = parser.parse_args()

    encoder = load_encoder(args.encoder, pretrained=not args.random_init)
    manifest = synthetic_manifest(args.data / "audio", args.groups, args.species, args.clips_per_species,
                                  args.seconds, encoder.sample_rate)
    task = task_from_manifest(manifest)
    store = open_probe_store(encoder, args.data / "cache", ClipTransform(), False, "float32")
    start = time.perf_counter()
    keys = extract_features(encoder, task.clips, store).keys
    extraction = time.perf_counter() - start
    reader = StoreReader(task, store, dict(enumerate(keys)), with_frames=False)
    splits = {name: reader.read(name) for name in ("train", "valid", "test")}
    config = TrainConfig()

    def ours():
        return fit_and_select(MemoryReader(splits), task.kind, len(task.labels), ("mean",), config)

    selection = ours()
    fitted = selection.fitted["mean"]
    tested = evaluate(selection, splits["test"])["mean"]
    our_accuracy, our_layers = tested["best"]["accuracy"], [slot["accuracy"] for slot in tested["slots"]]
    sk = sklearn_sweep(splits)
    sk_accuracy, iterations = sk["accuracy"], sk["iterations"]
    functions = {"ours": ours, "sklearn": lambda: sklearn_sweep(splits),
                 "looped": lambda: looped_sweep(splits, config, len(task.labels))}
    wall = best_times(functions, 1)
    times = best_times(functions, args.repeats, clock=time.process_time)
    our_time, sk_time, looped_time = times["ours"], times["sklearn"], times["looped"]
    rates = len(config.learning_rates)
    layers = len(splits["train"].pooled)
    print(f"encoder {args.encoder}{' (random weights)' if args.random_init else ''}: {layers} layers (widths {[p.shape[1] for p in splits['train'].pooled]}), "
          f"{len(task.labels)} classes, clips train/valid/test "
          f"{'/'.join(str(len(splits[s].targets)) for s in ('train', 'valid', 'test'))}; "
          f"extraction {extraction:.1f} s (0 if cached); 1 thread")
    print(f"  ours:    {layers} layers x {rates} learning rates {config.learning_rates}, batch {config.batch_size}, "
          f"patience {config.patience}: {our_time:6.2f} s CPU ({wall['ours']:.2f} s wall), "
          f"best layer {encoder.layer_names[fitted.best // rates]} lr {config.learning_rates[fitted.best % rates]:g}, "
          f"test accuracy {our_accuracy:.4f}")
    print(f"  sklearn: {layers} layers x {len(C_VALUES)} C values {C_VALUES}: {sk_time:6.2f} s CPU "
          f"({wall['sklearn']:.2f} s wall), best layer {encoder.layer_names[sk['layer']]} C {sk['C']:g}, "
          f"test accuracy {sk_accuracy:.4f} ({sk['unconverged']} fits hit max_iter; lbfgs iterations {min(iterations)}-{max(iterations)}, "
          f"mean {sum(iterations) / len(iterations):.0f})")
    print("  test accuracy of each layer's valid-chosen probe: "
          + ", ".join(f"{name} {ours_layer:.4f}/{sk_layer:.4f}" for name, ours_layer, sk_layer
                      in zip(encoder.layer_names, our_layers, sk["per_layer"])) + " (ours/sklearn); mean "
          f"{sum(our_layers) / layers:.4f}/{sum(sk['per_layer']) / layers:.4f}")
    print(f"  looped:  our trainer, one probe at a time: {looped_time:6.2f} s CPU "
          f"(batching alone: {looped_time / our_time:.1f}x faster)")
    print(f"accuracy difference (ours - sklearn): {100 * (our_accuracy - sk_accuracy):+.2f} points (target within 1)")
    print(f"speed-up (sklearn time / ours): {sk_time / our_time:.1f}x (target >= 10)")


if __name__ == "__main__":
    main()
