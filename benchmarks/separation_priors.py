"""Benchmark: prior-guided separation of two synthetic taxon groups (SI-SDRi, held out).

1. Generate single-source clips of two taxon groups with ``chorus.data.synth``.
2. Train ONE class-conditional source prior (classes = groups) on the train split, under a
   wall-clock budget (re-running resumes a stopped run; the reported time is the total).
3. Separate held-out mixtures: ``mix_sources`` renders fresh call sequences (never in the
   training data) of one species per group, plus the region's background, at ±3 dB.
4. Score SI-SDRi per source, next to the oracle ideal ratio mask (IRM, computed from the
   true sources on the same STFT) as the reference a supervised masker could at best reach.

Usage: ``python benchmarks/separation_priors.py --out bench-data/priors [--minutes 25]``.
Prints training time, per-mixture SI-SDRi, the means, and last the ratio ours / oracle.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from chorus.data.synth import generate_dataset, make_config, mix_sources
from chorus.separate.metrics import si_sdr_improvement
from chorus.separate.priors.model import SourcePrior
from chorus.separate.priors.sampler import PriorSeparationConfig, PriorSource, separate_with_priors
from chorus.separate.priors.spectral import SpectralConfig, stft
from chorus.separate.priors.train import PriorTrainConfig, train_prior


def oracle_irm(mixture: np.ndarray, sources: np.ndarray, n_fft: int = 256, hop: int = 64) -> list[np.ndarray]:
    """Ideal ratio masks |S_k| / Σ|S_j| applied to the mixture's STFT."""
    config = SpectralConfig(n_fft, hop)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    mix = stft(torch.from_numpy(mixture[None]).double(), config)[0]
    mags = stft(torch.from_numpy(sources).double(), config).abs()
    masks = mags / mags.sum(dim=0).clamp_min(1e-12)
    return [torch.istft(mix * m, n_fft, hop, window=window, length=len(mixture)).numpy() for m in masks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-data/priors"))
    parser.add_argument("--groups", default="birds,anurans")
    parser.add_argument("--rate", type=int, default=8000)
    parser.add_argument("--minutes", type=float, default=25.0, help="training wall-clock budget")
    parser.add_argument("--train-steps", type=int, default=4000)
    parser.add_argument("--mixtures", type=int, default=10)
    parser.add_argument("--first-mixture", type=int, default=0, help="index of the first held-out mixture")
    parser.add_argument("--mixture-seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=30, help="sampling steps")
    parser.add_argument("--guidance", type=float, default=0.5)
    parser.add_argument("--sigma-start", type=float, default=3.0)
    parser.add_argument("--eta", type=float, default=0.5)
    parser.add_argument("--hop", type=int, default=128, help="STFT hop of the prior (n_fft 256)")
    parser.add_argument("--representation", default="magnitude", choices=("magnitude", "complex"))
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest when the cores are shared with other jobs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    groups = tuple(g.strip() for g in args.groups.split(","))

    data = make_config(groups=groups, species=4, clips_per_species=20, seconds=2.0, sample_rate=args.rate, seed=0)
    manifest = generate_dataset(args.out / "data", data)
    train_config = PriorTrainConfig(sample_rate=args.rate, segment_seconds=1.0, n_fft=256, hop=args.hop,
                                    channels=args.channels, depth=args.depth, batch_size=8, steps=args.train_steps,
                                    class_conditional=True, class_key="group", representation=args.representation)
    summary = train_prior(manifest.select(split="train").clips, args.out / "prior", train_config,
                          max_seconds=60.0 * args.minutes)
    print(f"training: {summary.steps} steps, {summary.seconds / 60:.1f} min in total "
          f"({summary.clips} clips, final loss {summary.final_loss:.3f})")

    prior = SourcePrior.from_pretrained(args.out / "prior")
    sources = [PriorSource(prior, group) for group in groups]
    mixture_config = make_config(groups=groups, species=4, seconds=args.mixture_seconds, sample_rate=args.rate, seed=0)
    sampler = PriorSeparationConfig(steps=args.steps, guidance=args.guidance, sigma_start=args.sigma_start,
                                    eta=args.eta)
    ours, oracle = [], []
    began = time.monotonic()
    for index in range(args.first_mixture, args.first_mixture + args.mixtures):
        mix = mix_sources(mixture_config, groups, index)
        result = separate_with_priors(mix.mixture, args.rate, sources, sampler)
        ours.append([si_sdr_improvement(ref, est, mix.mixture) for ref, est in zip(mix.sources, result.sources)])
        oracle.append([si_sdr_improvement(ref, est, mix.mixture)
                       for ref, est in zip(mix.sources, oracle_irm(mix.mixture, mix.sources))])
        print(f"mixture {index}: SI-SDRi " + ", ".join(f"{g} {v:+.2f} dB" for g, v in zip(groups, ours[-1]))
              + "   (oracle IRM " + ", ".join(f"{v:+.2f}" for v in oracle[-1]) + ")")
    seconds = (time.monotonic() - began) / args.mixtures
    ours_mean, oracle_mean = np.mean(ours, axis=0), np.mean(oracle, axis=0)
    print(f"separation: {args.steps} steps, {seconds:.1f} s per {args.mixture_seconds:g} s mixture")
    for g, a, b in zip(groups, ours_mean, oracle_mean):
        print(f"mean SI-SDRi {g}: priors {a:+.2f} dB, oracle IRM {b:+.2f} dB")
    print(f"mean SI-SDRi over sources: priors {ours_mean.mean():+.2f} dB, oracle IRM {oracle_mean.mean():+.2f} dB")
    print(f"ratio priors / oracle IRM SI-SDRi: {ours_mean.mean() / oracle_mean.mean():.2f}")


if __name__ == "__main__":
    main()
