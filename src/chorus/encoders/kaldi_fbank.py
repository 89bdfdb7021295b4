"""Kaldi-compatible log mel filterbank in torch (no torchaudio).

Computes what ``torchaudio.compliance.kaldi.fbank`` computes with its defaults that AST
and BEATs rely on: ``snip_edges=True`` framing (only frames that lie entirely inside the
signal), no dither, per-frame DC removal, pre-emphasis 0.97 (the first sample is its own
predecessor), a Povey (Hann^0.85) or Hanning window, zero-padding to the next power of
two, power spectrum, triangular filters equally spaced on Kaldi's mel scale
(``1127 ln(1 + f / 700)``) between 20 Hz and Nyquist, and the natural log floored at
float32 epsilon. Reference: the Kaldi toolkit's ``compute-fbank-feats`` (Povey et al. 2011).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_FLOOR = float(torch.finfo(torch.float32).eps)


def frame_count(samples: Tensor | int, sample_rate: int, frame_length_ms: float = 25.0,
                frame_shift_ms: float = 10.0) -> Tensor:
    """Frames Kaldi's ``snip_edges`` framing yields for clips of ``samples`` samples."""
    window, shift = _window_and_shift(sample_rate, frame_length_ms, frame_shift_ms)
    samples = torch.as_tensor(samples)
    return torch.where(samples >= window, (samples - window).div(shift, rounding_mode="floor") + 1,
                       torch.zeros_like(samples))


def fbank(waveforms: Tensor, sample_rate: int, num_mel_bins: int = 128, *, window_type: str = "povey",
          frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0, preemphasis: float = 0.97,
          low_freq: float = 20.0, high_freq: float = 0.0) -> Tensor:
    """``waveforms [batch, samples]`` -> log mel energies ``[batch, frames, num_mel_bins]``.

    ``window_type``: ``"povey"`` (Kaldi's default, used by BEATs) or ``"hanning"`` (AST).
    ``high_freq <= 0`` is an offset from Nyquist, as in Kaldi.
    """
    window, shift = _window_and_shift(sample_rate, frame_length_ms, frame_shift_ms)
    batch, samples = waveforms.shape
    if samples < window:
        return waveforms.new_zeros(batch, 0, num_mel_bins)
    frames = waveforms.unfold(1, window, shift)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = (frames - preemphasis * previous) * _window(window_type, window, waveforms)
    fft_size = 1 << (window - 1).bit_length()
    power = torch.fft.rfft(frames, n=fft_size).abs().pow(2)
    banks = mel_banks(num_mel_bins, fft_size, sample_rate, low_freq, high_freq).to(power)
    return torch.matmul(power, banks.T).clamp_min(LOG_FLOOR).log()


def mel_banks(num_bins: int, fft_size: int, sample_rate: int, low_freq: float = 20.0,
              high_freq: float = 0.0) -> Tensor:
    """Kaldi's triangular mel filters as ``[num_bins, fft_size // 2 + 1]`` float64 (the
    Nyquist bin gets no weight)."""
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ValueError(f"bad mel range {low_freq}..{high_freq} Hz at {sample_rate} Hz")
    mel_low, mel_high = _mel(low_freq), _mel(high_freq)
    delta = (mel_high - mel_low) / (num_bins + 1)
    edges = mel_low + delta * torch.arange(num_bins + 2, dtype=torch.float64)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bin_mel = 1127.0 * torch.log1p(torch.arange(fft_size // 2, dtype=torch.float64)
                                   * (sample_rate / fft_size) / 700.0)
    up = (bin_mel - left) / (centre - left)
    down = (right - bin_mel) / (right - centre)
    weights = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(weights, (0, 1))


def _mel(freq: float) -> float:
    return 1127.0 * math.log(1.0 + freq / 700.0)


def _window_and_shift(sample_rate: int, frame_length_ms: float, frame_shift_ms: float) -> tuple[int, int]:
    return int(sample_rate * frame_length_ms * 0.001), int(sample_rate * frame_shift_ms * 0.001)


def _window(window_type: str, size: int, like: Tensor) -> Tensor:
    hann = torch.hann_window(size, periodic=False, dtype=like.dtype, device=like.device)
    if window_type == "hanning":
        return hann
    if window_type == "povey":
        return hann.pow(0.85)
    raise ValueError(f"unknown window type {window_type!r}; expected 'povey' or 'hanning'")
