"""``slerp``: spherical linear interpolation between exactly two task vectors.

Per tensor, with ``a = w_1 τ_1``, ``b = w_2 τ_2`` and ``Ω`` the angle between them:

    f = sin((1 - t) Ω) / sin Ω · a + sin(t Ω) / sin Ω · b,

the path along the great circle, which keeps the norm of equal-norm inputs where linear
interpolation shrinks it. When the two are nearly (anti)parallel (``|cos Ω| > 0.9995``) or
one is zero, the linear interpolation ``(1 - t) a + t b`` is used (the sines vanish).
Computed in float64. As mergekit does, angles are per tensor and the inputs are not
normalized (their norms are interpolated along with the direction).

Source: Shoemake, *Animating rotation with quaternion curves* (SIGGRAPH 1985); used for
model merging by mergekit (Goddard et al., 2024). Defaults: ``t`` 0.5, λ = 1.
"""

from __future__ import annotations

import math
from typing import Sequence

from pydantic import Field
from torch import Tensor

from .errors import MergeError
from .registry import MethodParams, TensorContext, register_method

PARALLEL = 0.9995


class SlerpParams(MethodParams):
    t: float = Field(0.5, ge=0.0, le=1.0, description="position on the arc: 0 = first vector, 1 = second")


def slerp_pair(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation of two same-shaped tensors (float64 result)."""
    x, y = a.double(), b.double()
    norm_x, norm_y = float(x.norm()), float(y.norm())
    cosine = float((x * y).sum()) / (norm_x * norm_y) if norm_x and norm_y else 1.0
    if abs(cosine) > PARALLEL:
        return (1.0 - t) * x + t * y
    omega = math.acos(cosine)
    return (math.sin((1.0 - t) * omega) * x + math.sin(t * omega) * y) / math.sin(omega)


@register_method("slerp", params=SlerpParams, default_lambda=1.0, summary="spherical interpolation of two vectors",
                 source="Shoemake, SIGGRAPH 1985; mergekit (Goddard et al., 2024)")
def slerp(deltas: Sequence[Tensor], params: SlerpParams, ctx: TensorContext) -> Tensor:
    if len(deltas) != 2:
        raise MergeError(f"slerp merges exactly two task vectors, got {len(deltas)}")
    return slerp_pair(ctx.weights[0] * deltas[0].double(), ctx.weights[1] * deltas[1].double(), params.t).float()
