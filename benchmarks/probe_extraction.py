"""Benchmark (a): extracting ALL layers from one forward pass per batch.

Compares, on the same pre-decoded clips and batches:

- bare: the encoder's forward pass alone (outputs thrown away);
- ours: :func:`chorus.features.encode_batches` (padding, one forward, T-A pooling of
  every layer) plus writing each batch to a feature store (Parquet, as ``chorus embed``;
  and safetensors with every frame, as the ``chorus probe`` cache);
- per layer: what a per-layer sweep without our extraction does — one forward pass per
  layer, keeping that layer's pooled features.

Targets: ours ≤ 1.1 × bare; per layer ≥ 0.8 × L × ours. Decoding audio is the same for
all three and is left out. Times are wall-clock seconds, or with ``--cpu-time`` CPU
seconds of this process (writing the store is done by this process, so its cost counts
either way; on one thread, CPU time stays comparable while other jobs share the cores).
Usage: ``python benchmarks/probe_extraction.py [--encoder sfx-cnn] [--clips 48] [--seconds 3] [--cpu-time]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import best_times, synthetic_manifest

import torch  # noqa: E402

from chorus.data.loading import load_clip  # noqa: E402
from chorus.encoders import load_encoder, masked_mean, pad_batch  # noqa: E402
from chorus.encoders.batching import plan_batches  # noqa: E402
from chorus.features import FeatureBatch, FeatureStore, ParquetShards, SafetensorsShards, encode_batches  # noqa: E402
from chorus.features import store_header  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="sfx-cnn")
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-time", action="store_true",
                        help="ratios of CPU seconds of this process (for a machine shared with other jobs); "
                             "wall-clock ratios are printed too")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "chorus-bench-extraction")
    args = parser.parse_args()

    encoder = load_encoder(args.encoder)
    manifest = synthetic_manifest(args.data / "audio", "birds,insects", 4, max(1, args.clips // 8), args.seconds,
                                  encoder.sample_rate)
    waveforms = [load_clip(clip, encoder.sample_rate) for clip in manifest.clips]
    plan = plan_batches([len(w) for w in waveforms], args.batch_size, exact_lengths=not encoder.pads_exactly)
    batches = [pad_batch([waveforms[i] for i in rows]) for rows in plan]
    clips = manifest.clips

    def bare() -> None:
        with torch.inference_mode():
            for batch, lengths in batches:
                encoder(batch, lengths)

    def ours(shards) -> None:
        with tempfile.TemporaryDirectory() as folder:
            store = FeatureStore(folder, store_header(encoder), shards)
            for rows, pooled, frames in encode_batches(encoder, waveforms, args.batch_size, shards.keeps_frames):
                store.write(FeatureBatch([f"{i}" for i in rows], [clips[i] for i in rows], pooled, frames))

    def per_layer() -> None:
        with torch.inference_mode():
            for layer in range(encoder.num_layers):
                for batch, lengths in batches:
                    outputs = encoder(batch, lengths)
                    masked_mean(outputs.hidden[layer], outputs.masks[layer])

    bare()  # warm-up
    functions = {
        "bare forward": bare,
        "ours (Parquet, pooled)": lambda: ours(ParquetShards()),
        "ours (safetensors, frames)": lambda: ours(SafetensorsShards(True)),
        "one pass per layer": per_layer,
    }
    wall = best_times(functions, args.repeats)
    times = best_times(functions, args.repeats, clock=time.process_time) if args.cpu_time else wall
    layers = encoder.num_layers
    print(f"encoder {args.encoder}: {layers} layers, {len(waveforms)} clips of {args.seconds:g} s, "
          f"batch {args.batch_size}, 1 thread; best of {args.repeats}")
    for name, seconds in times.items():
        print(f"  {name:28s} {seconds:7.3f} s" + (f" CPU ({wall[name]:.3f} s wall)" if args.cpu_time else " wall"))
    ours_time = times["ours (Parquet, pooled)"]
    print(f"wall-clock ratios: embed / bare {wall['ours (Parquet, pooled)'] / wall['bare forward']:.3f}x, "
          f"per layer / embed {wall['one pass per layer'] / wall['ours (Parquet, pooled)']:.2f}x")
    print(f"all layers with frames cached / bare forward: {times['ours (safetensors, frames)'] / times['bare forward']:.3f}x")
    print(f"all layers (embed) / bare forward: {ours_time / times['bare forward']:.3f}x (target <= 1.1)")
    print(f"one pass per layer / all layers (embed): {times['one pass per layer'] / ours_time:.2f}x "
          f"(target >= 0.8 x {layers} = {0.8 * layers:.1f})")


if __name__ == "__main__":
    main()
