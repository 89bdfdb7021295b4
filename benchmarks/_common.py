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
    """Synthetic calls (``chorus.data.synth``) in ``out_dir`` (generated on first use)."""
    config = make_config(groups=tuple(groups.split(",")), species=species, clips_per_species=clips_per_species,
                         seconds=seconds, sample_rate=sample_rate, seed=seed)
    return generate_dataset(out_dir, config)


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` wall-clock runs (s): the least disturbed by other load."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)
