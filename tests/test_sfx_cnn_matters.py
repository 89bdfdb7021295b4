"""Acceptance: on the synthetic data the real sfx-cnn weights matter.

A logistic-regression probe on the pooled features of the pretrained sfx-cnn (layer chosen
on the validation split) must beat the same architecture with random weights by at least
10 accuracy points on the test split.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from chorus.audio import load_audio
from chorus.data.synth import generate_dataset, make_config
from chorus.encoders import load_encoder
from chorus.encoders.batching import pooled_features

ACCEPTANCE_DATA = dict(
    groups=("birds", "anurans", "insects", "mammals"), species=3, clips_per_species=16, seconds=1.0,
    sample_rate=44_100, splits=(0.5, 1 / 6, 1 / 3), seed=0,
)
"""12 species, 192 clips of 1 s. Seeds 0, 1 and 2 measured gaps of 17, 23 and 28 points."""

COUNTS = {"train": 96, "valid": 36, "test": 60}


def _probe_accuracy(encoder, waveforms, labels, splits) -> float:
    """Test accuracy of the layer whose logistic-regression probe is best on validation."""
    best_valid, best_test = -1.0, 0.0
    for features in pooled_features(encoder, waveforms, batch_size=16):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
        probe.fit(features[splits == "train"], labels[splits == "train"])
        valid = probe.score(features[splits == "valid"], labels[splits == "valid"])
        if valid > best_valid:
            best_valid = valid
            best_test = probe.score(features[splits == "test"], labels[splits == "test"])
    return best_test


def test_pretrained_sfx_cnn_beats_random_weights_by_ten_points(tmp_path):
    manifest = generate_dataset(tmp_path, make_config(**ACCEPTANCE_DATA))
    pretrained = load_encoder("sfx-cnn", pretrained=True).eval()
    random = load_encoder("sfx-cnn", pretrained=False, seed=0).eval()
    waveforms = [load_audio(manifest.root / c.path, pretrained.sample_rate)[0] for c in manifest.clips]
    labels = np.array([c.labels[0] for c in manifest.clips])
    splits = np.array([c.split for c in manifest.clips])
    assert {s: int((splits == s).sum()) for s in ("train", "valid", "test")} == COUNTS
    with_weights = _probe_accuracy(pretrained, waveforms, labels, splits)
    without = _probe_accuracy(random, waveforms, labels, splits)
    assert with_weights < 1.0  # the task is not trivial
    assert with_weights - without >= 0.10, (with_weights, without)
