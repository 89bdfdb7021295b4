"""Diffusion in the EDM parameterisation (Karras, Aittala, Aila & Laine, NeurIPS 2022).

``x_σ = x_0 + σ·n``; the denoiser ``D(x; σ) = c_skip·x + c_out·F(c_in·x, c_noise)``
estimates ``x_0`` with the preconditioning of their Table 1, trained with
``λ(σ)·‖D(x_σ; σ) − x_0‖²`` at ``ln σ ~ N(P_mean, P_std²)``. Representations are scaled
to RMS :data:`SIGMA_DATA` (:mod:`chorus.separate.priors.spectral`).
"""

from __future__ import annotations

import torch

SIGMA_DATA = 0.5
P_MEAN = -1.2
P_STD = 1.2


def preconditioning(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out, c_in, c_noise)`` for noise levels ``sigma`` ``[B]``."""
    total = sigma ** 2 + SIGMA_DATA ** 2
    return SIGMA_DATA ** 2 / total, sigma * SIGMA_DATA / total.sqrt(), 1.0 / total.sqrt(), sigma.log() / 4.0


def denoise(network, x: torch.Tensor, sigma: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
    """``D(x; σ)`` for ``x`` ``[B, ...]`` and ``sigma`` ``[B]``."""
    c_skip, c_out, c_in, c_noise = preconditioning(sigma)
    shape = (-1,) + (1,) * (x.dim() - 1)
    return c_skip.view(shape) * x + c_out.view(shape) * network(c_in.view(shape) * x, c_noise, class_ids)


def training_loss(network, x0: torch.Tensor, generator: torch.Generator,
                  class_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted denoising loss of a clean batch ``x0`` ``[B, ...]`` (a scalar)."""
    b = x0.shape[0]
    sigma = (P_MEAN + P_STD * torch.randn(b, generator=generator)).exp().to(x0)
    noise = torch.randn(x0.shape, generator=generator).to(x0)
    weight = (sigma ** 2 + SIGMA_DATA ** 2) / (sigma * SIGMA_DATA) ** 2
    shape = (-1,) + (1,) * (x0.dim() - 1)
    error = (denoise(network, x0 + sigma.view(shape) * noise, sigma, class_ids) - x0) ** 2
    return (weight * error.flatten(1).mean(dim=1)).mean()


def karras_sigmas(sigma_max: float, sigma_min: float, steps: int, rho: float = 7.0) -> torch.Tensor:
    """``[steps + 1]`` noise levels from ``sigma_max`` down to ``sigma_min``, then 0."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    if steps == 1:
        ramp = torch.zeros(1, dtype=torch.float64)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv ** rho, torch.zeros(1, dtype=torch.float64)])


def posterior_std(sigma: float) -> float:
    """Std of x_0 given x_σ under a Gaussian prior of scale σ_data: ``σ·σ_d / sqrt(σ² + σ_d²)``."""
    return sigma * SIGMA_DATA / (sigma ** 2 + SIGMA_DATA ** 2) ** 0.5
