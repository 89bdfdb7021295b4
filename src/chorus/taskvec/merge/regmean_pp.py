"""``regmean_pp``: RegMean++ — RegMean whose Gram statistics come from the *merged*
model's layers instead of each party's own model.

Source: Nguyen et al., *RegMean++: Enhancing Effectiveness and Generalization of
Regression Mean for Model Merging* (2025). RegMean++ merges layer by layer: the inputs
``X_i`` of layer ``l`` for task ``i`` are task ``i``'s data passed through the already
merged layers ``< l``, so each layer's solve accounts for how the merged layers before it
changed its inputs. The solve itself is RegMean's (same ``α``, float64, see
:mod:`.regmean`).

What chorus implements: parties never share clips, so the sequential pass becomes rounds.
Every party computes its Grams on one merged encoder (``chorus tv gram VECTOR --data ...
--on MERGED_MODEL``, recorded as that encoder's fingerprint in ``computed_on``), and
``regmean_pp`` solves every layer from those. With Grams computed on a RegMean merge this
is one Jacobi-style round of the sequential method (layers ``< l`` are the previous
round's merge, not this one's); repeating the round (Grams on the new merge, merge again)
approaches the sequential fixed point. Every vector's Grams must come from the same
merged encoder.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from .regmean import RegMeanParams, regmean_solve
from .registry import TensorContext, register_method


@register_method("regmean_pp", params=RegMeanParams, default_lambda=1.0, gram_source="merged",
                 summary="RegMean on Grams of a merged encoder's layer inputs (needs Grams)",
                 source="Nguyen et al., RegMean++, 2025")
def regmean_pp(deltas: Sequence[Tensor], params: RegMeanParams, ctx: TensorContext) -> Tensor:
    return regmean_solve(deltas, params, ctx)
