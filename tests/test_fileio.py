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
