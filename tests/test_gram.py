"""Gram statistics: computed by hooks against explicit patches, stored, validated, CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from _toydata import tone_manifest
from chorus.encoders import load_encoder
from chorus.encoders.base import Encoder, LayerOutputs
from chorus.model import ClassifierModel, ClassifierSettings, HeadEntry
from chorus.taskvec import TaskVector
from chorus.taskvec.errors import TaskVectorFileError
from chorus.taskvec.gram import GRAM_FILE, GramStatistics, compute_gram, gram_layers, write_gram
from chorus.tensorfile import IntegrityError, save_tensors


class TinyNet(Encoder):
    """Conv1d (1→4, kernel 5, stride 2, padding 2) + ReLU, then Linear 4→3 per frame."""

    def __init__(self):
        super().__init__()
        self.name, self.sample_rate = "tiny", 16_000
        self.layer_names, self.layer_dims, self.frame_rates = ("conv", "proj"), (4, 3), (8000.0, 8000.0)
        self.conv = nn.Conv1d(1, 4, 5, stride=2, padding=2)
        self.proj = nn.Linear(4, 3)
        self.depthwise = nn.Conv1d(4, 4, 3, groups=4)

    def forward(self, waveforms, lengths):
        hidden = torch.relu(self.conv(waveforms.unsqueeze(1))).transpose(1, 2)
        out = self.proj(hidden)
        mask = torch.ones(out.shape[:2], dtype=torch.bool)
        return LayerOutputs([hidden, out], [mask, mask])

    def architecture(self):
        return {"family": "tiny"}


def ref_gram(net: TinyNet, waves) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Explicit patches of each clip alone (Tensor.unfold over the zero-padded signal)."""
    conv = torch.zeros(5, 5, dtype=torch.float64)
    proj = torch.zeros(4, 4, dtype=torch.float64)
    rows_conv = rows_proj = 0
    for wave in waves:
        x = torch.nn.functional.pad(torch.as_tensor(wave).double(), (2, 2))
        patches = x.unfold(0, 5, 2)  # [frames, 5]
        conv += patches.T @ patches
        rows_conv += patches.shape[0]
        with torch.no_grad():
            hidden = torch.relu(net.conv(torch.as_tensor(wave)[None, None])).transpose(1, 2)[0].double()
        proj += hidden.T @ hidden
        rows_proj += hidden.shape[0]
    return conv, proj, rows_conv, rows_proj


def test_hooks_sum_the_inputs_of_each_clip_alone():
    torch.manual_seed(0)
    net = TinyNet()
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (40, 40, 33, 57)]  # unequal: never padded
    stats = compute_gram(net, waves, batch_size=4)
    assert set(stats.grams) == {"conv.weight", "proj.weight"}  # the grouped conv has none
    conv, proj, rows_conv, rows_proj = ref_gram(net, waves)
    torch.testing.assert_close(stats.grams["conv.weight"], conv, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats.grams["proj.weight"], proj, rtol=1e-5, atol=1e-5)
    assert stats.counts == {"conv.weight": rows_conv, "proj.weight": rows_proj} and stats.clips == 4
    assert set(gram_layers(net)) == {"conv.weight", "proj.weight"}


@pytest.fixture()
def vector_dir(tmp_path):
    base = load_encoder("toy-cnn")
    tuned = load_encoder("toy-cnn")
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(0.01)
    model = ClassifierModel(tuned, [HeadEntry(group="g1", labels=["g1/low", "g1/high"])],
                            ClassifierSettings(layer="conv3"))
    return TaskVector.from_classifier(base, model).save(tmp_path / "tv")


def _stats(vector: TaskVector) -> GramStatistics:
    grams, counts = {}, {}
    for index, name in enumerate(n for n in vector.keys() if len(vector.shape(n)) >= 2):
        width = int(np.prod(vector.shape(name)[1:]))
        rows = torch.randn(width + 3, width, generator=torch.Generator().manual_seed(index), dtype=torch.float64)
        grams[name], counts[name] = rows.T @ rows, width + 3
    return GramStatistics(grams, counts, clips=5)


