"""ZeroSep: separate sources by inverting a mixture into a text-to-audio diffusion model.

Method (Huang et al., *ZeroSep: Separate Anything in Audio with Zero Training*, 2025):
encode the mixture to a latent ``x_0``; invert it with the empty prompt; run the reverse
process once per target with the target's text prompt and classifier-free guidance

    ε = ε(x, t, ∅) + ω · (ε(x, t, c) − ε(x, t, ∅)),    ω ∈ (0, 1]

ω = 0 walks back along the mixture's own reconstruction path, ω = 1 uses the prompt alone,
ω > 1 drifts away from the mixture and invents content. The separated latent is decoded
through the model's VAE and vocoder (:class:`chorus.separate.codec.LatentCodec`).

Inversion:
- ``"ddpm"`` (default): edit-friendly DDPM inversion (Huberman-Spiegelglas, Kulikov &
  Michaeli, CVPR 2024; used for audio by Manor & Michaeli, ICML 2024). Every noisy latent
  ``x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε_t`` gets its own independent noise; the noise
  map ``z_t = (x_{t−1} − μ_t(x_t)) / σ_t`` that the DDPM step would need to land on
  ``x_{t−1}`` is recorded, and the reverse process re-uses it, so with the inversion's own
  prompt it retraces ``x_T … x_1`` exactly. The last step has ``σ_1 = 0`` (it lands on the
  model's estimate ``μ_1 = x̂_0`` and adds no noise), so its map is the residual
  ``x_0 − μ_1`` itself, added unscaled: with the inversion's prompt (ω = 0) the reverse
  process ends on ``x_0`` exactly (to float rounding), as in the paper, instead of on the
  model's ``x̂_0`` (up to 0.13 away on the tiny test pipeline). Guided runs add the same
  residual, like every other step's noise map.
- ``"ddim"``: deterministic DDIM inversion (Song et al., 2021), approximate with few steps.

Cost, counted in UNet evaluations (one latent through the UNet once), for ``S`` steps and
``N`` prompts: the inversion uses only the empty prompt, so it is computed once and shared
by all prompts (``S``); each prompt then costs ``S`` at ω = 1 (the unconditional branch is
skipped), ``2S`` at 0 < ω < 1 and ``S`` at ω = 0 (the conditional branch is skipped);
the linear schedule spends ``2S − 2``. At ω = 1 that is ``(N + 1)·S``, against ``3S`` per
source for ZeroSep's per-prompt DDPM inversion with guidance and ``4S`` for its guided
DDIM inversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from pydantic import model_validator

from ..progress import ProgressFactory
from ..seeding import generator as seeded_generator
from .chunking import ChunkedSettings, process_in_chunks
from .codec import PEAK, LatentCodec
from .errors import ModelLoadError, SeparationError
from .prompts import encode_prompts, pipeline_kind, repeat_rows
from .result import SeparationResult
from .schedule import NoiseSchedule, noised, posterior_std, step_mean

INVERSIONS = ("ddpm", "ddim")
OMEGA_SCHEDULES = ("constant", "linear")
Conditioning = dict[str, torch.Tensor | None]


class ZeroSepConfig(ChunkedSettings):
    """Settings of one ZeroSep run (chunking and seed: :class:`ChunkedSettings`).

    ``omega``: guidance weight (the start value of the linear schedule, which falls to 0).
    The default chunk is the UNet's training length (10.24 s for AudioLDM).
    """

    omega: float = 1.0
    omega_schedule: str = "constant"
    inversion: str = "ddpm"

    @model_validator(mode="after")
    def _check_guidance(self) -> "ZeroSepConfig":
        if not np.isfinite(self.omega) or self.omega < 0:
            raise SeparationError(f"omega must be a finite number >= 0, got {self.omega}")
        if self.omega_schedule not in OMEGA_SCHEDULES:
            raise SeparationError(f"omega schedule must be one of {', '.join(OMEGA_SCHEDULES)}, got {self.omega_schedule!r}")
        if self.inversion not in INVERSIONS:
            raise SeparationError(f"inversion must be one of {', '.join(INVERSIONS)}, got {self.inversion!r}")
        return self

    def omegas(self) -> list[float]:
        """Guidance weight of each reverse step (first step first)."""
        if self.omega_schedule == "constant" or self.steps == 1:
            return [float(self.omega)] * self.steps
        return [float(self.omega) * (1.0 - i / (self.steps - 1)) for i in range(self.steps)]


class CountingUNet:
    """Calls a diffusers UNet with prompt conditioning and counts evaluations (rows)."""

    def __init__(self, unet):
        self.unet = unet
        self.evaluations = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, timestep: int, conditioning: Conditioning) -> torch.Tensor:
        self.evaluations += x.shape[0]
        t = torch.tensor(timestep, device=x.device)
        return self.unet(x, t, **conditioning, return_dict=False)[0]


@dataclass
class Inversion:
    """A latent's inversion: the states the reverse process starts from and passes.

    ``path[i]``: ``[1, C, h, w]`` latent at timestep ``schedule.timesteps[i]`` (``path[0]``
    is x_T). ``noise[i]``: the recorded noise map of reverse step ``i`` (DDPM inversion;
    for the last step, which has no noise, the residual ``x_0 − μ_1`` itself: see
    :func:`noise_scale`) or None (DDIM inversion).
    """

    path: list[torch.Tensor]
    noise: list[torch.Tensor] | None


def noise_scale(std: float) -> float:
    """What a reverse step's recorded noise map is multiplied by: the step's posterior
    ``std``, or 1 for a step without noise (the last, ``std = 0``), whose "noise map" is
    then the plain residual ``x_0 − μ``."""
    return std if std > 0.0 else 1.0


def invert_ddpm(unet: CountingUNet, schedule: NoiseSchedule, x0: torch.Tensor, uncond: Conditioning,
                generator: torch.Generator, on_step: Callable[[], None] | None = None) -> Inversion:
    """Edit-friendly DDPM inversion of ``x0`` ``[1, C, h, w]`` (S UNet evaluations)."""
    ab = schedule.alpha_bars
    path = [noised(x0, torch.randn(x0.shape, generator=generator).to(x0), ab[i]) for i in range(schedule.steps)]
    targets = path[1:] + [x0]
    noise = []
    for i, t in enumerate(schedule.timesteps):
        x0_hat, eps = schedule.split(unet(path[i], t, uncond), path[i], ab[i])
        std = posterior_std(ab[i], ab[i + 1])
        mean = step_mean(x0_hat, eps, ab[i + 1], std)
        noise.append((targets[i] - mean) / noise_scale(std))
        if on_step:
            on_step()
    return Inversion(path, noise)


def invert_ddim(unet: CountingUNet, schedule: NoiseSchedule, x0: torch.Tensor, uncond: Conditioning,
                on_step: Callable[[], None] | None = None) -> Inversion:
    """Deterministic DDIM inversion of ``x0`` ``[1, C, h, w]`` (S UNet evaluations).

    Each step predicts the noise at the current, less noisy latent with the timestep it
    moves to, and re-noises the implied clean latent to that timestep.
    """
    ab = schedule.alpha_bars
    path: list[torch.Tensor] = [x0] * schedule.steps
    x = x0
    for i in reversed(range(schedule.steps)):
        _, eps = schedule.split(unet(x, schedule.timesteps[i], uncond), x, ab[i])
        x0_hat = (x - (1.0 - ab[i + 1]) ** 0.5 * eps) / ab[i + 1] ** 0.5
        x = noised(x0_hat, eps, ab[i])
        path[i] = x
        if on_step:
            on_step()
    return Inversion(path, None)


def guided_reverse(unet: CountingUNet, schedule: NoiseSchedule, inversion: Inversion, cond: Conditioning,
                   uncond: Conditioning, omegas: list[float],
                   on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Denoise the inverted latent once per prompt row of ``cond``: ``[N, C, h, w]``.

    ``on_step(i, x)`` sees the latents ``[N, C, h, w]`` after reverse step ``i``.
    """
    rows = next(v for v in cond.values() if v is not None).shape[0]
    uncond_rows = repeat_rows(uncond, rows)
    ab = schedule.alpha_bars
    x = inversion.path[0].expand(rows, *inversion.path[0].shape[1:]).clone()
    for i, t in enumerate(schedule.timesteps):
        omega = omegas[i]
        out_c = unet(x, t, cond) if omega != 0.0 else None
        out_u = unet(x, t, uncond_rows) if omega != 1.0 else None
        if out_u is None:
            out = out_c
        elif out_c is None:
            out = out_u
        else:
            out = out_u + omega * (out_c - out_u)
        x0_hat, eps = schedule.split(out, x, ab[i])
        if inversion.noise is None:
            x = step_mean(x0_hat, eps, ab[i + 1], 0.0)
        else:
            std = posterior_std(ab[i], ab[i + 1])
            x = step_mean(x0_hat, eps, ab[i + 1], std) + noise_scale(std) * inversion.noise[i]
        if on_step:
            on_step(i, x)
    return x


