"""Sparse task vectors: int32 indices or a packed bit mask (whichever is smaller), a
warning when sparse storage does not shrink the file, and older int64 files still load."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

from chorus.encoders import load_encoder
from chorus.taskvec import TaskVector
from chorus.taskvec import storage
from chorus.taskvec.errors import SparseStorageWarning

from _mergedata import perturbed


@pytest.fixture(scope="module")
def vector():
    base = load_encoder("toy-cnn")
    return TaskVector.from_models(base, perturbed(base, 0), group="g")


def _deltas_bytes(directory) -> int:
    return (directory / "deltas.safetensors").stat().st_size


def _kept(delta: torch.Tensor, density: float) -> torch.Tensor:
    """``delta`` rounded to bfloat16 with all but its top ``density`` magnitudes zeroed."""
    flat = delta.reshape(-1)
    keep = torch.argsort(flat.abs(), descending=True, stable=True)[:max(1, math.ceil(density * flat.numel()))]
    out = torch.zeros_like(flat)
    out[keep] = flat[keep].to(torch.bfloat16).float()
    return out.reshape(delta.shape)


@pytest.mark.parametrize("density, layout", [(0.2, "bitmask"), (0.02, "int32")])
def test_bfloat16_sparse_is_smaller_than_dense_and_exact(vector, tmp_path, density, layout):
    dense = vector.save(tmp_path / "dense", dtype="bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SparseStorageWarning)
        sparse = vector.save(tmp_path / "sparse", dtype="bfloat16", density=density)
    assert _deltas_bytes(sparse) < _deltas_bytes(dense)
    loaded = TaskVector.load(sparse)
    entries = loaded.manifest.tensors
    large = [name for name in loaded.keys() if entries[name].sparse and entries[name].numel >= 1000]
    assert large and {entries[name].positions for name in large} == {layout}
    for name in loaded.keys():
        assert torch.equal(loaded.tensor(name), _kept(vector.tensor(name), density)), name


def test_the_layouts_measure_as_documented():
    numel = 10_000
    assert storage.positions_layout(numel, 2_000) == "bitmask"  # 1,250 mask bytes < 8,000 index bytes
    assert storage.positions_layout(numel, 300) == "int32"  # 1,200 index bytes < 1,250 mask bytes
    assert storage.positions_layout(2 ** 31 + 8, 10) == "int64"
    indices = torch.tensor([0, 3, 8, 9, 9_999])
    assert torch.equal(storage.unpack_mask(storage.pack_mask(indices, numel), numel), indices)


def test_old_int64_files_still_load(vector, tmp_path, monkeypatch):
    expected = TaskVector.load(vector.save(tmp_path / "new", dtype="bfloat16", density=0.2))
    with monkeypatch.context() as patch:  # write as chorus did before: int64 indices, no `positions`
        patch.setattr(storage, "positions_layout", lambda numel, nnz: "int64")
        with pytest.warns(SparseStorageWarning):  # int64 indices ate the saving: the reason for the new layouts
            old = vector.save(tmp_path / "old", dtype="bfloat16", density=0.2)
    manifest = json.loads((old / "taskvector.json").read_text())
    for entry in manifest["tensors"].values():
        del entry["positions"]
    (old / "taskvector.json").write_text(json.dumps(manifest))
    from safetensors import safe_open

    with safe_open(old / "deltas.safetensors", "pt") as handle:
        assert {handle.get_slice(k).get_dtype() for k in handle.keys() if k.endswith("::indices")} == {"I64"}
    loaded = TaskVector.load(old)
    assert _deltas_bytes(old) > _deltas_bytes(tmp_path / "new")
    for name in loaded.keys():
        assert torch.equal(loaded.tensor(name), expected.tensor(name)), name


def test_a_warning_when_sparse_storage_is_no_smaller(vector, tmp_path, run_cli):
    with pytest.warns(SparseStorageWarning, match="does not make this vector smaller"):
        vector.save(tmp_path / "nearly-dense", dtype="bfloat16", density=0.99)
    vector.save(tmp_path / "v")
    result = run_cli("tv", "convert", tmp_path / "v", tmp_path / "c", "--dtype", "bfloat16", "--density", "0.99")
    assert result.exit_code == 0 and "warning:" in result.output and "smaller" in result.output
    quiet = run_cli("tv", "convert", tmp_path / "v", tmp_path / "c2", "--dtype", "bfloat16", "--density", "0.2")
    assert quiet.exit_code == 0 and "warning:" not in quiet.output
