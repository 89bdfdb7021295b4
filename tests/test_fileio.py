"""Atomic writes: the umask's file mode, no temporary file left behind."""

from __future__ import annotations

import os

import torch

from chorus.fileio import write_json
from chorus.taskvec.merge.writer import StreamingSafetensorsWriter



def test_written_files_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with StreamingSafetensorsWriter(tmp_path / "w.safetensors", [("t", torch.float32, (2,))]) as writer:
            writer.write("t", torch.zeros(2))
            writer.commit()
        os.umask(0o077)
        write_json(tmp_path / "private.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_write_that_fails_is_a_one_line_error_naming_the_file(tmp_path):
    import errno

    import pytest

    from chorus.errors import WriteError
    from chorus.fileio import atomic_open

    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="file/out.json: cannot write"):  # a file where a folder should be
        write_json(tmp_path / "file" / "out.json", {})
    with pytest.raises(WriteError, match="no space left on device") as caught:
        with atomic_open(tmp_path / "full.json") as handle:
            handle.write("{}")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(caught.value).startswith(str(tmp_path / "full.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temporary file left


def test_a_full_disk_is_a_one_line_write_error_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno

    import pytest
    import safetensors.torch
    import torch
    from safetensors import SafetensorError

    from chorus.errors import WriteError
    from chorus.fileio import write_json
    from chorus.tensorfile import save_tensors

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("chorus.fileio.os.fsync", full)
    with pytest.raises(WriteError, match="m.json: cannot write: no space left on device"):
        write_json(tmp_path / "m.json", {"a": 1})

    def full_rust(*args, **kwargs):  # how safetensors' writer reports it
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full_rust)
    with pytest.raises(WriteError, match="t.safetensors: cannot write: no space left on device"):
        save_tensors(tmp_path / "t.safetensors", {"x": torch.zeros(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_second_writer_of_a_locked_folder_is_refused_and_a_failed_first_run_leaves_no_folder(tmp_path):
    import os
    import subprocess
    import sys

    import pytest

    from chorus.fileio import locked_folder

    out = tmp_path / "out"
    with locked_folder(out):
        other = subprocess.run([sys.executable, "-c", "import sys; from chorus.fileio import locked_folder\n"
                                "with locked_folder(sys.argv[1]): pass", str(out)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert other.returncode == 1 and "FolderBusy" in other.stderr and "another process" in other.stderr
    with pytest.raises(RuntimeError), locked_folder(tmp_path / "failed"):
        raise RuntimeError("the run fails before writing anything")
    assert not (tmp_path / "failed").exists()
