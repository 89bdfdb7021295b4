"""chorus.data.manifest: reading, validating (all problems at once), writing, folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from chorus.data.manifest import (
    Clip,
    Manifest,
    ManifestError,
    canonical_split,
    from_audiofolder,
    from_folder,
    read_manifest,
    write_manifest,
)
from chorus.errors import ChorusError


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def kinds(error: ManifestError) -> list[str]:
    return [problem.kind for problem in error.problems]


def test_reads_csv_with_all_columns_multi_labels_and_extra_columns(tmp_path):
    touch(tmp_path, "a.wav", "b.wav", "sub/c.flac")
    manifest = read_manifest(write(tmp_path / "m.csv", (
        "path,label,split,group,start,end,site\n"
        "a.wav,dog,train,mammals,,,north\n"
        "b.wav, bird ; frog ;,Validation,,1.5,3.25,south\n"
        "sub/c.flac,cat,dev,mammals,0,2,\n")))
    assert [c.path for c in manifest] == [tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "sub" / "c.flac"]
    assert [c.labels for c in manifest] == [("dog",), ("bird", "frog"), ("cat",)]
    assert [c.split for c in manifest] == ["train", "valid", "valid"]
    assert [c.group for c in manifest] == ["mammals", None, "mammals"]
    assert [(c.start, c.end) for c in manifest] == [(None, None), (1.5, 3.25), (0.0, 2.0)]
    assert manifest.extra == {"site": ["north", "south", ""]}
    assert manifest.multi_label and manifest.labels == ["bird", "cat", "dog", "frog"]
    assert manifest.root == tmp_path and manifest.source == tmp_path / "m.csv"


def test_reads_tsv_by_extension_or_header_and_columns_in_any_order(tmp_path):
    touch(tmp_path, "a.wav", "b.wav")
    by_header = read_manifest(write(tmp_path / "m.csv", "Label\tPath\ndog\ta.wav\ncat\tb.wav\n"))
    by_extension = read_manifest(write(tmp_path / "m.tsv", "path\tlabel\na.wav\tdog\nb.wav\tcat\n"))
    for manifest in (by_header, by_extension):
        assert [(c.path.name, c.labels) for c in manifest] == [("a.wav", ("dog",)), ("b.wav", ("cat",))]


def test_a_manifest_with_three_different_problems_reports_all_three(tmp_path):
    touch(tmp_path, "a.wav", "b.wav")
    path = write(tmp_path / "m.csv", "path,label,split\na.wav,dog,train\nmissing.wav,cat,train\nb.wav,,test\n"
                                     "a.wav,dog,holdout\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    error = caught.value
    assert isinstance(error, ChorusError) and error.path == path
    assert kinds(error) == ["missing_file", "empty_label", "unknown_split", "duplicate"]
    message = str(error)
    assert message.startswith(f"{path}: 4 problems")
    for expected in ("line 3: missing.wav: file not found", "line 4: empty label",
                     "line 5: unknown split 'holdout'", "line 5: duplicate of line 2"):
        assert expected in message


def test_every_kind_of_problem_is_found_in_one_pass(tmp_path):
    touch(tmp_path / "data", "a.wav", "b.wav", "c.wav")
    (tmp_path / "outside.wav").write_bytes(b"x")
    path = write(tmp_path / "data" / "m.csv", (
        "path,label,split,start,end\n"
        "../outside.wav,dog,,,\n"
        f"{tmp_path / 'outside.wav'},dog,,,\n"
        "a.wav,dog,,x,2\n"
        "b.wav,dog,,-1,\n"
        "c.wav,dog,,3,2\n"
        ",dog,,,\n"
        "a.wav,dog,,,,surplus\n"))
    with pytest.raises(ManifestError) as caught:
        read_manifest(path, tmp_path / "data")  # a dataset root given: no path may leave it
    assert kinds(caught.value) == ["outside_root", "outside_root", "bad_time", "bad_time", "bad_time",
                                   "empty_path", "bad_row"]
    assert [p.line for p in caught.value.problems] == [2, 3, 4, 5, 6, 7, 8]


def test_missing_columns_are_reported_with_the_columns_found(tmp_path):
    touch(tmp_path, "a.wav")
    with pytest.raises(ManifestError, match=r"missing required column 'label' \(columns: path, split\)") as caught:
        read_manifest(write(tmp_path / "m.csv", "path,split\na.wav,train\n"))
    assert kinds(caught.value) == ["missing_column"]
    with pytest.raises(ManifestError) as caught:
        read_manifest(write(tmp_path / "n.csv", "file,label,label\na.wav,dog,dog\n"))
    assert sorted(kinds(caught.value)) == ["bad_header", "missing_column"]


def test_unlabelled_data_needs_allow_unlabelled(tmp_path):
    touch(tmp_path, "a.wav", "b.wav")
    path = write(tmp_path / "m.csv", "path,label\na.wav,\nb.wav,dog\n")
    with pytest.raises(ManifestError, match="allow_unlabelled"):
        read_manifest(path)
    manifest = read_manifest(path, allow_unlabelled=True)
    assert [c.labels for c in manifest] == [(), ("dog",)]
    no_label_column = read_manifest(write(tmp_path / "p.csv", "path\na.wav\n"), allow_unlabelled=True)
    assert no_label_column.clips[0].labels == ()


def test_segments_of_one_file_are_not_duplicates(tmp_path):
    touch(tmp_path, "long.wav")
    manifest = read_manifest(write(tmp_path / "m.csv", "path,label,start,end\nlong.wav,a,0,5\nlong.wav,b,5,10\n"))
    assert [(c.start, c.end) for c in manifest] == [(0.0, 5.0), (5.0, 10.0)]


def test_explicit_root_resolves_paths_and_defaults_to_the_manifest_folder(tmp_path):
    touch(tmp_path / "audio", "a.wav")
    meta = tmp_path / "meta"
    meta.mkdir()
    path = write(meta / "m.csv", "path,label\na.wav,dog\n")
    manifest = read_manifest(path, root=tmp_path / "audio")
    assert manifest.clips[0].path == tmp_path / "audio" / "a.wav"
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    assert kinds(caught.value) == ["missing_file"]


def test_unreadable_and_empty_manifests_are_manifest_errors(tmp_path):
    with pytest.raises(ManifestError, match="file not found"):
        read_manifest(tmp_path / "nope.csv")
    with pytest.raises(ManifestError, match="no clips listed"):
        read_manifest(write(tmp_path / "m.csv", "path,label\n"))
    with pytest.raises(ManifestError, match="empty file"):
        read_manifest(write(tmp_path / "e.csv", ""))


def test_split_aliases():
    assert [canonical_split(name) for name in ("train", "VALID", "validation", "val", "dev", "test", "eval")] == [
        "train", "valid", "valid", "valid", "valid", "test", None]


def test_write_then_read_round_trips(tmp_path):
    touch(tmp_path, "x/a.wav", "b.wav")
    manifest = Manifest([
        Clip(tmp_path / "x" / "a.wav", ("dog", "bark"), "train", "mammals", 0.1, 2.0000001),
        Clip(tmp_path / "b.wav", ("cat",), None, None, None, None),
    ], tmp_path, extra={"site": ["n, with comma", "s"]})
    write_manifest(manifest, tmp_path / "m.csv")
    back = read_manifest(tmp_path / "m.csv")
    assert back.clips == manifest.clips and back.extra == manifest.extra
    assert (tmp_path / "m.csv").read_text().splitlines()[1].startswith("x/a.wav,dog;bark,train,mammals,0.1,")


def test_write_with_a_root_elsewhere_round_trips_with_that_root(tmp_path):
    touch(tmp_path / "data", "a.wav")
    manifest = Manifest([Clip(tmp_path / "data" / "a.wav", ("dog",))], tmp_path / "data")
    write_manifest(manifest, tmp_path / "out" / "m.csv", root=tmp_path / "data")
    assert read_manifest(tmp_path / "out" / "m.csv", root=tmp_path / "data").clips == manifest.clips


def test_write_refuses_labels_that_would_not_read_back(tmp_path):
    manifest = Manifest([Clip(tmp_path / "a.wav", ("a;b",))], tmp_path)
    with pytest.raises(ValueError, match="a;b"):
        write_manifest(manifest, tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()


def test_select_and_take_keep_extra_columns_aligned(tmp_path):
    manifest = Manifest([Clip(tmp_path / f"{i}.wav", ("x",), split) for i, split in enumerate(["train", "test", "train"])],
                        tmp_path, extra={"site": ["a", "b", "c"]})
    assert manifest.select(split="train").extra == {"site": ["a", "c"]}
    assert manifest.splits == ["train", "test"]


def test_from_folder_per_class(tmp_path):
    touch(tmp_path, "dog/1.wav", "dog/deep/2.flac", "cat/3.mp3", "cat/notes.txt", "cat/.hidden.wav", ".git/x.wav")
    manifest = from_folder(tmp_path)
    assert [(c.path.relative_to(tmp_path).as_posix(), c.labels, c.split) for c in manifest] == [
        ("cat/3.mp3", ("cat",), None), ("dog/1.wav", ("dog",), None), ("dog/deep/2.flac", ("dog",), None)]


def test_from_folder_with_split_folders(tmp_path):
    touch(tmp_path, "train/dog/1.wav", "train/cat/2.wav", "validation/dog/3.wav", "test/cat/4.wav")
    manifest = from_folder(tmp_path)
    assert sorted((c.path.name, c.label, c.split) for c in manifest) == [
        ("1.wav", "dog", "train"), ("2.wav", "cat", "train"), ("3.wav", "dog", "valid"), ("4.wav", "cat", "test")]


def test_from_folder_reports_layout_problems(tmp_path):
    touch(tmp_path, "train/dog/1.wav", "dog/2.wav", "loose.wav")
    with pytest.raises(ManifestError, match=r"mix split names \(train\) and other folders \(dog\)"):
        from_folder(tmp_path)
    touch(tmp_path / "flat", "loose.wav", "dog/1.wav")
    with pytest.raises(ManifestError, match="outside any class folder"):
        from_folder(tmp_path / "flat")
    assert [c.labels for c in from_folder(tmp_path / "flat", allow_unlabelled=True)] == [("dog",), ()]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no audio files"):
        from_folder(tmp_path / "empty")


def test_from_audiofolder_reads_metadata_in_root_and_split_folders(tmp_path):
    touch(tmp_path, "train/a.wav", "train/b.wav", "test/c.wav")
    write(tmp_path / "train" / "metadata.csv", "file_name,label,quality\na.wav,dog,A\nb.wav,cat,B\n")
    write(tmp_path / "test" / "metadata.csv", "file_name,label,quality\nc.wav,dog,C\n")
    manifest = from_audiofolder(tmp_path)
    assert [(c.path.name, c.label, c.split) for c in manifest] == [
        ("c.wav", "dog", "test"), ("a.wav", "dog", "train"), ("b.wav", "cat", "train")]
    assert manifest.extra == {"quality": ["C", "A", "B"]}


def test_from_audiofolder_root_metadata_and_problems_name_the_metadata_file(tmp_path):
    touch(tmp_path, "clips/a.wav")
    meta = write(tmp_path / "metadata.csv", "file_name,species\nclips/a.wav,wren\n")
    assert from_audiofolder(tmp_path, label_column="species").clips[0].labels == ("wren",)
    write(meta, "file_name,species\nclips/a.wav,wren\nclips/gone.wav,wren\n")
    with pytest.raises(ManifestError) as caught:
        from_audiofolder(tmp_path, label_column="species")
    assert caught.value.path == tmp_path and kinds(caught.value) == ["missing_file"]
    assert f"{meta} line 3:" in str(caught.value)
    with pytest.raises(ManifestError, match="missing required column 'label'"):
        from_audiofolder(tmp_path)


def test_from_audiofolder_without_metadata_uses_folder_names(tmp_path):
    touch(tmp_path, "train/dog/1.wav", "test/cat/2.wav")
    assert sorted((c.label, c.split) for c in from_audiofolder(tmp_path)) == [("cat", "test"), ("dog", "train")]
