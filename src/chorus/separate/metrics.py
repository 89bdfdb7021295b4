"""Separation quality: SI-SDR(i), BSS Eval SDR/SIR/SAR, mel distance, CLAP scores.

- SI-SDR (Le Roux et al., *SDR — half-baked or well done?*, ICASSP 2019): both signals
  zero-mean, the reference scaled by the projection of the estimate onto it; in dB.
  SI-SDRi is the estimate's SI-SDR minus the unprocessed mixture's.
- SDR/SIR/SAR: BSS Eval v3 (Vincent, Gribonval & Févotte, 2006) as computed by
  ``mir_eval.separation.bss_eval_sources``, sources matched in the given order.
  mir_eval 0.8 marks its separation module deprecated (removal in 0.9): the extra pins
  ``mir_eval<0.9`` until chorus moves to another BSS Eval implementation.
- Mel distance: mean absolute difference of natural-log mel spectrograms (64 bands).
- CLAP-A: cosine similarity of CLAP audio embeddings of estimate and reference; CLAP-T:
  cosine similarity of the estimate's audio embedding and the source's text prompt
  (as in the language-queried separation literature, e.g. ZeroSep's evaluation).

Signals are ``[samples]`` float arrays at one sample rate; lengths are cut to the shortest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import SeparationError
from .melspec import MelSettings, log_mel


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(reference), len(estimate))
    if n == 0:
        raise SeparationError("cannot score empty signals")
    return np.asarray(reference[:n], np.float64), np.asarray(estimate[:n], np.float64)


def si_sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = 1e-12) -> float:
    """Scale-invariant signal-to-distortion ratio in dB; −inf for a silent estimate (it
    recovers nothing of the reference), as BSS Eval's SDR is for it."""
    reference, estimate = _pair(reference, estimate)
    if not np.any(estimate):
        return -math.inf
    reference = reference - reference.mean()
    estimate = estimate - estimate.mean()
    target = (np.dot(estimate, reference) / (np.dot(reference, reference) + eps)) * reference
    residual = estimate - target
    return float(10 * np.log10((np.dot(target, target) + eps) / (np.dot(residual, residual) + eps)))


def si_sdr_improvement(reference: np.ndarray, estimate: np.ndarray, mixture: np.ndarray) -> float:
    """SI-SDR of the estimate minus SI-SDR of the mixture, against the same reference (dB)."""
    return si_sdr(reference, estimate) - si_sdr(reference, mixture)


def bss_eval(references: list[np.ndarray], estimates: list[np.ndarray]) -> dict[str, list[float]]:
    """BSS Eval SDR, SIR, SAR (dB) per source, in the given order (mir_eval).

    A silent estimate scores −inf (SDR, SIR, SAR); the others are computed among the
    sources whose estimate is audible. A silent reference makes BSS Eval undefined: all
    values are NaN then.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            from mir_eval.separation import bss_eval_sources
        except ImportError as exc:
            raise SeparationError("BSS Eval needs mir_eval: pip install 'chorus-audio[separate]'") from exc

    n = min(min(len(r) for r in references), min(len(e) for e in estimates))
    ref = np.stack([np.asarray(r[:n], np.float64) for r in references])
    est = np.stack([np.asarray(e[:n], np.float64) for e in estimates])
    if not (np.abs(ref).sum(axis=1) > 0).all():
        nan = [math.nan] * len(references)
        return {"sdr": nan, "sir": list(nan), "sar": list(nan)}
    audible = np.flatnonzero(np.abs(est).sum(axis=1) > 0)
    scores = {key: [-math.inf] * len(references) for key in ("sdr", "sir", "sar")}
    if len(audible):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            sdr, sir, sar, _ = bss_eval_sources(ref[audible], est[audible], compute_permutation=False)
        for key, values in (("sdr", sdr), ("sir", sir), ("sar", sar)):
            for index, value in zip(audible, values.tolist()):
                scores[key][index] = value
    return scores


def mel_settings(sample_rate: int) -> MelSettings:
    """64-band mel analysis with a ~64 ms window and 1/4 hop at any rate."""
    n_fft = 1 << int(round(math.log2(0.064 * sample_rate)))
    return MelSettings(sample_rate, n_fft, n_fft // 4, 64, 0.0, sample_rate / 2)


def mel_distance(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Mean |log-mel(reference) − log-mel(estimate)| (natural log, 64 bands)."""
    reference, estimate = _pair(reference, estimate)
    settings = mel_settings(sample_rate)
    pad = settings.n_fft - len(reference)
    batch = torch.from_numpy(np.stack([reference, estimate]).astype(np.float32))
    if pad > 0:
        batch = torch.nn.functional.pad(batch, (0, pad))
    mels = log_mel(batch, settings)
    return float((mels[0] - mels[1]).abs().mean())


