"""chorus.data.splits: deterministic, order-independent, stratified, leak-free splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from chorus.data.clips import Clip, Manifest
from chorus.data.splits import allocate, stratified_split

ROOT = Path("/data/birds")


def manifest(counts: dict[str, int], root: Path = ROOT) -> Manifest:
    clips = [Clip(root / label / f"{i:03d}.wav", (label,)) for label, n in counts.items() for i in range(n)]
    return Manifest(clips, root)


def assignment(m: Manifest) -> dict[str, str]:
    return {c.path.relative_to(m.root).as_posix(): c.split for c in m.clips}


def test_same_seed_same_split_whatever_the_row_order_or_machine():
    base = manifest({"wren": 20, "robin": 13, "owl": 7})
    shuffled = Manifest(list(reversed(base.clips)), ROOT)
    elsewhere = manifest({"wren": 20, "robin": 13, "owl": 7}, Path("/mnt/other/copy"))
    first = assignment(stratified_split(base, seed=5))
    assert first == assignment(stratified_split(shuffled, seed=5)) == assignment(stratified_split(elsewhere, seed=5))
    assert first != assignment(stratified_split(base, seed=6))


def test_each_class_is_stratified_and_present_in_every_split():
    result = stratified_split(manifest({"wren": 100, "robin": 20, "owl": 3}), seed=1)
    counts = Counter((c.label, c.split) for c in result)
    assert [counts[("wren", s)] for s in ("train", "valid", "test")] == [70, 15, 15]
    assert [counts[("robin", s)] for s in ("train", "valid", "test")] == [14, 3, 3]
    assert [counts[("owl", s)] for s in ("train", "valid", "test")] == [1, 1, 1]


def test_allocation_rules():
    shares = {"train": 0.7, "valid": 0.15, "test": 0.15}
    assert allocate(10, shares) == {"train": 7, "valid": 2, "test": 1}
    assert allocate(4, shares) == {"train": 2, "valid": 1, "test": 1}
    assert allocate(2, shares) == {"train": 2, "valid": 0, "test": 0}
    assert allocate(0, shares) == {"train": 0, "valid": 0, "test": 0}
    assert all(sum(allocate(n, shares).values()) == n for n in range(50))


def test_existing_splits_are_kept_unless_overwrite():
    base = manifest({"wren": 10})
    fixed = Manifest([Clip(c.path, c.labels, "test" if i < 3 else None) for i, c in enumerate(base.clips)], ROOT)
    kept = stratified_split(fixed, {"train": 0.75, "valid": 0.25}, seed=0)
    assert [c.split for c in kept.clips[:3]] == ["test"] * 3
    assert Counter(c.split for c in kept.clips[3:]) == {"train": 5, "valid": 2}
    redone = stratified_split(fixed, {"train": 0.5, "valid": 0.5}, seed=0, overwrite=True)
    assert Counter(c.split for c in redone) == {"train": 5, "valid": 5}


def test_segments_of_one_recording_never_cross_splits():
    clips = [Clip(ROOT / f"rec{r}.wav", ("wren",), start=float(s), end=s + 1.0) for r in range(6) for s in range(5)]
    result = stratified_split(Manifest(clips, ROOT), seed=3)
    per_recording = {}
    for clip in result:
        per_recording.setdefault(clip.path, set()).add(clip.split)
    assert all(len(splits) == 1 for splits in per_recording.values())
    loose = stratified_split(Manifest(clips, ROOT), seed=3, by_recording=False)
    assert any(len({c.split for c in loose if c.path == path}) > 1 for path in per_recording)


def test_multi_label_clips_stratify_by_their_first_label_and_group_stratification():
    clips = [Clip(ROOT / f"{i}.wav", ("owl", "wren") if i % 2 else ("wren", "owl"), group="north" if i < 6 else "south")
             for i in range(12)]
    by_label = stratified_split(Manifest(clips, ROOT), seed=0)
    assert Counter((c.labels[0], c.split) for c in by_label)[("owl", "valid")] == 1
    by_group = stratified_split(Manifest(clips, ROOT), seed=0, by="group")
    counts = Counter((c.group, c.split) for c in by_group)
    assert all(counts[(group, split)] >= 1 for group in ("north", "south") for split in ("train", "valid", "test"))


def test_extra_columns_and_row_order_survive():
    base = manifest({"wren": 5})
    base.extra = {"site": [str(i) for i in range(5)]}
    result = stratified_split(base, seed=0)
    assert [c.path for c in result] == [c.path for c in base] and result.extra == base.extra
    assert base.clips[0].split is None


@pytest.mark.parametrize("fractions, message", [
    ({"train": 0.5, "valid": 0.4}, "sum to 1"),
    ({"train": 0.9, "holdout": 0.1}, "unknown split 'holdout'"),
    ({"train": 1.2, "test": -0.2}, ">= 0"),
])
def test_bad_fractions_are_rejected(fractions, message):
    with pytest.raises(ValueError, match=message):
        stratified_split(manifest({"wren": 3}), fractions)


def test_aliases_in_fractions():
    result = stratified_split(manifest({"wren": 4}), {"train": 0.5, "validation": 0.5})
    assert Counter(c.split for c in result) == {"train": 2, "valid": 2}


def test_a_manifest_with_paths_outside_its_folder_splits_the_same_wherever_the_tree_lies(tmp_path):
    from chorus.data.manifest import read_manifest, write_manifest

    splits = {}
    for where in ("one", "two/deeper"):
        root = tmp_path / where
        for label in ("wren", "owl"):
            (root / "audio" / label).mkdir(parents=True)
            for i in range(8):
                (root / "audio" / label / f"{i}.wav").write_bytes(b"x")
        clips = [Clip(path, (path.parent.name,)) for path in sorted((root / "audio").rglob("*.wav"))]
        (root / "lists").mkdir()
        write_manifest(Manifest(clips, root / "audio"), root / "lists" / "all.csv")
        assert (root / "lists" / "all.csv").read_text().splitlines()[1].startswith("../audio/owl/0.wav,owl")
        read = read_manifest(root / "lists" / "all.csv")
        assert read.root == root and [c.path for c in read] == [c.path for c in clips]
        splits[where] = assignment(stratified_split(read, seed=3))
    assert splits["one"] == splits["two/deeper"] and set(splits["one"].values()) == {"train", "valid", "test"}
