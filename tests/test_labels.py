"""chorus.data.labels: label maps, encoding, union of label spaces, validated JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chorus.data.clips import Clip, Manifest
from chorus.data.labels import LabelMap
from chorus.data.errors import UnknownLabelError
from chorus.errors import ChorusError


def test_from_manifest_is_sorted_and_indexes_both_ways():
    manifest = Manifest([Clip(Path(f"/d/{i}.wav"), labels) for i, labels in enumerate([("wren",), ("owl", "jay")])],
                        Path("/d"))
    labels = LabelMap(tuple(manifest.labels))
    assert labels.labels == ("jay", "owl", "wren") and len(labels) == 3
    assert labels.index("owl") == 1 and labels[2] == "wren" and "jay" in labels and "crow" not in labels
    assert labels.decode([2, 0]) == ["wren", "jay"]


def test_encode_class_indices_and_multi_hot():
    labels = LabelMap(("a", "b", "c"))
    assert labels.encode(["c", ("a",), Clip(Path("x.wav"), ("b",))]).tolist() == [2, 0, 1]
    assert labels.encode(["c"]).dtype == np.int64
    multi = labels.encode([("a", "c"), (), "b"], multi_hot=True)
    assert multi.dtype == np.float32 and multi.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="multi_hot=True"):
        labels.encode([("a", "c")])


def test_unknown_labels_are_all_named():
    with pytest.raises(UnknownLabelError, match="2 label.*: x, y") as caught:
        LabelMap(("a",)).encode(["a", "y", ("x", "y")])
    assert isinstance(caught.value, ChorusError) and isinstance(caught.value, KeyError)
    with pytest.raises(UnknownLabelError):
        LabelMap(("a",)).index("b")


def test_union_keeps_the_first_indices_and_appends_new_labels():
    birds, frogs, more = LabelMap(("wren", "owl")), LabelMap(("tree frog", "owl")), LabelMap(("bat",))
    merged = LabelMap.union(birds, frogs, more)
    assert merged.labels == ("wren", "owl", "tree frog", "bat")
    assert birds.union(frogs) == LabelMap(("wren", "owl", "tree frog"))


def test_invalid_label_lists_are_refused():
    for bad in (("a", "a"), ("a", ""), ("a", 3)):
        with pytest.raises(ValueError):
            LabelMap(bad)
