"""The protocols results are published with: `chorus probe --refit`, `--folds` (k-fold
cross-validation from a manifest's fold column) and stratified bootstrap intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _probe_data import tone_manifest
from chorus.data.manifest import Manifest, write_manifest
from chorus.metrics import bootstrap_interval, stratified_resamples, task_metrics

FOLDS = 4
PER_CLASS = 8  # 3 classes x 8 clips: 2 clips per class in each of 4 folds, 6 clips per fold


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    return root, tone_manifest(root, per_class=PER_CLASS)


def _with_folds(manifest: Manifest, folds: list[str], path) -> None:
    write_manifest(Manifest(manifest.clips, manifest.root, extra={"Fold": folds}), path)


@pytest.fixture(scope="module")
def fold_manifest(tones):
    root, manifest = tones
    # clip i of each class in fold i % 4 + 1; the split column must be ignored
    _with_folds(manifest, [str(i % PER_CLASS % FOLDS + 1) for i in range(len(manifest.clips))], root / "folds.csv")
    return root / "folds.csv"


@pytest.fixture(scope="module")
def split_manifest(tones):
    root, manifest = tones
    write_manifest(manifest, root / "splits.csv")
    return root / "splits.csv"


def _probe(run_cli, manifest, out, *options):
    """Run `chorus probe` with toy-cnn; its output and probe.json."""
    result = run_cli("probe", "--encoder", "toy-cnn", "--data", manifest, "--out", out, *options)
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "probe.json").read_text())


def _probe_folds(run_cli, manifest, out):
    return _probe(run_cli, manifest, out, "--folds", "--refit", "--pooling", "mean,max", "--C", "0.1,1",
                  "--bootstrap", "200", "--seed", "3", "--noise-snr", "0")


def test_folds_and_refit_end_to_end(fold_manifest, tmp_path, run_cli):
    result, report = _probe_folds(run_cli, fold_manifest, tmp_path / "a")
    assert report["folds"] == ["1", "2", "3", "4"] and report["refit"] is True
    assert report["clips"] == {f"fold {k}": 6 for k in range(1, FOLDS + 1)}
    condition = report["conditions"]["default"]
    # one extraction of the 24 clips (clean, and with noise) shared by every fold
    assert condition["extraction"] == {"computed": 48, "reused": 0}
    assert list(condition["folds"]) == report["folds"]
    for fold, run in condition["folds"].items():
        assert run["clips"] == {"train": 12, "valid": 6, "test": 6}, fold
        assert run["refit"]["train_clips"] == 18  # train + valid
        assert run["refit"]["pooling"] in ("mean", "max") and run["refit"]["C"] in (0.1, 1.0)
        low, high = run["poolings"]["mean"]["best"]["ci95"]
        assert low <= run["poolings"]["mean"]["best"]["test"]["accuracy"] <= high
    cv = condition["cv"]
    assert cv["folds"] == report["folds"] and "next fold" in cv["valid_rule"]
    for probe, stats in [*cv["poolings"].items(), ("refit", cv["refit"])]:
        per_fold = stats["per_fold"]["accuracy"]
        runs = [run["refit"] if probe == "refit" else run["poolings"][probe]["best"]
                for run in condition["folds"].values()]
        assert per_fold == [run["test"]["accuracy"] for run in runs]
        assert len(per_fold) == FOLDS
        assert stats["mean"]["accuracy"] == pytest.approx(np.mean(per_fold))
        assert stats["std"]["accuracy"] == pytest.approx(np.std(per_fold, ddof=1))
        assert set(stats["mean"]) == {"accuracy", "macro_f1"}
    noisy = [run["noise"]["0"]["mean"]["best"]["accuracy"] for run in condition["folds"].values()]
    assert condition["noise"]["0"]["mean"]["best"]["accuracy"] == pytest.approx(np.mean(noisy))
    layer_means = [slot["test"]["accuracy"] for slot in condition["poolings"]["mean"]["slots"]]
    assert layer_means[0] == pytest.approx(np.mean([run["poolings"]["mean"]["slots"][0]["test"]["accuracy"]
                                                    for run in condition["folds"].values()]))
    output = " ".join(result.output.split())
    assert "4-fold cross-validation" in output and "±" in output and "refit" in output
    html = (tmp_path / "a" / "report.html").read_text()
    assert "4-fold cross-validation" in html and "fold 4" in html and "95% CI" in html

    _, same = _probe_folds(run_cli, fold_manifest, tmp_path / "b")
    assert same["conditions"]["default"]["cv"] == cv  # same seed, same numbers
    assert same["conditions"]["default"]["folds"] == condition["folds"]


def test_refit_retrains_the_chosen_probe_on_train_and_valid(split_manifest, tmp_path, run_cli):
    result, report = _probe(run_cli, split_manifest, tmp_path, "--pooling", "mean,attention", "--C", "1", "--lr",
                            "0.1", "--epochs", "6", "--refit")
    assert report["refit"] is True and report["folds"] is None and report["bootstrap"] == 1000
    clips = report["clips"]
    refit = report["conditions"]["default"]["refit"]
    assert refit["train_clips"] == clips["train"] + clips["valid"] == 21
    poolings = report["conditions"]["default"]["poolings"]
    chosen = min(poolings, key=lambda p: (-poolings[p]["best"]["valid"]["accuracy"], poolings[p]["best"]["valid_loss"]))
    assert refit["pooling"] == chosen and refit["valid"] == poolings[chosen]["best"]["valid"]
    assert refit["layer"] == poolings[chosen]["best"]["layer"]
    if chosen == "attention":
        assert refit["learning_rate"] == 0.1 and 1 <= refit["epochs"] <= 6
    else:
        assert refit["C"] == 1.0
    low, high = refit["ci95"]
    assert low <= refit["test"]["accuracy"] <= high
    assert "refit on train + valid" in " ".join(result.output.split())


def test_attention_refit_trains_for_the_chosen_epochs(split_manifest, tmp_path, run_cli):
    _, report = _probe(run_cli, split_manifest, tmp_path, "--pooling", "attention", "--lr", "0.1", "--epochs", "5",
                       "--refit", "--bootstrap", "0")
    best = report["conditions"]["default"]["poolings"]["attention"]["best"]
    refit = report["conditions"]["default"]["refit"]
    # one full batch per epoch: the refit trains for the epoch at which the kept weights were reached
    assert refit["pooling"] == "attention" and refit["epochs"] == max(1, best["best_step"])
    assert "ci95" not in refit and "ci95" not in best


@pytest.mark.parametrize("folds, message", [
    (None, "needs a 'fold' column"),
    (["1", "2", "4"], "fold 3 has no clips"),
    (["1", "2"], "at least 3 folds"),
    (["1", "", "2", "3"], "has no fold"),
])
def test_folds_need_a_fold_column_with_every_fold(tones, tmp_path, run_cli, folds, message):
    root, manifest = tones
    path = root / f"bad_{len(folds or [])}.csv"  # beside the clips: paths may not leave the manifest's folder
    if folds is None:
        write_manifest(manifest, path)
    else:
        _with_folds(manifest, [folds[i % len(folds)] for i in range(len(manifest.clips))], path)
    result = run_cli("probe", "--encoder", "toy-cnn", "--data", path, "--out", tmp_path / "out", "--folds")
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and message in output and path.name in output, output
    assert "Traceback" not in result.output


def _noisy_scores(clips: int, seed: int, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = np.repeat(np.arange(classes), clips // classes)
    scores = rng.standard_normal((len(targets), classes))
    scores[np.arange(len(targets)), targets] += 1.0
    return scores, targets


def test_bootstrap_interval_contains_the_estimate_narrows_and_is_seeded():
    widths = []
    for clips in (40, 400):
        scores, targets = _noisy_scores(clips, seed=1)
        accuracy = task_metrics("multiclass", scores, targets)["accuracy"]
        low, high = bootstrap_interval(scores, targets, seed=5)
        assert low <= accuracy <= high and low < high
        assert bootstrap_interval(scores, targets, seed=5) == (low, high)
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ten times the clips: about a third of the width


def test_bootstrap_resamples_within_each_class():
    strata = np.array([0, 0, 1, 2, 2, 2, 1])
    rows = stratified_resamples(strata, 50, seed=0)
    assert rows.shape == (50, 7)
    for resample in rows:
        assert np.bincount(strata[resample], minlength=3).tolist() == [2, 2, 3]
    assert (stratified_resamples(strata, 50, seed=0) == rows).all()
    assert not (stratified_resamples(strata, 50, seed=1) == rows).all()


def test_bootstrap_interval_of_multilabel_map():
    rng = np.random.default_rng(0)
    truth = (rng.random((60, 5)) < 0.3).astype(np.float32)
    scores = truth + rng.standard_normal(truth.shape)
    value = task_metrics("multilabel", scores, truth)["map"]
    low, high = bootstrap_interval(scores, truth, resamples=300)
    assert low <= value <= high and 0 < high - low < 0.5
