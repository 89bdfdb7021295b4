"""The first demo: does the pretrained default encoder help on the synthetic data?

Generates the synthetic bioacoustic dataset, extracts time-averaged features of every
layer of an encoder with its pretrained weights and with random weights of the same
architecture, and scores a logistic-regression probe per layer on the test split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .data.loading import FailedClip, iter_clips
from .data.manifest import Manifest
from .data.synth import SynthConfig, generate_dataset
from .encoders import Encoder, load_encoder, pooled_features
from .errors import ChorusError
from .fileio import write_json
from .progress import ProgressFactory, resolve

DEMO_DATA = SynthConfig(
    groups=("birds", "anurans", "insects", "mammals"), species=6,
    species_per_group={"birds": 10, "mammals": 4}, clips_per_species=15, seconds=2.0,
)
"""Four taxon groups, one species-rich (birds) and one small (mammals)."""


@dataclass(frozen=True)
class LayerScore:
    """Probe accuracy (fraction correct) of one layer, pretrained and random weights."""

    layer: str
    dim: int
    pretrained_valid: float
    pretrained_test: float
    random_valid: float
    random_test: float


@dataclass(frozen=True)
class DemoResult:
    """Per-layer scores; the best layer of each model chosen on the validation split and
    its test accuracy overall and per group."""

    encoder: str
    layers: list[LayerScore]
    best_pretrained: str
    best_random: str
    groups: dict[str, tuple[float, float]]
    """group -> (pretrained, random) test accuracy of each model's best layer."""
    clips: dict[str, int]
    failed: list[str]

    @property
    def margin(self) -> float:
        """Best-layer test accuracy of pretrained minus random weights."""
        by_name = {s.layer: s for s in self.layers}
        return by_name[self.best_pretrained].pretrained_test - by_name[self.best_random].random_test


class DemoError(ChorusError):
    """The demo could not run (e.g. no clip of a split could be loaded)."""


def fit_probe(train_x: np.ndarray, train_y: Sequence[str]):
    """A standardised multinomial logistic-regression probe fitted on ``train_x [clips, features]``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train_x, list(train_y))


def layer_predictions(features: Sequence[np.ndarray], labels: Sequence[str], splits: Sequence[str]) -> list[np.ndarray]:
    """Per layer, the predicted label of every clip by a probe fitted on the train split."""
    labels, splits = np.asarray(labels), np.asarray(splits)
    train = splits == "train"
    return [fit_probe(x[train], labels[train]).predict(x) for x in features]


def accuracy(predicted: np.ndarray, labels: Sequence[str], where: np.ndarray) -> float:
    """Fraction of ``where`` clips whose prediction equals the label (nan if none)."""
    labels = np.asarray(labels)
    return float(np.mean(predicted[where] == labels[where])) if where.any() else float("nan")


def encode_in_chunks(encoder: Encoder, waveforms: Sequence[np.ndarray], bar, chunk: int = 64) -> list[np.ndarray]:
    """Pooled features per layer (``[clips, features_l]``), advancing ``bar`` per clip."""
    parts = []
    for start in range(0, len(waveforms), chunk):
        parts.append(pooled_features(encoder, waveforms[start:start + chunk], batch_size=16))
        bar.update(len(waveforms[start:start + chunk]))
    return [np.concatenate(layer) for layer in zip(*parts)]


def compare(encoder_name: str, manifest: Manifest, *, seed: int = 0,
            progress: ProgressFactory | None = None) -> DemoResult:
    """Probe every layer of ``encoder_name`` pretrained and with random weights (``seed``).

    Clips whose audio fails to load are reported in the result and left out.
    """
    failed: list[FailedClip] = []
    pretrained = load_encoder(encoder_name, pretrained=True)
    loaded = list(iter_clips(manifest.clips, pretrained.sample_rate, failed))
    kept = [manifest.clips[i] for i, _ in loaded]
    waveforms = [w for _, w in loaded]
    labels = [c.label for c in kept]
    splits = np.array([c.split for c in kept])
    groups = np.array([c.group for c in kept])
    if not (splits == "train").any() or not (splits == "test").any():
        raise DemoError("no loadable clip in the train or test split")
    predictions = {}
    for kind, encoder in (("pretrained", pretrained),
                          ("random", load_encoder(encoder_name, pretrained=False, seed=seed))):
        bar = resolve(progress)(len(waveforms), f"{kind} {encoder_name}")
        try:
            predictions[kind] = layer_predictions(encode_in_chunks(encoder, waveforms, bar), labels, splits)
        finally:
            bar.close()
    scores = []
    for layer, (name, dim) in enumerate(zip(pretrained.layer_names, pretrained.layer_dims)):
        values = [accuracy(predictions[kind][layer], labels, splits == split)
                  for kind in ("pretrained", "random") for split in ("valid", "test")]
        scores.append(LayerScore(name, dim, *values))
    best_p = max(scores, key=lambda s: s.pretrained_valid)
    best_r = max(scores, key=lambda s: s.random_valid)
    p_pred = predictions["pretrained"][pretrained.layer_names.index(best_p.layer)]
    r_pred = predictions["random"][pretrained.layer_names.index(best_r.layer)]
    per_group = {g: (accuracy(p_pred, labels, (splits == "test") & (groups == g)),
                     accuracy(r_pred, labels, (splits == "test") & (groups == g)))
                 for g in sorted(set(groups))}
    counts = {s: int(np.sum(splits == s)) for s in ("train", "valid", "test")}
    return DemoResult(encoder_name, scores, best_p.layer, best_r.layer, per_group, counts,
                      [f"{f.clip.path}: {f.error.reason}" for f in failed])


def run_demo(out_dir: str | Path, *, config: SynthConfig | None = None, encoder: str = "sfx-cnn",
             progress: ProgressFactory | None = None) -> DemoResult:
    """Generate the data (``config``, default :data:`DEMO_DATA`) under ``out_dir/data``,
    compare pretrained and random weights, write ``out_dir/demo-results.json`` and return
    the result."""
    config = DEMO_DATA if config is None else config
    out_dir = Path(out_dir)
    manifest = generate_dataset(out_dir / "data", config, progress=progress)
    result = compare(encoder, manifest, seed=config.seed, progress=progress)
    write_json(out_dir / "demo-results.json", {**asdict(result), "margin": result.margin,
                                               "data": config.model_dump(mode="json")})
    return result
