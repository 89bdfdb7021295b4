"""Seeding and determinism: the same seed gives the same bytes on CPU."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def derived_seed(seed: int, *names: str) -> int:
    """A 63-bit seed derived from ``seed`` and names (e.g. a tensor name).

    Random masks seeded this way do not depend on the order in which things run.
    """
    digest = hashlib.sha256(repr((seed, names)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, *names: str) -> torch.Generator:
    """A CPU torch generator seeded with :func:`derived_seed`."""
    gen = torch.Generator()
    gen.manual_seed(derived_seed(seed, *names))
    return gen
