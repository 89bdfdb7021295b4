"""Spectral distribution distance between the groups' recordings (the acoustic-niche view).

Per clip: the power spectrogram ``|STFT|²`` (Hann window of ``n_fft`` samples, the
smallest power of two of at least 32 ms, hop ``n_fft / 4``) is projected on ``n_mels``
(default 64) Slaney-normalised mel bands from 0 Hz to Nyquist and averaged over frames,
giving the clip's mel band energies ``E_b``. Their log-mel spectrum in decibels,
``10·log10(E_b)``, is floored ``TOP_DB`` = 80 dB below the clip's loudest band and taken
relative to that floor (``L_b = max(10·log10(E_b / max E), −80) + 80`` ≥ 0); ``L`` normalised
to sum 1 is the clip's *normalised log-mel spectrum*. A group's spectrum is the mean of its
clips' normalised log-mel spectra, itself a probability distribution over mel bands.

The distance between two groups is the Jensen–Shannon distance (the square root of the
Jensen–Shannon divergence, base-2 logarithms: 0 for identical spectra, 1 for disjoint
bands) between their spectra. Across pairs of groups, its Spearman rank correlation with
the task vectors' whole-model cosine says whether vectors of groups that sound further
apart are closer to orthogonal (a negative ρ).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch

from ..data.clipset import EvalAudio
from .errors import AnalysisError

N_MELS = 64
TOP_DB = 80.0


@functools.cache
def _analysis_bank(sample_rate: int, n_mels: int):
    """``(settings, filters [bins, n_mels] float64, Hann window)`` for this rate, built once."""
    from ..separate.melspec import MelSettings

    n_fft = 1 << math.ceil(math.log2(0.032 * sample_rate))
    settings = MelSettings(int(sample_rate), n_fft, n_fft // 4, n_mels, 0.0, sample_rate / 2)
    return settings, settings.filters().double(), torch.hann_window(n_fft)


def log_mel_spectrum(waveform: np.ndarray, sample_rate: int, n_mels: int = N_MELS) -> np.ndarray | None:
    """Normalised log-mel spectrum ``[n_mels]`` (sum 1; module docstring) of one clip
    ``[samples]``; None for a silent clip."""
    settings, filters, window = _analysis_bank(int(sample_rate), n_mels)
    signal = torch.as_tensor(np.asarray(waveform, dtype=np.float32))
    if signal.numel() < settings.n_fft:
        signal = torch.nn.functional.pad(signal, (0, settings.n_fft - signal.numel()))
    spectrum = torch.stft(signal, settings.n_fft, settings.hop, window=window,
                          center=False, return_complex=True).abs().square()
    energies = (spectrum.T.double() @ filters).mean(dim=0)
    loudest = float(energies.max())
    if not loudest > 0:
        return None
    level = 10 * torch.log10(energies.clamp_min(loudest * 10 ** (-TOP_DB / 10)) / loudest) + TOP_DB
    total = float(level.sum())
    return (level / total).numpy() if total > 0 else None


def group_spectra(audio: EvalAudio, groups: Sequence[str], n_mels: int = N_MELS) -> dict[str, np.ndarray]:
    """Each group's mean normalised log-mel spectrum over its clips in ``audio``."""
    spectra = {}
    for group in groups:
        rows = [log_mel_spectrum(w, audio.sample_rate, n_mels) for w in audio.of_groups([group]).waveforms]
        rows = [r for r in rows if r is not None]
        if not rows:
            raise AnalysisError(f"no audible clip of group {group!r} to measure its spectrum")
        spectra[group] = np.mean(rows, axis=0)
    return spectra


def band_centres_hz(sample_rate: int, n_mels: int = N_MELS) -> list[float]:
    """Centre frequency (Hz) of each of the ``n_mels`` Slaney mel bands from 0 Hz to Nyquist."""
    from transformers.audio_utils import hertz_to_mel, mel_to_hertz

    edges = np.linspace(hertz_to_mel(0.0, "slaney"), hertz_to_mel(sample_rate / 2, "slaney"), n_mels + 2)
    return [float(f) for f in mel_to_hertz(edges[1:-1], "slaney")]


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) between two distributions."""
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(p, q, base=2))


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float | None]:
    """Spearman ``rho`` and its two-sided ``p`` (None with fewer than 3 points or a constant side)."""
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return {"rho": None, "p": None, "points": len(x)}
    result = spearmanr(x, y)
    return {"rho": float(result.statistic), "p": float(result.pvalue), "points": len(x)}


def spectral_distances(audio: EvalAudio, groups: Sequence[str], cosine: Sequence[Sequence[float | None]],
                       n_mels: int = N_MELS) -> dict:
    """Group spectra, the JS distance of every pair with its task-vector cosine
    (``cosine``: whole-model, in ``groups`` order), and their Spearman correlation."""
    spectra = group_spectra(audio, groups, n_mels)
    pairs = []
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            pairs.append({"pair": [groups[i], groups[j]], "js_distance": js_distance(spectra[groups[i]],
                                                                                      spectra[groups[j]]),
                          "cosine": cosine[i][j]})
    known = [p for p in pairs if p["cosine"] is not None]
    return {"n_mels": n_mels, "top_db": TOP_DB, "band_hz": band_centres_hz(audio.sample_rate, n_mels), "spectra": {g: s.tolist() for g, s in spectra.items()}, "pairs": pairs,
            "spearman": rank_correlation([p["js_distance"] for p in known], [p["cosine"] for p in known])}
