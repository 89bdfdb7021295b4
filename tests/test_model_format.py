"""Model folders as Hugging Face users expect them: config.json + model.safetensors +
README.md, loaded from a folder or a (fake) Hub id, pushed and pulled; the first layout
still loads."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from safetensors import safe_open

from chorus.encoders import build_encoder, load_encoder
from chorus.hub import HubError
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry, ModelFileError
from chorus.model.hub import pull_model, push_model
from chorus.tensorfile import save_tensors

from _fakehub import FakeHub
from _mergedata import calibration, saved_vectors
from _predictdata import recordings

WAVES, LENGTHS = torch.randn(2, 8000, generator=torch.Generator().manual_seed(1)), torch.tensor([8000, 5000])


def _cli(*args):
    from typer.testing import CliRunner

    from chorus.cli.main import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args], catch_exceptions=False)


def _front(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """A model written by ``chorus merge`` from three toy vectors, one of them MIT-licensed."""
    root = tmp_path_factory.mktemp("merge")
    paths = saved_vectors(root / "vectors")
    from chorus.taskvec import TaskVector

    TaskVector.load(paths[0]).save(root / "licensed", license="mit")
    vectors = sum((["--vector", p] for p in [root / "licensed", *paths[1:]]), [])
    result = _cli("merge", "--method", "task_arithmetic", *vectors, "--out", root / "merged")
    assert result.exit_code == 0, result.output
    return root / "merged"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Every ``HfApi()`` chorus makes is a local fake Hub."""
    import huggingface_hub

    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: fake)
    return fake


def test_a_merged_model_folder_has_the_hub_layout(merged):
    assert {"README.md", "config.json", "merge.json", "model.safetensors"} <= {p.name for p in merged.iterdir()}
    assert not (merged / "model.json").exists() and not (merged / "encoder.safetensors").exists()
    config = json.loads((merged / "config.json").read_text())
    assert config["format"] == "chorus-model" and config["format_version"] == 2
    assert list(config["files"]) == ["model.safetensors"] and config["licenses"] == ["mit"]
    with safe_open(merged / "model.safetensors", "pt") as handle:
        names = list(handle.keys())
    assert {name.split(".")[0] for name in names} == {"encoder", "heads"}
    assert {"heads.0.weight", "heads.0.bias", "heads.2.bias"} <= set(names)
    card = (merged / "README.md").read_text()
    front = _front(card)
    assert front["library_name"] == "chorus" and front["license"] == "mit" and "toy-cnn" in front["tags"]
    assert 'chorus.load_model("MODEL")' in card and "| birds | birds/a |" in card


def test_from_pretrained_reads_a_folder_and_a_hub_id(merged, hub):
    local = ClassifierModel.from_pretrained(merged)
    shutil.copytree(merged, hub.root / "lab" / "merged")
    remote = ClassifierModel.from_pretrained("lab/merged")
    assert remote.labels == local.labels and remote.licenses == ["mit"]
    assert torch.equal(remote(WAVES, LENGTHS), local(WAVES, LENGTHS))
    with pytest.raises(HubError, match="could not pull lab/nothing"):
        ClassifierModel.from_pretrained("lab/nothing")
    with pytest.raises(ModelFileError, match="config.json: file not found"):
        ClassifierModel.from_pretrained(merged.parent / "not-there")


def _first_layout(directory, model: ClassifierModel) -> None:
    """Write ``model`` as chorus wrote models before config.json: model.json,
    encoder.safetensors (unprefixed) and heads.safetensors."""
    directory.mkdir()
    files = {"encoder.safetensors": save_tensors(directory / "encoder.safetensors", model.encoder.state_dict()),
             "heads.safetensors": save_tensors(directory / "heads.safetensors", model.head_tensors())}
    record = model.describe().model_dump(mode="json")
    for key in ("licenses", "metrics"):
        del record[key]
    (directory / "model.json").write_text(json.dumps({**record, "format_version": 1, "files": files}))


def _toy_model(name: str = "toy-cnn") -> ClassifierModel:
    torch.manual_seed(0)
    encoder = build_encoder({"family": "toy-cnn", "channels": [16, 32, 32]})
    encoder.name = name
    head = HeadEntry(group="g", labels=["a", "b"], calibration=calibration(["a", "b"], 0))
    return ClassifierModel(encoder, [head], ClassifierSettings(layer="conv2")).eval()


