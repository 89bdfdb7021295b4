"""Shared set-up of the probe benchmarks: single-threaded math, synthetic clips, timing."""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import torch  # noqa: E402

from chorus.data.manifest import Manifest  # noqa: E402
from chorus.data.synth import generate_dataset, make_config  # noqa: E402

torch.set_num_threads(1)


def synthetic_manifest(out_dir: Path, groups: str, species: int, clips_per_species: int, seconds: float,
                       sample_rate: int, seed: int = 0) -> Manifest:
    """Synthetic calls (``chorus.data.synth``) in a subfolder of ``out_dir`` named by the
    parameters (generated on first use, reused after)."""
    config = make_config(groups=tuple(groups.split(",")), species=species, clips_per_species=clips_per_species,
                         seconds=seconds, sample_rate=sample_rate, seed=seed)
    name = f"{groups.replace(',', '-')}_{species}x{clips_per_species}_{seconds:g}s_{sample_rate}Hz_seed{seed}"
    return generate_dataset(Path(out_dir) / name, config)


def best_times(functions: dict[str, Callable[[], object]], repeats: int,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Fastest of ``repeats`` runs (s, by ``clock``: wall clock by default, or
    ``time.process_time`` for CPU time) of each function, run in turn round by round so
    that load from other processes hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = clock()
            function()
            times[name].append(clock() - start)
    return {name: min(values) for name, values in times.items()}
