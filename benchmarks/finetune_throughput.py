"""Fine-tuning step throughput: chorus's training loop against a bare PyTorch loop.

Both sides train the same ClassifierModel (encoder + linear head, same initial weights)
on batches of the same size and length. chorus's side is the real epoch loop
(:func:`chorus.train.finetune.train_epoch`: shuffled fixed-duration crops from in-memory
waveforms, AdamW parameter groups, warm-up + cosine schedule, gradient clipping,
BatchNorm statistics frozen, progress bar); the bare side is ``forward, cross-entropy,
backward, AdamW.step, zero_grad`` on one pre-made batch tensor. Rounds alternate between
the two sides so that load from other processes hits both alike; medians are compared.

    python benchmarks/finetune_throughput.py [--encoder sfx-cnn] [--batch-size 8] [--seconds 2]

Prints the ratio (chorus steps per second / bare steps per second) last; target ≥ 0.9.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F

from chorus.encoders import load_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry
from chorus.progress import silent_progress
from chorus.data.clipset import ClipSet
from chorus.finetune.runner import train_epoch
from chorus.train.metrics import loss_function
from chorus.train.step import TrainStep, classifier_loss, cosine_schedule, parameter_groups, set_train_mode


def build(encoder_name: str, classes: int) -> ClassifierModel:
    encoder = load_encoder(encoder_name)
    torch.manual_seed(0)
    labels = [f"class{i}" for i in range(classes)]
    return ClassifierModel(encoder, [HeadEntry(labels=labels)], ClassifierSettings(layer=encoder.layer_names[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="sfx-cnn")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=4, help="steps per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--classes", type=int, default=6)
    args = parser.parse_args()

    model = build(args.encoder, args.classes)
    bare = copy.deepcopy(model)
    samples = int(args.seconds * model.encoder.sample_rate)
    gen = torch.Generator().manual_seed(0)
    clip_count = args.batch_size * args.steps
    waveforms = [0.1 * torch.randn(samples, generator=gen).numpy().astype(np.float32) for _ in range(clip_count)]
    targets = torch.randint(args.classes, (clip_count,), generator=gen)
    clips = ClipSet([], waveforms, targets, model.encoder.sample_rate)
    batch = torch.from_numpy(np.stack(waveforms[: args.batch_size]))
    lengths = torch.full((args.batch_size,), samples, dtype=torch.int64)
    batch_targets = targets[: args.batch_size]
    device = torch.device("cpu")

    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-4, 1e-3, 0.01))
    step = TrainStep(optimizer, classifier_loss(model, loss_function("multiclass")),
                     cosine_schedule(args.steps * (args.rounds + 1), 0.1, 0.0))
    bare_optimizer = torch.optim.AdamW(bare.parameters(), lr=1e-4, weight_decay=0.01)
    bare.train()

    def ours() -> float:
        begin = time.perf_counter()
        set_train_mode(model, frozen_encoder=False, train_bn_stats=False)
        train_epoch(step, clips, samples, args.batch_size, gen, device, silent_progress(None, "bench"))
        return (time.perf_counter() - begin) / args.steps

    def reference() -> float:
        begin = time.perf_counter()
        for _ in range(args.steps):
            loss = F.cross_entropy(bare(batch, lengths), batch_targets)
            loss.backward()
            bare_optimizer.step()
            bare_optimizer.zero_grad()
        return (time.perf_counter() - begin) / args.steps

    ours(), reference()  # warm-up round
    our_times, bare_times = [], []
    for _ in range(args.rounds):
        our_times.append(ours())
        bare_times.append(reference())
    ours_s, bare_s = statistics.median(our_times), statistics.median(bare_times)
    print(f"encoder {args.encoder}, batch {args.batch_size} x {args.seconds:g} s, {torch.get_num_threads()} threads")
    print(f"chorus training step: {ours_s * 1000:.1f} ms  (rounds: {', '.join(f'{t * 1000:.0f}' for t in our_times)})")
    print(f"bare PyTorch step:    {bare_s * 1000:.1f} ms  (rounds: {', '.join(f'{t * 1000:.0f}' for t in bare_times)})")
    print(f"throughput ratio chorus/bare: {bare_s / ours_s:.3f}")


if __name__ == "__main__":
    main()