class ClapScorer:
    """CLAP audio/text embeddings (transformers ``ClapModel``) for CLAP-A and CLAP-T.

    Audio is resampled to the feature extractor's rate and cut into windows of its
    maximum length; window embeddings are averaged, so long files score deterministically.
    """

    def __init__(self, model, processor):
        self.model = model.eval()
        self.processor = processor

    @classmethod
    def from_pretrained(cls, source: str) -> "ClapScorer":
        from transformers import ClapModel, ClapProcessor

        from .errors import ModelLoadError

        try:
            return cls(ClapModel.from_pretrained(source), ClapProcessor.from_pretrained(source))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(source, f"cannot load a CLAP model: {exc}") from exc

    @torch.no_grad()
    def audio_embedding(self, waveform: np.ndarray, sample_rate: int) -> torch.Tensor:
        """Unit-norm ``[D]`` embedding of a ``[samples]`` waveform."""
        from ..audio import resample

        extractor = self.processor.feature_extractor
        rate = int(extractor.sampling_rate)
        audio = resample(np.asarray(waveform, np.float32), sample_rate, rate)
        window = int(extractor.nb_max_samples)
        windows = [audio[s:s + window] for s in range(0, max(len(audio), 1), window)]
        features = extractor(windows, sampling_rate=rate, return_tensors="pt", truncation="rand_trunc",
                             padding="repeatpad")
        output = self.model.get_audio_features(input_features=features["input_features"])
        embeddings = getattr(output, "pooler_output", output)
        return torch.nn.functional.normalize(embeddings.mean(dim=0), dim=0)

    @torch.no_grad()
    def text_embedding(self, text: str) -> torch.Tensor:
        """Unit-norm ``[D]`` embedding of a text prompt."""
        tokens = self.processor.tokenizer([text], return_tensors="pt", padding=True)
        output = self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        embeddings = getattr(output, "pooler_output", output)
        return torch.nn.functional.normalize(embeddings[0], dim=0)


@dataclass
class SourceScores:
    """All scores of one estimated source (dB for the SDR family; NaN where not computed)."""

    name: str
    si_sdr: float
    si_sdri: float = math.nan
    sdr: float = math.nan
    sir: float = math.nan
    sar: float = math.nan
    mel_distance: float = math.nan
    clap_a: float = math.nan
    clap_t: float = math.nan


def matched_lengths(references: list[np.ndarray], estimates: list[np.ndarray], names: list[str],
                    sample_rate: int, trim: bool) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """References and estimates of equal lengths, and the seconds cut from each pair.

    Lengths must match (:class:`SeparationError` naming the first that does not), unless
    ``trim``: then each pair is cut to the shorter of the two."""
    cut = []
    for name, ref, est in zip(names, references, estimates):
        if len(ref) != len(est) and not trim:
            raise SeparationError(f"{name}: the estimate holds {len(est) / sample_rate:.3f} s but its reference "
                                  f"{len(ref) / sample_rate:.3f} s; pass --trim to score the common part")
        cut.append(abs(len(ref) - len(est)) / sample_rate)
    pairs = [(ref[:min(len(ref), len(est))], est[:min(len(ref), len(est))]) for ref, est in zip(references, estimates)]
    return [r for r, _ in pairs], [e for _, e in pairs], cut


def score_separation(references: list[np.ndarray], estimates: list[np.ndarray], sample_rate: int,
                     mixture: np.ndarray | None = None, names: list[str] | None = None,
                     prompts: list[str] | None = None, clap: ClapScorer | None = None,
                     trim: bool = False) -> list[SourceScores]:
    """Score estimates against references, matched by position; lengths must match
    unless ``trim`` (see :func:`matched_lengths`).

    SI-SDRi needs the ``mixture``; CLAP-A needs ``clap``; CLAP-T needs ``clap`` and one
    prompt per source.
    """
    if len(references) != len(estimates):
        raise SeparationError(f"{len(references)} references but {len(estimates)} estimates")
    if prompts is not None and len(prompts) != len(estimates):
        raise SeparationError(f"{len(prompts)} prompts for {len(estimates)} estimates")
    names = names or [f"source {i + 1}" for i in range(len(estimates))]
    references, estimates, _ = matched_lengths(references, estimates, names, sample_rate, trim)
    bss = bss_eval(references, estimates)
    scores = []
    for k, (ref, est) in enumerate(zip(references, estimates)):
        row = SourceScores(names[k], si_sdr(ref, est), sdr=bss["sdr"][k], sir=bss["sir"][k], sar=bss["sar"][k],
                           mel_distance=mel_distance(ref, est, sample_rate))
        if mixture is not None:
            row.si_sdri = si_sdr_improvement(ref, est, mixture)
        if clap is not None:
            est_embedding = clap.audio_embedding(est, sample_rate)
            row.clap_a = float(est_embedding @ clap.audio_embedding(ref, sample_rate))
            if prompts is not None:
                row.clap_t = float(est_embedding @ clap.text_embedding(prompts[k]))
        scores.append(row)
    return scores