def test_the_first_layout_still_loads_and_pushes_converted(tmp_path, hub):
    model = _toy_model()
    _first_layout(tmp_path / "old", model)
    loaded = ClassifierModel.from_pretrained(tmp_path / "old")
    assert loaded.labels == ["a", "b"] and torch.equal(loaded(WAVES, LENGTHS), model(WAVES, LENGTHS))
    record = json.loads((tmp_path / "old" / "model.json").read_text())
    (tmp_path / "old" / "model.json").write_text(json.dumps({**record, "format_version": 2}))
    with pytest.raises(ModelFileError, match="format_version 2 is not supported"):
        ClassifierModel.from_pretrained(tmp_path / "old")
    (tmp_path / "old" / "model.json").write_text(json.dumps(record))
    before = sorted(p.name for p in (tmp_path / "old").iterdir())
    push_model(tmp_path / "old", "lab/old", api=hub)
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == before
    assert sorted(p.name for p in (hub.root / "lab" / "old").iterdir()) == ["README.md", "config.json",
                                                                           "model.safetensors"]
    pulled = pull_model("lab/old", tmp_path / "pulled", api=hub)
    assert torch.equal(pulled(WAVES, LENGTHS), model(WAVES, LENGTHS))
    assert 'chorus.load_model("lab/old")' in (tmp_path / "pulled" / "README.md").read_text()


def test_the_card_licence_comes_from_the_base_weights_and_the_vectors(tmp_path):
    model = _toy_model("sfx-cnn")  # the registry's sfx-cnn weights are CC BY 4.0
    model.save_pretrained(tmp_path / "sfx")
    card = (tmp_path / "sfx" / "README.md").read_text()
    assert _front(card)["license"] == "cc-by-4.0" and "| base weights licence | cc-by-4.0 |" in card
    assert "| g | a | 5 | 2 |" in card  # training / validation clips from the head's calibration
    model.licenses = ["mit"]
    model.save_pretrained(tmp_path / "both")
    front = _front((tmp_path / "both" / "README.md").read_text())
    assert front["license"] == "other" and front["license_name"] == "cc-by-4.0 AND mit"
    _toy_model().save_pretrained(tmp_path / "random")
    assert "license" not in _front((tmp_path / "random" / "README.md").read_text())


class _FailingHub(FakeHub):
    def upload_folder(self, **kwargs):
        raise OSError("connection reset")


def test_a_failed_push_leaves_no_files(merged, tmp_path):
    before = {p.name: p.read_bytes() for p in merged.iterdir()}
    with pytest.raises(HubError, match=f"could not push {merged} to lab/m: connection reset"):
        push_model(merged, "lab/m", api=_FailingHub(tmp_path / "hub"))
    assert {p.name: p.read_bytes() for p in merged.iterdir()} == before
    result = _cli("push", merged, "someone/offline")  # HF_HUB_OFFLINE=1 in the tests
    assert result.exit_code == 2 and "could not push" in result.output
    assert {p.name: p.read_bytes() for p in merged.iterdir()} == before


def test_cli_push_pull_and_predict_evaluate_merge_take_hub_ids(merged, hub, tmp_path):
    result = _cli("push", merged, "lab/merged", "--private")
    assert result.exit_code == 0, result.output
    assert hub.created == {"lab/merged": True}
    result = _cli("pull", "lab/merged", "--out", tmp_path / "pulled")
    assert result.exit_code == 0 and "6 labels" in result.output, result.output
    assert (tmp_path / "pulled" / "model.safetensors").read_bytes() == (merged / "model.safetensors").read_bytes()
    (tmp_path / "audio").mkdir()
    wavs = recordings(tmp_path / "audio", seconds=(1.5,))
    result = _cli("predict", "lab/merged", *wavs, "--out", tmp_path / "preds", "--format", "csv", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "preds" / "chorus-predictions.json").read_text())["model"] == "lab/merged"


def test_merge_base_takes_a_hub_id(merged, hub, tmp_path):
    base = ClassifierModel(load_encoder("toy-cnn"), [HeadEntry(labels=["x"])], ClassifierSettings(layer="conv3"))
    push_model(base.save_pretrained(tmp_path / "base"), "lab/base", api=hub)
    vectors = sum((["--vector", p] for p in sorted((merged.parent / "vectors").iterdir())), [])
    result = _cli("merge", "--method", "task_arithmetic", *vectors, "--base", "lab/base", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    again = _cli("merge", "--method", "task_arithmetic", *vectors, "--out", tmp_path / "plain")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == (tmp_path / "plain" / "model.safetensors").read_bytes()


def test_a_card_lists_at_most_500_labels():
    from chorus.model.card import model_card

    config = _toy_model().describe().model_copy(update={"heads": [HeadEntry(labels=[f"sp{i}" for i in range(503)])]})
    card = model_card(config)
    assert "| 0 | sp499 |" in card and "sp500" not in card and "3 more labels (all in `config.json`)" in card
