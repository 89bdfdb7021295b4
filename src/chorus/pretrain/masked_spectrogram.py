"""Masked spectrogram reconstruction for the sound-effects CNN (``sfx-cnn`` family).

The log-mel input ``[batch, frames, mels]`` is cut into a grid of ``cell x cell`` patches,
``cell = 2 ** pooling layers`` (8 for sfx-cnn: one patch per cell of the last block's
``[frames / 8, mels / 8]`` map). A random ``ratio`` of the patches is set to zero (silence
after the front end's scaling); a small MLP decoder maps each cell of the last block's
map (``channels`` features) back to its ``cell x cell`` patch, and the loss is the L1 or L2
error on the bins of masked patches of valid frames only (masked-autoencoder style).

The front end's output and the last block's map are reached with forward hooks, so the
encoder runs its own forward unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..encoders.base import lengths_to_mask
from ..encoders.sfx_cnn import POOLS, SfxCNN
from .masking import patch_mask
from .objective import Objective
from .errors import PretrainError

RECONSTRUCTIONS = ("l1", "l2")


class MaskedSpectrogram(Objective):
    """Reconstruct masked log-mel patches from the last conv block (``ratio`` of patches
    masked, ``reconstruction`` l1 or l2, decoder of ``hidden`` units)."""

    kind = "masked-spectrogram"

    def __init__(self, encoder: SfxCNN, ratio: float = 0.4, reconstruction: str = "l2", hidden: int = 256):
        super().__init__(encoder)
        if not isinstance(encoder, SfxCNN):
            raise PretrainError(f"{encoder.name}: masked spectrogram reconstruction is implemented for the sfx-cnn "
                                f"family (a CNN over a log-mel input)")
        if reconstruction not in RECONSTRUCTIONS:
            raise PretrainError(f"unknown reconstruction loss {reconstruction!r}; choose l1 or l2")
        if not 0.0 < ratio < 1.0:
            raise PretrainError(f"the masked ratio must lie in (0, 1), got {ratio}")
        self.ratio, self.reconstruction = ratio, reconstruction
        self.cell = 2 ** sum(POOLS)
        self.heads["decoder"] = nn.Sequential(nn.Linear(encoder.channels[-1], hidden), nn.GELU(),
                                              nn.Linear(hidden, self.cell * self.cell))

    def loss(self, waveforms: Tensor, lengths: Tensor, gen: torch.Generator) -> Tensor:
        seen: dict[str, Any] = {}
        cell = self.cell

        def mask_input(module, args, output):
            spec, frames = output
            batch, total, mels = spec.shape
            cells = patch_mask(batch, total // cell, mels // cell, self.ratio, gen).to(spec.device)
            bins = cells.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2)
            bins = nn.functional.pad(bins, (0, mels - bins.shape[2], 0, total - bins.shape[1]))
            seen.update(spec=spec, frames=frames, cells=cells)
            return spec.masked_fill(bins, 0.0), frames

        def keep_map(module, args, output):
            seen["map"] = output

        handles = [self.encoder.frontend.register_forward_hook(mask_input),
                   self.encoder.blocks[-1].register_forward_hook(keep_map)]
        try:
            self.encoder(waveforms, lengths)
        finally:
            for handle in handles:
                handle.remove()
        cells, spec = seen["cells"], seen["spec"]
        batch, rows, columns = cells.shape
        grid = seen["map"][:, :, :rows, :columns].permute(0, 2, 3, 1)  # [batch, rows, columns, channels]
        patches = self.heads["decoder"](grid).view(batch, rows, columns, cell, cell)
        target = spec[:, :rows * cell, :columns * cell].reshape(batch, rows, cell, columns, cell).transpose(2, 3)
        error = (patches - target).abs() if self.reconstruction == "l1" else (patches - target).pow(2)
        chosen = cells & lengths_to_mask(torch.div(seen["frames"], cell, rounding_mode="floor"), rows)[:, :, None]
        if not chosen.any():
            raise PretrainError("clips too short: no masked patch lies inside the audio (use longer clips)")
        return error.mean(dim=(3, 4))[chosen].mean()
