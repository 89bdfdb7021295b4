"""Separating a mixture with one diffusion prior per source and reconstruction guidance.

Each source ``k`` has its own state ``x_k`` (a compressed spectrogram, see
:mod:`~chorus.separate.priors.spectral`; magnitude priors are rendered with the mixture's
phase) and its own prior ``D_k``. One step from noise
level ``σ_i`` to ``σ_{i+1}``:

1. denoise every source, ``x̂_k = D_k(x_k; σ_i)``, and render it, ``s_k = istft(x̂_k)``;
2. measure how far the sum is from the mixture ``m``: ``L = ‖m − Σ s_k‖² / ‖m‖² +
   λ·‖ |STFT(m)| − |STFT(Σ s_k)| ‖² / ‖ |STFT(m)| ‖²`` (waveform plus magnitude-STFT terms),
   and take ``g_k = ∂L/∂x_k`` through the denoiser (reconstruction guidance, Ho et al.,
   *Video Diffusion Models*, 2022; Chung et al., *Diffusion Posterior Sampling*, ICLR
   2023);
3. normalise **each source's gradient separately** to unit RMS and move that source's
   estimate by ``ξ·r(σ_i)``, where ``r(σ) = σ·σ_d / sqrt(σ² + σ_d²)`` is the posterior
   standard deviation of the clean signal at that noise level:
   ``x̂_k ← x̂_k − ξ·r(σ_i)·g_k / rms(g_k)``. A raw gradient is dominated by the louder
   source and its size has nothing to do with how uncertain the prior still is; the
   normalised step never moves a source further than the prior's own uncertainty, so
   guidance and prior stop fighting at low noise, and every source gets its share
   (the idea of the conflict-avoiding solver of Shi et al., *Unsupervised Single-Channel
   Audio Separation with Diffusion Source Priors*, 2025; this step-size rule is chorus's);
4. step the sampler with the guided estimate (DDIM-style in the EDM parameterisation,
   Karras et al., 2022; ``eta`` = 0 deterministic, 1 ancestral):
   ``x_k ← x̂_k + sqrt(σ_{i+1}² − s²)·(x_k − x̂_k)/σ_i + s·z``,
   ``s = eta·σ_{i+1}·sqrt(1 − σ_{i+1}²/σ_i²)``.

Sampling starts **from a noised copy of the mixture**, ``x_k = analysis_k(m) + σ_start·z_k``
(``σ_start`` = 3 by default, six times the data RMS but far below pure noise), rather than
from pure noise (Shi et al. 2025, who initialise from the noise-augmented mixture;
SDEdit, Meng et al., ICLR 2022, for starting part-way). The outputs are the final estimates ``s_k``.

The network is evaluated ``N·S`` times for ``N`` sources and ``S`` steps (plus as many
backward passes when the gradient flows through the denoiser).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pydantic import ConfigDict, Field, model_validator

from ...progress import ProgressFactory
from ...seeding import generator as seeded_generator
from ..chunking import ChunkedSettings, process_in_chunks
from ..errors import SeparationError
from ..result import SeparationResult
from .edm import karras_sigmas, posterior_std
from .model import SourcePrior
from .spectral import analysis, phase, stft, synthesis
from .train import TRAIN_RMS


class PriorSeparationConfig(ChunkedSettings):
    """Sampler settings (chunking and seed: :class:`ChunkedSettings`).

    Noise levels are in units of the normalised representation (RMS σ_data = 0.5). The
    default chunk is the priors' training segment.
    """

    model_config = ConfigDict(allow_inf_nan=False)

    sigma_start: float = Field(3.0, description="noise level added to the mixture to start from")
    sigma_min: float = Field(0.002, description="last noise level of the schedule")
    rho: float = Field(7.0, description="exponent of the Karras noise schedule")
    guidance: float = Field(0.5, description="ξ, the guidance step in posterior standard deviations")
    magnitude_weight: float = Field(1.0, description="λ, weight of the magnitude-STFT term of the guidance loss")
    eta: float = Field(0.5, description="sampler noise: 0 deterministic, 1 ancestral")
    through_denoiser: bool = Field(True, description="take the guidance gradient through the denoiser")

    @model_validator(mode="after")
    def _check_sampler(self) -> "PriorSeparationConfig":
        if not 0 < self.sigma_min < self.sigma_start:
            raise SeparationError("need 0 < sigma_min < sigma_start")
        if self.guidance < 0 or self.magnitude_weight < 0 or not 0 <= self.eta <= 1:
            raise SeparationError("guidance and magnitude_weight must be >= 0 and eta in [0, 1]")
        return self


@dataclass(frozen=True)
class PriorSource:
    """One source to extract: a prior and, for a class-conditional prior, its class."""

    prior: SourcePrior
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.prior.name

    def class_id(self) -> int | None:
        return self.prior.class_id(self.label)


def reconstruction_loss(estimates: torch.Tensor, mixture: torch.Tensor, magnitude_ref: torch.Tensor,
                        spectral, magnitude_weight: float) -> torch.Tensor:
    """Guidance loss of source waveforms ``[N, samples]`` against ``mixture`` ``[samples]``."""
    total = estimates.sum(dim=0)
    loss = (mixture - total).square().sum() / mixture.square().sum().clamp_min(1e-12)
    if magnitude_weight:
        magnitude = stft(total[None], spectral).abs()[0]
        loss = loss + magnitude_weight * (magnitude_ref - magnitude).square().sum() / magnitude_ref.square().sum().clamp_min(1e-12)
    return loss


@dataclass
class EvaluationCounter:
    """Network evaluations spent so far."""

    evaluations: int = 0


def separate_segment(sources: list[PriorSource], mixture: torch.Tensor, config: PriorSeparationConfig,
                     generator: torch.Generator, counter: EvaluationCounter | None = None,
                     on_step=None) -> torch.Tensor:
    """Separate one segment ``[samples]`` (normalised level) into ``[N, samples]``."""
    samples = mixture.shape[-1]
    spectral = [source.prior.spectral for source in sources]
    class_ids = [source.class_id() for source in sources]
    magnitude_ref = stft(mixture[None], spectral[0]).abs()[0]
    phases = [phase(mixture[None], sp) if sp.representation == "magnitude" else None for sp in spectral]
    sigmas = karras_sigmas(config.sigma_start, config.sigma_min, config.steps, config.rho)
    states = [analysis(mixture[None], sp) for sp in spectral]
    states = [x + config.sigma_start * torch.randn(x.shape, generator=generator).to(x) for x in states]
    for i in range(config.steps):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        with torch.enable_grad():
            leaves = [x.detach().requires_grad_(config.through_denoiser) for x in states]
            denoised = []
            for source, x, cid in zip(sources, leaves, class_ids):
                with torch.set_grad_enabled(config.through_denoiser):
                    d = source.prior.denoise(x, torch.full((1,), sigma, dtype=x.dtype), cid)
                denoised.append(d if config.through_denoiser else d.detach().requires_grad_(True))
                if counter is not None:
                    counter.evaluations += 1
            waves = torch.cat([synthesis(d, sp, samples, ph) for d, sp, ph in zip(denoised, spectral, phases)])
            loss = reconstruction_loss(waves, mixture, magnitude_ref, spectral[0], config.magnitude_weight)
            grads = torch.autograd.grad(loss, leaves if config.through_denoiser else denoised)
        step = config.guidance * posterior_std(sigma)
        guided = [d.detach() - step * g / g.square().mean().sqrt().clamp_min(1e-12) for d, g in zip(denoised, grads)]
        if sigma_next == 0.0:
            states = guided
        else:
            churn = config.eta * sigma_next * (1.0 - sigma_next ** 2 / sigma ** 2) ** 0.5
            keep = (sigma_next ** 2 - churn ** 2) ** 0.5
            states = [d + keep * (x - d) / sigma + churn * torch.randn(x.shape, generator=generator).to(x)
                      for x, d in zip(states, guided)]
        if on_step:
            on_step()
    with torch.no_grad():
        return torch.cat([synthesis(x, sp, samples, ph) for x, sp, ph in zip(states, spectral, phases)])


def separate_with_priors(waveform: np.ndarray, sample_rate: int, sources: list[PriorSource],
                         config: PriorSeparationConfig = PriorSeparationConfig(),
                         progress: ProgressFactory | None = None) -> SeparationResult:
    """One waveform ``[samples]`` per source at the input's ``sample_rate``."""
    if len(sources) < 2:
        raise SeparationError("prior separation needs at least two sources")
    rates = {source.prior.sample_rate for source in sources}
    if len(rates) != 1:
        raise SeparationError(f"all priors must share one sample rate, got {sorted(rates)}")
    rate = rates.pop()
    counter = EvaluationCounter()

    def rms_gain(x: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        return TRAIN_RMS * np.sqrt(len(sources)) / rms if rms > 0 else 1.0

    def process(segment: np.ndarray, index: int, tick) -> np.ndarray:
        gen = seeded_generator(config.seed, "prior-separation", str(index))
        return separate_segment(sources, torch.from_numpy(segment), config, gen, counter, tick).numpy()

    window = int(round(min(source.prior.segment_seconds for source in sources) * rate))
    outputs, chunks = process_in_chunks(np.asarray(waveform, dtype=np.float32), sample_rate, rate, config, window,
                                        rms_gain, process, progress, "prior separation", config.steps)
    settings = {"method": "priors", **config.model_dump(), "priors": [s.prior.name for s in sources]}
    return SeparationResult(outputs, sample_rate, [s.name for s in sources], counter.evaluations, chunks, settings)
