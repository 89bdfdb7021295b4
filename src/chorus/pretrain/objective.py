"""What every self-supervised objective is: the encoder being adapted plus loss heads.

An :class:`Objective` registers the encoder under ``encoder.`` and every head under
``heads.`` (the optimizer gives heads their own learning-rate scale; the task vector and the
saved encoder keep ``encoder.`` only, so heads are discarded after training).
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from ..encoders import Encoder


class Objective(nn.Module, abc.ABC):
    """An encoder plus the heads of one self-supervised loss (``heads``: a ModuleDict).

    ``heads_source``: where the heads' starting weights came from (``"random"``: seeded).
    """

    kind: str
    heads_source: str = "random"

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict()

    @abc.abstractmethod
    def loss(self, waveforms: Tensor, lengths: Tensor, gen: torch.Generator) -> Tensor:
        """Scalar loss of one batch: ``waveforms [batch, samples]`` at the encoder's rate,
        ``lengths [batch]`` valid samples; ``gen`` (CPU) draws any random masks. Objectives
        that use transformers' NumPy samplers expect NumPy's global generator seeded by the
        caller (:func:`chorus.pretrain.masking.numpy_seeded`)."""
