"""The demo pipeline end to end on toy-cnn and tiny data (with the task-vector analysis);
chorus compare; the probe baseline."""

from __future__ import annotations

import json

import pytest

from chorus.demos.errors import DemoError
from chorus.demos.composition import CompositionDemoSettings, run_demo
from chorus.taskvec import TaskVector

TINY = CompositionDemoSettings(encoder="toy-cnn", species={"birds": 3, "insects": 2}, clips_per_species=6, seconds=0.3, epochs=1,
                    batch_size=8, lr=3e-3, head_lr=1e-2, lambda_factors=(0.5, 1.0), lmc_points=3,
                    merges={"mean": ("mean", {}), "ties": ("ties", {"density": 0.5})})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, TINY)


def test_demo_writes_report_numbers_and_every_model(demo):
    out, record = demo
    rows = {row["name"]: row for row in record["comparison"]["rows"]}
    assert [row["kind"] for row in record["comparison"]["rows"]] == ["probe", "individual", "individual", "joint",
                                                                      "merged", "merged"]
    assert rows["birds"]["normalized"] == rows["insects"]["normalized"] == 1.0
    assert set(rows["mean"]["groups"]) == {"birds", "insects"} and "transfer" in rows["ties"]
    assert set(record["comparison"]["gaps"]) == {"probe", "mean", "ties"}
    assert record["comparison"]["group_sizes"] == {"birds": 12, "insects": 8}
    summary = record["summary"]
    assert summary["best_merge"] in ("mean", "ties")
    assert summary["normalized_accuracy"][summary["best_merge"]] == max(summary["normalized_accuracy"].values())
    assert {summary["lambda"]["mean"], summary["lambda"]["ties"]} <= {0.5, 1.0}
    assert set(summary["best_beats_probes"]) == {"probe"}
    # fine-tuning started from the probe's head (LP-FT): its recorded accuracy is that of the probe row's head
    tuned = TaskVector.load(out / "finetune" / "birds" / "taskvector").manifest.training.settings
    assert tuned["head_init"] == "probe"
    page = (out / "report.html").read_text()
    assert "Summary" in page and "data:image/png;base64," in page and "http" not in page.split("<body>")[1]
    assert json.loads((out / "demo.json").read_text())["summary"] == summary
    analysis = record["analysis"]
    assert analysis["geometry"]["vectors"] == ["birds", "insects"] and "analyze" in record["timings_s"]
    assert analysis["connectivity"][0]["pair"] == ["birds", "insects"]
    assert analysis["connectivity"][0]["alpha"] == [0.0, 0.5, 1.0]
    assert [r["negated"] for r in analysis["negation"]] == ["birds", "insects"]
    assert analysis["spectra"]["pairs"][0]["cosine"] == analysis["geometry"]["whole_model"]["cosine"][0][1]
    assert json.loads((out / "demo.json").read_text())["analysis"] == analysis
    assert json.loads((out / "analysis" / "analysis.json").read_text()) == analysis
    assert "Task-vector analysis" in page and "Linear mode connectivity" in page
    # summary first, the analysis next, the long λ sweeps folded below
    assert page.index("Best merge") < page.index("<h2>Summary</h2>") < page.index("Task-vector analysis") \
        < page.index("Choosing λ")
    assert page.count("<details>") == len(record["sweeps"]) and "chosen λ" in page.split("<details>")[1]
    band_hz = analysis["spectra"]["band_hz"]
    assert len(band_hz) == analysis["spectra"]["n_mels"] and band_hz == sorted(band_hz) and band_hz[0] > 0
    for figure in ("cosine heatmap", "LMC curves", "spectral distance scatter"):
        assert f'<img alt="{figure}" src="data:image/png;base64,' in page
    merge_record = json.loads((out / "merged" / "ties" / "merge.json").read_text())
    assert merge_record["params"]["density"] == 0.5 and merge_record["lambda"] == summary["lambda"]["ties"]
    assert merge_record["calibration"] == summary["calibration"]["ties"]


def test_demo_rerun_reuses_stages_and_refuses_other_settings(demo):
    out, record = demo
    fingerprint = (out / "finetune" / "birds" / "taskvector" / "deltas.safetensors").stat().st_mtime_ns
    again = run_demo(out, TINY)
    assert again["summary"] == record["summary"]
    assert (out / "finetune" / "birds" / "taskvector" / "deltas.safetensors").stat().st_mtime_ns == fingerprint
    with pytest.raises(DemoError, match="other settings"):
        run_demo(out, TINY.model_copy(update={"epochs": 2}))


