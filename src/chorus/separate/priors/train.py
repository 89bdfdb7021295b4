"""Training a source prior on single-source clips (EDM denoising, EMA weights, resumable).

Clips are decoded once at the prior's rate and scaled to a common RMS
(:data:`TRAIN_RMS`); each step draws random crops of ``segment_seconds`` with a random
gain of ±``gain_db`` (so the prior covers the levels sources take inside mixtures),
maps them to compressed spectrograms and takes one AdamW step on the EDM loss
(:mod:`chorus.separate.priors.edm`). A class-conditional prior draws the class first,
uniformly, then a clip of that class.

Training runs through chorus's one training step (:class:`chorus.train.step.TrainStep`):
linear warm-up of the learning rate, then a cosine decay to a tenth of it
(:class:`chorus.train.schedule.WarmupCosine`), gradient clipping at norm 1 and an EMA of
the weights (:class:`chorus.train.ema.WeightEMA`) after every step. Every
``checkpoint_every`` steps the full training state (weights, EMA, optimiser moments,
random state) goes to ``checkpoint/`` in the output folder (:mod:`chorus.train.checkpoint`);
running again with the same settings resumes from it, and a larger ``steps`` continues
training. The prior itself (EMA weights) is written at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import Field, model_validator

from ...data.loading import FailedClip, iter_clips
from ...data.manifest import Clip
from ...fileio import locks_folder
from ...progress import ProgressFactory, resolve
from ...schema import FrozenModel
from ...seeding import generator as seeded_generator
from ...train.checkpoint import load_checkpoint, save_checkpoint
from ...train.ema import WeightEMA
from ...train.schedule import WarmupCosine
from ...train.step import TrainStep
from ..errors import SeparationError
from .edm import SIGMA_DATA, training_loss
from .model import SourcePrior
from .network import NetworkConfig, TFAttentionNet
from .spectral import SpectralConfig, analysis, check_representation

TRAIN_RMS = 0.1
"""RMS every training clip is scaled to; separation scales mixtures to match."""
FLOOR = 0.1
"""The cosine decays the learning rate to this fraction of its peak."""
CLASS_KEYS = ("label", "group")


class PriorTrainConfig(FrozenModel):
    """Everything that shapes a prior: signal (Hz, s, STFT sizes in samples), network
    sizes (:class:`~.network.NetworkConfig`) and optimisation."""

    sample_rate: int = 16000
    segment_seconds: float = Field(1.0, description="training crop length, s")
    n_fft: int = 256
    hop: int = 64
    channels: int = 48
    depth: int = 4
    heads: int = 4
    patch_freq: int = 4
    patch_time: int = 2
    batch_size: int = 16
    steps: int = 2000
    learning_rate: float = Field(1e-3, description="peak AdamW learning rate")
    warmup_steps: int = Field(100, description="linear learning-rate warm-up, steps")
    ema_decay: float = Field(0.999, description="decay of the weights' EMA, per step")
    gain_db: float = Field(6.0, description="crops get a random gain within ±gain_db, dB")
    seed: int = 0
    checkpoint_every: int = Field(100, description="steps between resumable checkpoints")
    class_conditional: bool = False
    class_key: str = Field("label", description="where a class-conditional prior reads classes: label | group")
    representation: str = "magnitude"

    @model_validator(mode="after")
    def _check(self) -> "PriorTrainConfig":
        if self.class_key not in CLASS_KEYS:
            raise SeparationError(f"class_key must be one of {CLASS_KEYS}, got {self.class_key!r}")
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise SeparationError("steps, batch_size and checkpoint_every must be positive")
        check_representation(self.representation, SeparationError)
        if self.segment_seconds * self.sample_rate < self.n_fft:
            raise SeparationError("segment_seconds is shorter than one STFT window")
        return self

    def resumable_with(self, other: "PriorTrainConfig") -> bool:
        """Same run except for the number of steps."""
        return {**self.model_dump(), "steps": 0} == {**other.model_dump(), "steps": 0}


@dataclass
class PriorTrainingSummary:
    """What a training run did. Times in seconds."""

    out_dir: Path
    steps: int
    resumed_from: int
    final_loss: float
    seconds: float
    clips: int
    labels: list[str]
    failures: list[FailedClip] = field(default_factory=list)


@dataclass
class _Corpus:
    """Decoded training audio: ``waveforms[i]`` ``[samples]`` with class ``classes[i]``."""

    waveforms: list[np.ndarray]
    classes: np.ndarray
    labels: list[str]


def _clip_class(clip: Clip, key: str) -> str:
    if key == "group":
        if clip.group is None:
            raise SeparationError(f"{clip.path}: a group-conditional prior needs a group for every clip")
        return clip.group
    if len(clip.labels) != 1:
        raise SeparationError(f"{clip.path}: a class-conditional prior needs exactly one label per clip, "
                              f"found {list(clip.labels)}")
    return clip.labels[0]


def load_corpus(clips: list[Clip], config: PriorTrainConfig, failures: list[FailedClip]) -> _Corpus:
    """Decode ``clips`` at the prior's rate, RMS-normalised; bad files go to ``failures``."""
    waveforms, names = [], []
    for index, wave in iter_clips(clips, config.sample_rate, failures):
        rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
        if rms == 0.0:
            continue
        waveforms.append((wave * (TRAIN_RMS / rms)).astype(np.float32))
        clip = clips[index]
        names.append(_clip_class(clip, config.class_key) if config.class_conditional
                     else ";".join(clip.labels) or (clip.group or ""))
    if not waveforms:
        raise SeparationError("no usable training audio (every clip failed to load or is silent)")
    labels = sorted(set(names))
    return _Corpus(waveforms, np.array([labels.index(n) for n in names]), labels)


