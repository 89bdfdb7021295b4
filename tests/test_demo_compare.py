"""The demo pipeline end to end on toy-cnn and tiny data; chorus compare; the probe baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from chorus.demo import DemoError, DemoSettings, run_demo
from chorus.evaluate.probe_baseline import fit_linear_head
from chorus.taskvec import TaskVector

TINY = DemoSettings(encoder="toy-cnn", species={"birds": 3, "insects": 2}, clips_per_species=6, seconds=0.3, epochs=1,
                    batch_size=8, lr=3e-3, head_lr=1e-2, lambda_factors=(0.5, 1.0),
                    merges={"mean": ("mean", {}), "ties": ("ties", {"density": 0.5})})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, TINY)


def test_demo_writes_report_numbers_and_every_model(demo):
    out, record = demo
    rows = {row["name"]: row for row in record["comparison"]["rows"]}
    assert [row["kind"] for row in record["comparison"]["rows"]] == ["probe", "probe", "individual", "individual",
                                                                      "joint", "merged", "merged"]
    assert rows["birds"]["normalized"] == rows["insects"]["normalized"] == 1.0
    assert set(rows["mean"]["groups"]) == {"birds", "insects"} and "transfer" in rows["ties"]
    assert set(record["comparison"]["gaps"]) == {"probe", "probe (logistic regression)", "mean", "ties"}
    assert record["comparison"]["group_sizes"] == {"birds": 12, "insects": 8}
    summary = record["summary"]
    assert summary["best_merge"] in ("mean", "ties")
    assert summary["normalized_accuracy"][summary["best_merge"]] == max(summary["normalized_accuracy"].values())
    assert {summary["lambda"]["mean"], summary["lambda"]["ties"]} <= {0.5, 1.0}
    assert set(summary["best_beats_probes"]) == {"probe", "probe (logistic regression)"}
    # the head-only probe's deltas are zero: its encoder is the base
    assert not TaskVector.load(out / "finetune" / "probe-birds" / "taskvector").tensor("blocks.2.0.weight").any()
    page = (out / "report.html").read_text()
    assert "Summary" in page and "data:image/png;base64," in page and "http" not in page.split("<body>")[1]
    assert json.loads((out / "demo.json").read_text())["summary"] == summary
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


def test_linear_probe_head_reads_raw_features():
    from sklearn.linear_model import LogisticRegression

    gen = np.random.default_rng(0)
    centers = gen.normal(size=(3, 6)) * 3
    labels = [f"c{i}" for i in gen.integers(0, 3, 60)]
    x = np.stack([centers[int(label[1])] for label in labels]) * 5 + 40 + gen.normal(size=(60, 6))
    weight, bias = fit_linear_head(torch.from_numpy(x).float(), labels, ["c0", "c1", "c2"])
    predicted = (torch.from_numpy(x).float() @ weight.T + bias).argmax(dim=1).numpy()
    assert np.mean(np.array([f"c{i}" for i in predicted]) == np.array(labels)) == 1.0
    two = [label if label != "c2" else "c1" for label in labels]
    weight, bias = fit_linear_head(torch.from_numpy(x).float(), two, ["c0", "c1"])
    reference = LogisticRegression(max_iter=2000).fit((x - x.mean(0)) / (x.std(0) + 1e-6), two)
    ours = (torch.from_numpy(x).float() @ weight.T + bias).argmax(dim=1).numpy()
    assert (np.array(["c0", "c1"])[ours] == reference.predict((x - x.mean(0)) / (x.std(0) + 1e-6))).all()
