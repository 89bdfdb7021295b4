"""Checks shared by encoder tests."""

from __future__ import annotations

import numpy as np
import torch

from chorus.encoders import Encoder, pad_batch


def assert_padding_exact(model: Encoder, lengths: list[int], rtol: float = 1e-4) -> None:
    """Each clip's hidden states alone and inside a zero-padded batch agree within ``rtol``
    (relative to the layer's largest value) on every valid frame of every layer, and the
    valid-frame masks agree."""
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]
    batch, batch_lengths = pad_batch(clips)
    with torch.inference_mode():
        together = model(batch, batch_lengths)
        for row, clip in enumerate(clips):
            alone = model(torch.from_numpy(clip)[None], torch.tensor([len(clip)]))
            assert len(alone.hidden) == len(together.hidden) == model.num_layers
            for layer, (h_alone, h_batch) in enumerate(zip(alone.hidden, together.hidden)):
                valid = int(alone.masks[layer][0].sum())
                assert int(together.masks[layer][row].sum()) == valid, (row, layer)
                assert bool(alone.masks[layer][0, :valid].all()) and bool(together.masks[layer][row, :valid].all())
                if valid:
                    a, b = h_alone[0, :valid], h_batch[row, :valid]
                    assert (a - b).abs().max() <= rtol * max(float(a.abs().max()), 1e-6), (row, layer)