def test_gram_file_round_trips_with_its_sha256_and_survives_a_convert(vector_dir, tmp_path):
    vector = TaskVector.load(vector_dir)
    assert not vector.has_gram and vector.gram("blocks.1.0.weight") is None
    stats = _stats(vector)
    write_gram(vector_dir, stats)
    manifest = json.loads((vector_dir / "taskvector.json").read_text())
    assert manifest["gram"] == {"computed_on": "finetuned", "clips": 5} and GRAM_FILE in manifest["files"]
    loaded = TaskVector.load(vector_dir)
    assert loaded.has_gram
    torch.testing.assert_close(loaded.gram("blocks.1.0.weight"), stats.grams["blocks.1.0.weight"].float().double())
    assert loaded.gram("blocks.1.0.bias") is None
    assert not (2.0 * loaded).has_gram  # a combination has no Gram of its own
    converted = TaskVector.load(loaded.save(tmp_path / "bf16", dtype="bfloat16"))
    assert torch.equal(converted.gram("blocks.2.0.weight"), loaded.gram("blocks.2.0.weight"))


def test_gram_files_that_lie_are_refused(vector_dir, tmp_path):
    vector = TaskVector.load(vector_dir)
    write_gram(vector_dir, _stats(vector))
    name = "blocks.1.0.weight"
    # altered bytes: the sha256 in the manifest catches it
    tampered = tmp_path / "tampered"
    shutil.copytree(vector_dir, tampered)
    data = bytearray((tampered / GRAM_FILE).read_bytes())
    data[-3] ^= 0xFF
    (tampered / GRAM_FILE).write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        TaskVector.load(tampered)

    def rewritten(label, tensors):
        folder = tmp_path / label
        shutil.copytree(vector_dir, folder)
        digest = save_tensors(folder / GRAM_FILE, tensors)
        manifest = json.loads((folder / "taskvector.json").read_text())
        manifest["files"][GRAM_FILE] = digest
        (folder / "taskvector.json").write_text(json.dumps(manifest))
        return folder

    count = torch.tensor([10], dtype=torch.int64)
    wrong_width = rewritten("width", {name: torch.eye(7), name + "::count": count})
    with pytest.raises(TaskVectorFileError, match="input width"):
        TaskVector.load(wrong_width)
    asymmetric = torch.eye(48)
    asymmetric[0, 1] = 5.0
    skewed = TaskVector.load(rewritten("skew", {name: asymmetric, name + "::count": count}))
    with pytest.raises(TaskVectorFileError, match="not symmetric"):
        skewed.gram(name)
    infinite = torch.eye(48)
    infinite[3, 3] = float("inf")
    with pytest.raises(TaskVectorFileError, match="non-finite"):
        TaskVector.load(rewritten("inf", {name: infinite, name + "::count": count})).gram(name)
    with pytest.raises(TaskVectorFileError, match="not the Gram of a weight"):
        TaskVector.load(rewritten("bias", {"blocks.1.0.bias": torch.eye(1), "blocks.1.0.bias::count": count}))


def test_cli_tv_gram_stores_the_statistics_of_the_finetuned_encoder(run_cli, vector_dir, tmp_path):
    tone_manifest(tmp_path / "data", seconds=0.3)
    result = run_cli("tv", "gram", vector_dir, "--data", tmp_path / "data" / "manifest.csv", "--random-init")
    assert result.exit_code == 0, result.output
    assert "3 layers, 16 clips" in result.output
    vector = TaskVector.load(vector_dir)
    gram = vector.gram("blocks.1.0.weight")
    assert gram.shape == (48, 48) and float(torch.linalg.eigvalsh(gram)[-1]) > 0
    # the fine-tuned encoder's inputs, not the base's: the first layer sees raw audio either way,
    # the second sees the fine-tuned first layer's outputs
    from chorus.data.manifest import read_manifest
    from chorus.data.clipset import load_eval_audio
    from chorus.taskvec import apply

    clips = read_manifest(tmp_path / "data" / "manifest.csv").select(split="train").clips
    waves = load_eval_audio(clips, 16_000).waveforms
    tuned = apply(load_encoder("toy-cnn", pretrained=False), [vector])
    expected = compute_gram(tuned, waves)
    torch.testing.assert_close(gram, expected.grams["blocks.1.0.weight"].float().double())


def test_list_methods_and_tv_info_show_the_new_pieces(run_cli, vector_dir):
    listing = run_cli("merge", "--list-methods")
    assert listing.exit_code == 0
    for name in ("regmean_pp", "iso_cts", "wudi", "model_stock", "della", "slerp", "karcher"):
        assert name in listing.output
    write_gram(vector_dir, _stats(TaskVector.load(vector_dir)))
    info = run_cli("tv", "info", vector_dir)
    assert info.exit_code == 0 and "5 clips, on finetuned" in info.output
