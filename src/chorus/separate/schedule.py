"""Variance-preserving diffusion arithmetic over a discrete noise schedule.

A latent at timestep ``t`` is ``x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε``. One reverse step
goes from ``t_i`` to the next (smaller) timestep ``t_{i+1}``, or to the clean state
(ᾱ = 1) after the last step. Everything here is a small pure function of tensors so that
inversion and guided sampling (:mod:`chorus.separate.zerosep`) stay readable and testable.

Tensors are latents of any shape; ᾱ values are Python floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import SeparationError

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass(frozen=True)
class NoiseSchedule:
    """The inference timesteps of a pre-trained model and their ᾱ values.

    ``timesteps``: ``[S]`` integer timesteps, descending. ``alpha_bars``: ``[S + 1]``
    floats, ᾱ at each timestep followed by 1.0 (the clean state reached after the last
    step). ``prediction_type``: what the network predicts (diffusers' names).
    """

    timesteps: tuple[int, ...]
    alpha_bars: tuple[float, ...]
    prediction_type: str = "epsilon"

    @classmethod
    def from_scheduler_config(cls, config: dict, steps: int) -> "NoiseSchedule":
        """Timesteps as diffusers' DDIM scheduler spaces them for ``steps`` steps.

        Works for any diffusers scheduler config of a DDPM-trained model (DDIM, DDPM,
        PNDM, LMS, ...): only the training betas, the spacing and the prediction type
        are read.
        """
        from diffusers import DDIMScheduler

        if steps < 1:
            raise SeparationError(f"steps must be at least 1, got {steps}")
        scheduler = DDIMScheduler.from_config(dict(config))
        if steps > scheduler.config.num_train_timesteps:
            raise SeparationError(
                f"steps={steps} exceeds the model's {scheduler.config.num_train_timesteps} training timesteps")
        scheduler.set_timesteps(steps)
        timesteps = tuple(int(t) for t in scheduler.timesteps)
        cumprod = scheduler.alphas_cumprod.double()
        alpha_bars = tuple(float(cumprod[t]) for t in timesteps) + (1.0,)
        return cls(timesteps, alpha_bars, str(scheduler.config.prediction_type))

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise SeparationError(f"unsupported prediction type {self.prediction_type!r}; "
                                  f"supported: {', '.join(PREDICTION_TYPES)}")
        if len(self.alpha_bars) != len(self.timesteps) + 1:
            raise SeparationError("alpha_bars must hold one value per timestep plus the clean state")

    @property
    def steps(self) -> int:
        return len(self.timesteps)

    def split(self, output: torch.Tensor, x_t: torch.Tensor, alpha_bar: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Network output at ``x_t`` -> (predicted x_0, predicted ε)."""
        a, s = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
        if self.prediction_type == "epsilon":
            eps = output
            x0 = (x_t - s * eps) / a
        elif self.prediction_type == "v_prediction":
            x0 = a * x_t - s * output
            eps = s * x_t + a * output
        else:
            x0 = output
            eps = (x_t - a * x0) / s
        return x0, eps


def noised(x0: torch.Tensor, eps: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """``sqrt(ᾱ)·x_0 + sqrt(1 − ᾱ)·ε``."""
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1.0 - alpha_bar) * eps


def posterior_std(alpha_bar: float, alpha_bar_prev: float) -> float:
    """Standard deviation of the DDPM posterior q(x_prev | x_t, x_0) (Ho et al., 2020).

    Zero for the last step, whose destination is the clean state.
    """
    if alpha_bar_prev >= 1.0:
        return 0.0
    variance = (1.0 - alpha_bar_prev) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_prev)
    return math.sqrt(max(variance, 0.0))


def step_mean(x0: torch.Tensor, eps: torch.Tensor, alpha_bar_prev: float, std: float) -> torch.Tensor:
    """Mean of the reverse step to ᾱ_prev with noise ``std`` (DDIM form, Song et al., 2021).

    ``std = posterior_std(...)`` gives the DDPM posterior mean (DDIM with η = 1);
    ``std = 0`` gives the deterministic DDIM step, and, read upwards, the DDIM inversion step.
    """
    direction = math.sqrt(max(1.0 - alpha_bar_prev - std * std, 0.0))
    return math.sqrt(alpha_bar_prev) * x0 + direction * eps
