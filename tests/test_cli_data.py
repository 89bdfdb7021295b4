"""``chorus data check`` and ``chorus data split``."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from chorus.data.manifest import read_manifest


def make_dataset(root, per_label=4):
    rows = ["path,label,group"]
    for label in ("owl", "wren"):
        for i in range(per_label):
            name = f"{label}/{i}.wav"
            (root / label).mkdir(parents=True, exist_ok=True)
            sf.write(str(root / name), np.zeros(8000, np.float32), 8000)
            rows.append(f"{name},{label},{'north' if i % 2 else 'south'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def test_check_prints_a_summary(tmp_path, run_cli):
    result = run_cli("data", "check", make_dataset(tmp_path), "--durations")
    assert result.exit_code == 0, result.output
    for expected in ("clips", "8", "north, south", "unassigned 8", "0.002", "owl", "wren"):
        assert expected in result.output


def test_check_lists_every_problem_and_exits_2(tmp_path, run_cli):
    manifest = make_dataset(tmp_path)
    sf.write(str(tmp_path / "spare.wav"), np.zeros(100, np.float32), 8000)
    manifest.write_text(manifest.read_text() + "gone.wav,owl,\nspare.wav,,\n../x.wav,owl,\n")
    result = run_cli("data", "check", manifest, "--root", tmp_path)
    assert result.exit_code == 2
    assert "3 problems" in result.output
    for expected in ("line 10: gone.wav: file not found", "line 11: empty label", "line 12: path '../x.wav' escapes"):
        assert expected in result.output


def test_check_reports_unreadable_audio_with_durations(tmp_path, run_cli):
    manifest = make_dataset(tmp_path)
    (tmp_path / "owl" / "0.wav").write_bytes(b"RIFF broken" * 10)
    result = run_cli("data", "check", manifest, "--durations")
    assert result.exit_code == 2 and "1 problem" in result.output and "owl/0.wav" in result.output


def test_check_accepts_a_folder_per_class_tree(tmp_path, run_cli):
    make_dataset(tmp_path)
    (tmp_path / "manifest.csv").unlink()
    result = run_cli("data", "check", tmp_path)
    assert result.exit_code == 0 and "8" in result.output and "wren" in result.output


def test_split_writes_a_deterministic_stratified_manifest(tmp_path, run_cli):
    manifest = make_dataset(tmp_path, per_label=10)
    first = run_cli("data", "split", manifest, "--out", tmp_path / "split.csv", "--seed", "7")
    assert first.exit_code == 0, first.output
    assert "train 14, valid 4, test 2" in first.output
    text = (tmp_path / "split.csv").read_text()
    run_cli("data", "split", manifest, "--out", tmp_path / "again.csv", "--seed", "7")
    assert (tmp_path / "again.csv").read_text() == text
    split = read_manifest(tmp_path / "split.csv")
    counts = {(c.label, c.split) for c in split}
    assert {(label, s) for label in ("owl", "wren") for s in ("train", "valid", "test")} <= counts
    assert split.extra == {} and [c.group for c in split] == [c.group for c in read_manifest(manifest)]


def test_split_rejects_fractions_that_do_not_sum_to_one(tmp_path, run_cli):
    result = run_cli("data", "split", make_dataset(tmp_path), "--out", tmp_path / "s.csv", "--train", "0.5")
    assert result.exit_code != 0 and "sum to 1" in result.output and not (tmp_path / "s.csv").exists()


def test_a_split_written_elsewhere_holds_paths_relative_to_itself_and_reads_from_anywhere(tmp_path, run_cli,
                                                                                           monkeypatch):
    manifest = make_dataset(tmp_path / "data", per_label=10)
    out = tmp_path / "splits" / "split.csv"
    (tmp_path / "splits").mkdir()
    result = run_cli("data", "split", manifest, "--out", out, "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "--root" not in result.output
    paths = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert paths and all(p.startswith("../data/") for p in paths)
    monkeypatch.chdir(tmp_path / "data" / "owl")  # another working directory, no --root
    split = read_manifest(out)
    assert [c.path for c in split] == [c.path for c in read_manifest(manifest)]
    assert split.root == tmp_path  # the folder holding the manifest and every clip
    check = run_cli("data", "check", out)
    assert check.exit_code == 0, check.output
    assert "train 14, valid 4, test 2" in check.output
    again = run_cli("data", "split", out, "--out", tmp_path / "splits" / "again.csv", "--seed", "7")
    assert again.exit_code == 0 and "train 14, valid 4, test 2" in again.output


def test_an_old_split_with_paths_relative_to_a_root_still_reads_with_root(tmp_path, run_cli):
    manifest = make_dataset(tmp_path / "data")
    (tmp_path / "splits").mkdir()
    old = tmp_path / "splits" / "old.csv"  # as data split wrote it before: relative to the dataset root
    old.write_text(manifest.read_text())
    assert run_cli("data", "check", old, "--root", tmp_path / "data").exit_code == 0
    result = run_cli("data", "check", old)
    assert result.exit_code == 2 and "owl/0.wav: file not found" in result.output


def test_check_of_a_folder_reads_its_manifest_csv(tmp_path, run_cli):
    make_dataset(tmp_path)
    sf.write(str(tmp_path / "owl" / "unlisted.wav"), np.zeros(8000, np.float32), 8000)
    result = run_cli("data", "check", tmp_path)
    assert result.exit_code == 0, result.output
    assert "north, south" in result.output and "unassigned 8" in result.output  # the manifest's groups and clips
    (tmp_path / "manifest.csv").write_text("path,label\nowl/0.wav,\n")
    result = run_cli("data", "check", tmp_path)
    assert result.exit_code == 2 and "manifest.csv: 1 problem" in result.output and "empty label" in result.output
    (tmp_path / "manifest.csv").unlink()
    result = run_cli("data", "check", tmp_path)  # no manifest: one class per subfolder, every file
    assert result.exit_code == 0 and "unassigned 9" in result.output
