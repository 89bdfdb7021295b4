"""What a separation run returns, whichever method produced it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SeparationResult:
    """Separated sources ``[samples]`` float32 at ``sample_rate``, one per name.

    ``evaluations``: denoiser network evaluations spent (one latent or spectrogram through
    the network once); ``chunks``: windows the input was split into; ``settings``: the
    method and its parameters, for the run record.
    """

    sources: list[np.ndarray]
    sample_rate: int
    names: list[str]
    evaluations: int = 0
    chunks: int = 1
    settings: dict = field(default_factory=dict)