def load_pipeline(model: str, device: str | None = None, torch_dtype: torch.dtype | None = None):
    """An AudioLDM or AudioLDM2 pipeline from a hub id or a local folder (diffusers)."""
    try:
        from diffusers import DiffusionPipeline
    except ImportError as exc:
        raise SeparationError("ZeroSep needs diffusers: pip install 'chorus-audio[separate]'") from exc

    try:
        pipeline = DiffusionPipeline.from_pretrained(model, torch_dtype=torch_dtype)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ModelLoadError(model, f"cannot load a diffusers pipeline: {exc}") from exc
    pipeline_kind(pipeline)
    if device is not None:
        pipeline = pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


class ZeroSep:
    """Prompted separation with a pre-trained AudioLDM or AudioLDM2 pipeline.

    The pipeline's modules are put in evaluation mode (no dropout), so a seed fixes the result.
    """

    def __init__(self, pipeline):
        pipeline_kind(pipeline)
        for component in pipeline.components.values():
            if isinstance(component, torch.nn.Module):
                component.eval()
        self.pipeline = pipeline
        self.codec = LatentCodec(pipeline)
        self.unet = CountingUNet(pipeline.unet)

    @classmethod
    def from_pretrained(cls, model: str, device: str | None = None, torch_dtype: torch.dtype | None = None) -> "ZeroSep":
        return cls(load_pipeline(model, device, torch_dtype))

    def schedule(self, steps: int) -> NoiseSchedule:
        return NoiseSchedule.from_scheduler_config(self.pipeline.scheduler.config, steps)

    def separate_latent(self, x0: torch.Tensor, cond: Conditioning, uncond: Conditioning, config: ZeroSepConfig,
                        chunk_index: int = 0, on_step: Callable[[], None] | None = None,
                        on_reverse_step: Callable[[int, torch.Tensor], None] | None = None,
                        ) -> tuple[Inversion, torch.Tensor]:
        """Invert ``x0`` ``[1, C, h, w]`` once and denoise it for every row of ``cond``.

        ``cond``/``uncond`` come from :func:`~chorus.separate.prompts.encode_prompts`
        (the prompts, and the empty prompt). Returns the inversion and ``[N, C, h, w]``.
        """
        schedule = self.schedule(config.steps)
        if config.inversion == "ddpm":
            gen = seeded_generator(config.seed, "zerosep", "ddpm-inversion", str(chunk_index))
            inversion = invert_ddpm(self.unet, schedule, x0, uncond, gen, on_step)
        else:
            inversion = invert_ddim(self.unet, schedule, x0, uncond, on_step)

        def reverse_step(i: int, x: torch.Tensor) -> None:
            if on_step:
                on_step()
            if on_reverse_step:
                on_reverse_step(i, x)

        return inversion, guided_reverse(self.unet, schedule, inversion, cond, uncond, config.omegas(), reverse_step)

    def separate(self, waveform: np.ndarray, sample_rate: int, prompts: list[str],
                 config: ZeroSepConfig = ZeroSepConfig(), progress: ProgressFactory | None = None) -> SeparationResult:
        """One source per prompt, each ``[samples]`` at ``sample_rate`` like the input."""
        if not prompts:
            raise SeparationError("give at least one prompt")
        codec = self.codec
        cond = encode_prompts(self.pipeline, list(prompts))
        uncond = encode_prompts(self.pipeline, [""])
        start = self.unet.evaluations

        def peak_gain(x: np.ndarray) -> float:
            peak = float(np.max(np.abs(x)))
            return PEAK / peak if peak > 0 else 1.0

        def process(segment: np.ndarray, index: int, tick: Callable[[], None]) -> np.ndarray:
            x0 = codec.encode(torch.from_numpy(segment))
            _, latents = self.separate_latent(x0, cond, uncond, config, index, on_step=tick)
            return codec.decode(latents, len(segment)).numpy()

        sources, chunks = process_in_chunks(np.asarray(waveform, dtype=np.float32), sample_rate, codec.sample_rate,
                                            config, codec.window_samples, peak_gain, process, progress, "zerosep",
                                            2 * config.steps)
        settings = {"method": "zerosep", "pipeline": type(self.pipeline).__name__, **config.model_dump()}
        return SeparationResult(sources, sample_rate, list(prompts), self.unet.evaluations - start, chunks, settings)
