"""Verified-file records: an unchanged file is not hashed twice, a changed one always is."""

from __future__ import annotations

import os

import pytest

import chorus.tensorfile as tensorfile
import chorus.verified as verified
from chorus.fileio import sha256_file
from chorus.tensorfile import IntegrityError, verify_sha256
from chorus.verified import is_verified

OLD_NS = 1_600_000_000 * 10**9  # an mtime long past, set explicitly


def _file(tmp_path, name="x.bin"):
    path = tmp_path / name
    path.write_bytes(b"0123456789" * 100)
    os.utime(path, ns=(OLD_NS, OLD_NS))
    return path, sha256_file(path)


def _touch_until_ctime_moves(path, ctime_ns: int) -> None:
    """Re-set the file's own times until its ctime leaves ``ctime_ns`` (the kernel stamps
    ctime at a coarse tick; this ends within one tick, whatever the machine's speed)."""
    st = path.stat()
    while path.stat().st_ctime_ns == ctime_ns:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_verified_unchanged_file_is_not_hashed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(verified, "RACY_NS", 0)
    path, digest = _file(tmp_path)
    assert not is_verified(path, digest)
    verify_sha256(path, digest)
    assert is_verified(path, digest) and not is_verified(path, "0" * 64)

    def refuse(path):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(tensorfile, "sha256_file", refuse)
    verify_sha256(path, digest)


def test_a_file_changed_in_place_is_hashed_and_refused_even_with_its_old_times(tmp_path, monkeypatch):
    monkeypatch.setattr(verified, "RACY_NS", 0)
    path, digest = _file(tmp_path)
    verify_sha256(path, digest)
    before = path.stat()
    with open(path, "r+b") as handle:  # same size, one byte changed
        handle.write(b"9")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back; ctime cannot be
    _touch_until_ctime_moves(path, before.st_ctime_ns)
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_size == before.st_size
    assert not is_verified(path, digest)
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        verify_sha256(path, digest)


def test_a_replaced_file_is_not_known(tmp_path, monkeypatch):
    monkeypatch.setattr(verified, "RACY_NS", 0)
    path, digest = _file(tmp_path)
    verify_sha256(path, digest)
    other = tmp_path / "other.bin"
    other.write_bytes(b"9123456789" * 100)
    os.replace(other, path)  # another file under the same name
    assert not is_verified(path, digest)
    with pytest.raises(IntegrityError):
        verify_sha256(path, digest)


def test_a_file_changed_within_the_last_second_is_not_recorded(tmp_path):
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"abc")
    verify_sha256(path, sha256_file(path))
    assert not is_verified(path, sha256_file(path))
