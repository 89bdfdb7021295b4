"""``chorus tv`` commands and Hub sharing against a local fake Hub (no network)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from chorus.encoders import load_encoder
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry
from chorus.taskvec import TaskVector
from chorus.taskvec.errors import HubError
from chorus.taskvec.hub import pull, push

from _fakehub import FakeHub


@pytest.fixture(scope="module")
def vector_dir(tmp_path_factory):
    base = load_encoder("toy-cnn")
    tuned = load_encoder("toy-cnn")
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(0.01)
    torch.manual_seed(0)
    model = ClassifierModel(tuned, [HeadEntry(group="birds", labels=["birds/sp01", "birds/sp02"])],
                            ClassifierSettings(layer="conv3"))
    return TaskVector.from_classifier(base, model).save(tmp_path_factory.mktemp("tv") / "birds",
                                                        creator="Lab", license="cc-by-4.0")


def test_info_shows_the_manifest(run_cli, vector_dir):
    result = run_cli("tv", "info", vector_dir, "--tensors")
    assert result.exit_code == 0, result.output
    assert "birds" in result.output and "toy-cnn" in result.output and "blocks.0.0.weight" in result.output
    as_json = run_cli("tv", "info", vector_dir, "--json")
    assert json.loads(as_json.output)["group"] == "birds"


def test_info_on_a_tampered_vector_exits_with_a_clear_error(run_cli, vector_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(vector_dir, copy)
    data = bytearray((copy / "head.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "head.safetensors").write_bytes(bytes(data))
    result = run_cli("tv", "info", copy)
    assert result.exit_code == 2
    assert "error:" in result.output and "head.safetensors" in result.output and "sha256" in result.output


def test_apply_writes_a_model_equal_to_the_finetuned_one(run_cli, vector_dir, tmp_path):
    result = run_cli("tv", "apply", vector_dir, "--out", tmp_path / "model")
    assert result.exit_code == 0, result.output
    model = ClassifierModel.from_pretrained(tmp_path / "model")
    assert model.labels == ["birds/sp01", "birds/sp02"]
    base = load_encoder("toy-cnn")
    assert torch.equal(model.encoder.blocks[0][0].weight, base.blocks[0][0].weight + 0.01)
    other = run_cli("tv", "apply", vector_dir, "--out", tmp_path / "x", "--random-init", "--seed", "3")
    assert other.exit_code == 2 and "fingerprint" in other.output


def test_diff_and_convert(run_cli, vector_dir, tmp_path):
    converted = run_cli("tv", "convert", vector_dir, tmp_path / "half", "--dtype", "float16", "--density", "0.5")
    assert converted.exit_code == 0, converted.output
    assert TaskVector.load(tmp_path / "half").manifest.storage.density == 0.5
    result = run_cli("tv", "diff", vector_dir, tmp_path / "half", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["labels_shared"] == ["birds/sp01", "birds/sp02"]
    assert 0.5 < report["cosine"] < 1.0
    table = run_cli("tv", "diff", vector_dir, vector_dir, "--top", "3")
    assert "overall cosine 1" in table.output


def test_push_and_pull_through_a_hub(vector_dir, tmp_path):
    hub = FakeHub(tmp_path / "hub")
    push(vector_dir, "lab/birds-tau", api=hub, private=True)
    remote = tmp_path / "hub" / "lab" / "birds-tau"
    assert sorted(p.name for p in remote.iterdir()) == ["README.md", "deltas.safetensors", "head.safetensors",
                                                         "taskvector.json"]
    card = (remote / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: chorus" in card and "license: cc-by-4.0" in card
    assert "chorus tv pull lab/birds-tau" in card and hub.created == {"lab/birds-tau": True}
    pulled = pull("lab/birds-tau", tmp_path / "pulled", api=hub)
    assert pulled.manifest == TaskVector.load(vector_dir).manifest
    with pytest.raises(HubError, match="could not pull lab/unknown"):
        pull("lab/unknown", tmp_path / "nothing", api=hub)


def test_pulled_files_are_validated(vector_dir, tmp_path):
    hub = FakeHub(tmp_path / "hub")
    push(vector_dir, "lab/birds-tau", api=hub)
    remote = tmp_path / "hub" / "lab" / "birds-tau" / "deltas.safetensors"
    remote.write_bytes(remote.read_bytes()[:-8])
    from chorus.tensorfile import TensorFileError

    with pytest.raises(TensorFileError):
        pull("lab/birds-tau", tmp_path / "pulled", api=hub)


def test_cli_push_and_pull_offline_give_typed_errors(run_cli, vector_dir, tmp_path):
    pulled = run_cli("tv", "pull", "someone/nothing", "--out", tmp_path / "p")
    assert pulled.exit_code == 2 and "could not pull someone/nothing" in pulled.output
    before = sorted(path.name for path in vector_dir.iterdir())
    pushed = run_cli("tv", "push", vector_dir, "someone/nothing")
    assert pushed.exit_code == 2 and "could not push" in pushed.output
    assert sorted(path.name for path in vector_dir.iterdir()) == before and "README.md" not in before


def test_cli_push_and_pull_with_the_hub_client(run_cli, vector_dir, tmp_path, monkeypatch):
    import huggingface_hub

    hub = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: hub)
    assert run_cli("tv", "push", vector_dir, "lab/birds-tau").exit_code == 0
    result = run_cli("tv", "pull", "lab/birds-tau", "--out", tmp_path / "pulled")
    assert result.exit_code == 0, result.output
    assert "birds for toy-cnn, 2 labels" in result.output