def _draw_batch(corpus: _Corpus, config: PriorTrainConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops ``[B, samples]`` with random gains, and their class ids ``[B]``."""
    length = int(round(config.segment_seconds * config.sample_rate))
    crops, ids = [], []
    for _ in range(config.batch_size):
        if config.class_conditional:
            cls = int(torch.randint(len(corpus.labels), (1,), generator=gen))
            pool = np.flatnonzero(corpus.classes == cls)
            index = int(pool[int(torch.randint(len(pool), (1,), generator=gen))])
        else:
            index = int(torch.randint(len(corpus.waveforms), (1,), generator=gen))
        wave = corpus.waveforms[index]
        if wave.shape[0] < length:
            wave = np.pad(wave, (0, length - wave.shape[0]))
        start = int(torch.randint(wave.shape[0] - length + 1, (1,), generator=gen))
        gain = 10.0 ** (config.gain_db * (2 * float(torch.rand(1, generator=gen)) - 1) / 20.0)
        crops.append(torch.from_numpy(wave[start:start + length] * gain))
        ids.append(int(corpus.classes[index]))
    return torch.stack(crops), torch.tensor(ids)


def _spectral_scale(corpus: _Corpus, config: PriorTrainConfig) -> float:
    """The compression scale that gives training spectrograms RMS σ_data."""
    gen = seeded_generator(config.seed, "prior", "scale")
    plain = SpectralConfig(n_fft=config.n_fft, hop=config.hop, representation=config.representation)
    rms = torch.cat([analysis(_draw_batch(corpus, config, gen)[0], plain).flatten() for _ in range(4)]).square().mean().sqrt()
    return float(SIGMA_DATA / max(float(rms), 1e-8))


def _batch_loss(network: TFAttentionNet, corpus: _Corpus, config: PriorTrainConfig, spectral: SpectralConfig,
                gen: torch.Generator) -> torch.Tensor:
    """EDM loss of ``network`` on a batch drawn from ``corpus`` with ``gen``."""
    waves, ids = _draw_batch(corpus, config, gen)
    return training_loss(network, analysis(waves, spectral), gen, ids if config.class_conditional else None)


@locks_folder("out_dir")
def train_prior(clips: list[Clip], out_dir: str | Path, config: PriorTrainConfig = PriorTrainConfig(),
                name: str | None = None, max_seconds: float | None = None,
                progress: ProgressFactory | None = None) -> PriorTrainingSummary:
    """Train a prior on ``clips`` and write it to ``out_dir`` (resuming a checkpoint there).

    ``max_seconds`` stops early (after a checkpoint) when the wall-clock budget is spent.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures: list[FailedClip] = []
    corpus = load_corpus(list(clips), config, failures)
    torch.manual_seed(config.seed)
    network = TFAttentionNet(NetworkConfig(
        freq_bins=config.n_fft // 2, channels=config.channels, depth=config.depth, heads=config.heads,
        patch_freq=config.patch_freq, patch_time=config.patch_time,
        num_classes=len(corpus.labels) if config.class_conditional else 0,
        in_channels=1 if config.representation == "magnitude" else 2))
    ema = WeightEMA(network, config.ema_decay)
    optimizer = torch.optim.AdamW([{"params": list(network.parameters()), "peak_lr": config.learning_rate}],
                                  lr=config.learning_rate, weight_decay=0.01)
    gen = seeded_generator(config.seed, "prior", "batches")
    # Warm-up longer than the run: every step warms up, so the cosine's length is moot.
    schedule = WarmupCosine(max(config.steps, config.warmup_steps), config.warmup_steps, FLOOR)
    trainer = TrainStep(optimizer, lambda spectral: _batch_loss(network, corpus, config, spectral, gen), schedule,
                        max_grad_norm=1.0, after_update=ema.update)
    def resumable(record: dict) -> None:
        if not PriorTrainConfig(**record["config"]).resumable_with(config):
            raise SeparationError(f"{out_dir} holds a training run with other settings; choose another --out "
                                  f"or the same settings to resume")
        if record["labels"] != corpus.labels:
            raise SeparationError(f"{out_dir}: the checkpoint was trained on {record['labels']}, the data holds "
                                  f"{corpus.labels}")

    resumed = load_checkpoint(out_dir, network, trainer, {"batches": gen}, check=resumable)
    record = None if resumed is None else resumed.state
    if resumed is not None:
        ema.model.load_state_dict(resumed.tensors["ema"])
    start = trainer.step
    scale = _spectral_scale(corpus, config) if record is None else float(record["scale"])
    losses: list[float] = [] if record is None else list(record["losses"])
    elapsed = 0.0 if record is None else float(record["seconds"])
    spectral = SpectralConfig(n_fft=config.n_fft, hop=config.hop, alpha=0.5, scale=scale,
                              representation=config.representation)
    began = time.monotonic()
    bar = resolve(progress)(config.steps - start, "training prior")
    try:
        while trainer.step < config.steps:
            losses.append(trainer(spectral).item())
            bar.update(1)
            out_of_time = max_seconds is not None and time.monotonic() - began >= max_seconds
            if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps or out_of_time:
                save_checkpoint(out_dir, network, trainer, {
                    "config": config.model_dump(), "scale": scale, "labels": corpus.labels, "losses": losses,
                    "seconds": elapsed + time.monotonic() - began}, {"ema": ema.model.state_dict()}, {"batches": gen})
            if out_of_time:
                break
    finally:
        bar.close()
    step = trainer.step
    seconds = elapsed + time.monotonic() - began
    recent = losses[-50:]
    training = {**config.model_dump(), "steps_done": step, "seconds": round(seconds, 1),
                "final_loss": float(np.mean(recent)) if recent else float("nan"), "clips": len(corpus.waveforms)}
    labels = corpus.labels
    prior = SourcePrior(ema.model, spectral, config.sample_rate,
                        config.segment_seconds, name or "+".join(labels), labels, training)
    prior.save_pretrained(out_dir)
    return PriorTrainingSummary(out_dir, step, start, training["final_loss"], seconds, len(corpus.waveforms), labels,
                                failures)
