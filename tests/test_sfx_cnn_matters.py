"""Acceptance: on the synthetic data the real sfx-cnn weights matter.

A logistic-regression probe on the pooled features of the pretrained sfx-cnn (best layer
chosen on the validation split) must beat the same architecture with random weights by at
least 10 accuracy points on the test split.
"""

from __future__ import annotations

from chorus.data.synth import generate_dataset, make_config
from chorus.demo import compare

ACCEPTANCE_DATA = dict(
    groups=("birds", "anurans", "insects", "mammals"), species=4, clips_per_species=12, seconds=1.5,
    sample_rate=44_100, splits=(0.5, 1 / 6, 1 / 3), seed=0,
)
"""16 species, 192 clips of 1.5 s: 6 train, 2 valid and 4 test clips per species."""


def test_pretrained_sfx_cnn_beats_random_weights_by_ten_points(tmp_path):
    manifest = generate_dataset(tmp_path, make_config(**ACCEPTANCE_DATA))
    result = compare("sfx-cnn", manifest, seed=0)
    assert result.clips == {"train": 96, "valid": 32, "test": 64} and not result.failed
    best = {score.layer: score for score in result.layers}
    pretrained = best[result.best_pretrained].pretrained_test
    random = best[result.best_random].random_test
    assert pretrained < 1.0  # the task is not trivial
    assert pretrained - random >= 0.10, (pretrained, random)
