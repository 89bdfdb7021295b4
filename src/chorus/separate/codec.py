"""Waveforms to AudioLDM latents and back, through a user's pipeline components.

Forward: waveform at the vocoder's rate -> log-mel (:mod:`chorus.separate.melspec`) ->
VAE encoder (posterior mode) -> latent scaled by the VAE's ``scaling_factor``.
Backward: latent -> VAE decoder -> log-mel -> vocoder -> waveform. This is the path
AudioLDM and AudioLDM2 generate through, so a separated latent is heard exactly as the
model would render it.

Axes: waveforms ``[B, samples]``; log-mels ``[B, 1, frames, mels]`` (time is the VAE's
height); latents ``[B, C, frames / f, mels / f]`` with ``f`` the VAE's downsampling factor.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .melspec import MelSettings, log_mel

PEAK = 0.5
"""Peak level AudioLDM's training data was normalised to; inputs are scaled to it."""


class LatentCodec:
    """Encode/decode with the VAE and vocoder of an AudioLDM or AudioLDM2 pipeline."""

    def __init__(self, pipeline):
        self.vae = pipeline.vae
        self.vocoder = pipeline.vocoder
        vocoder_config = pipeline.vocoder.config
        self.sample_rate = int(vocoder_config.sampling_rate)
        self.hop = int(np.prod(vocoder_config.upsample_rates))
        self.mel = MelSettings.for_vocoder(self.sample_rate, self.hop, int(vocoder_config.model_in_dim))
        self.vae_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        unet_factor = 2 ** (len(pipeline.unet.config.block_out_channels) - 1)
        self.frame_multiple = self.vae_factor * unet_factor
        """Mel frames must come in multiples of this for the VAE and UNet to fit."""
        self.window_samples = int(pipeline.unet.config.sample_size) * self.vae_factor * self.hop
        """The length the UNet was trained on (AudioLDM: 10.24 s)."""

    @property
    def device(self) -> torch.device:
        return self.vae.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.dtype

    def padded_length(self, samples: int) -> int:
        """Smallest length >= ``samples`` whose mel fits the VAE and UNet exactly."""
        step = self.frame_multiple * self.hop
        return max(1, math.ceil(samples / step)) * step

    @torch.no_grad()
    def encode(self, waveform: torch.Tensor) -> torch.Tensor:
        """``[samples]`` at :attr:`sample_rate` -> ``[1, C, h, w]`` scaled latent (zero-padded input)."""
        padded = torch.nn.functional.pad(waveform.float(), (0, self.padded_length(waveform.shape[-1]) - waveform.shape[-1]))
        mel = log_mel(padded[None], self.mel)[:, None]
        posterior = self.vae.encode(mel.to(self.device, self.dtype)).latent_dist
        return posterior.mode() * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, samples: int) -> torch.Tensor:
        """``[B, C, h, w]`` -> ``[B, samples]`` float32 waveforms on the CPU."""
        mel = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        audio = self.vocoder(mel[:, 0].to(self.vocoder.dtype))
        return audio.float().cpu()[:, :samples]