def test_cli_compare_on_the_demo_models(run_cli, demo, tmp_path):
    out, record = demo
    runs = out / "finetune"
    result = run_cli("compare", "--data", out / "data" / "temperate" / "manifest.csv", "--out", tmp_path,
                     "--individual", runs / "birds" / "model", "--individual", runs / "insects" / "model",
                     "--joint", runs / "joint" / "model", "--merged", out / "merged" / "mean",
                     "--transfer", out / "data" / "wetland" / "manifest.csv")
    assert result.exit_code == 0, result.output
    comparison = json.loads((tmp_path / "compare.json").read_text())
    names = [row["name"] for row in comparison["rows"]]
    assert names == ["birds", "insects", "joint", "mean"]
    expected = {row["name"]: row for row in record["comparison"]["rows"]}
    assert comparison["rows"][3]["overall"] == expected["mean"]["overall"]
    assert all("transfer" in row for row in comparison["rows"])
    assert (tmp_path / "compare.html").is_file() and "mean" in result.output


def test_compare_marks_groups_a_model_does_not_cover(run_cli, demo, tmp_path):
    out, _ = demo
    runs = out / "finetune"
    result = run_cli("compare", "--data", out / "data" / "temperate" / "manifest.csv", "--out", tmp_path,
                     "--joint", runs / "joint" / "model", "--merged", runs / "birds" / "model")
    assert result.exit_code == 0, result.output
    comparison = json.loads((tmp_path / "compare.json").read_text())
    partial = comparison["rows"][1]
    assert partial["not_covered"] == ["insects"] and set(partial["groups"]) == {"birds"}
    assert set(comparison["gaps"]["model"]) == {"birds"}  # no −1 gap for the group it cannot score
    page = (tmp_path / "compare.html").read_text()
    assert "not covered" in page and "-1.000" not in page
    assert "not covered" in result.output


def test_probe_vector_carries_the_lp_ft_probe_head_and_no_deltas(tmp_path):
    import torch
    from _toydata import tone_manifest

    from chorus.encoders import load_encoder
    from chorus.evaluate import layer_features
    from chorus.data.clipset import load_eval_audio
    from chorus.evaluate.probe_baseline import probe_vector
    from chorus.model import ClassifierSettings
    from chorus.train.probe_init import probe_head

    tones = tone_manifest(tmp_path).select(group="g1")
    encoder = load_encoder("toy-cnn")
    settings = ClassifierSettings(layer="conv3", clip_seconds=0.5)
    train = load_eval_audio(tones.select(split="train").clips, 16_000)
    valid = load_eval_audio(tones.select(split="valid").clips, 16_000)
    features = layer_features(encoder, settings, train), layer_features(encoder, settings, valid)
    vector = probe_vector(encoder, settings, "g1", train, valid, *features)
    assert all(not vector.tensor(name).any() for name in vector.keys())
    classes = vector.heads[0].labels
    targets = [torch.tensor([classes.index(c.labels[0]) for c in part.clips]) for part in (train, valid)]
    weight, bias, _ = probe_head(features[0], targets[0], features[1], targets[1], "multiclass", len(classes))
    (got_weight, got_bias), = vector.head_tensors()
    assert torch.equal(got_weight, weight) and torch.equal(got_bias, bias)
    assert vector.heads[0].calibration.clips == len(valid)


def test_cli_demo_prints_the_summary(run_cli, demo, monkeypatch):
    import chorus.demos.composition

    out, record = demo
    monkeypatch.setattr(chorus.demos.composition, "CompositionDemoSettings", lambda **overrides: TINY.model_copy(update=overrides))
    result = run_cli("demo", "--out", out, "--encoder", "toy-cnn", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "Best merge" in result.output and "report:" in result.output
    cosine = record["analysis"]["summary"]["mean_off_diagonal_cosine"]
    assert f"mean off-diagonal cosine {cosine:.3f}" in " ".join(result.output.split())
    assert "Spearman ρ" in result.output
    assert record["summary"]["best_merge"] in result.output
