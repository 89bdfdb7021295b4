"""Label maps: an ordered label space, its indices and its JSON file.

The JSON file is ``{"format": "chorus.labels", "version": 1, "labels": [...]}``; loading
validates it (shared files are untrusted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from .clips import Clip
from .errors import UnknownLabelError
from ..errors import InvalidInput

def _check_labels(labels: Sequence[object]) -> str | None:
    """A problem with a label list, or None."""
    bad = [repr(label) for label in labels if not isinstance(label, str) or not label.strip()]
    if bad:
        return f"labels must be non-empty strings, got {', '.join(bad)}"
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        return f"duplicate labels: {', '.join(duplicates)}"
    return None


@dataclass(frozen=True)
class LabelMap:
    """Ordered labels; ``labels[i]`` is class index ``i``."""

    labels: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        problem = _check_labels(labels)
        if problem:
            raise InvalidInput(problem)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "_index", {label: i for i, label in enumerate(labels)})

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[str]:
        return iter(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __getitem__(self, index: int) -> str:
        return self.labels[index]

    def index(self, label: str) -> int:
        """The class index of ``label``; :class:`UnknownLabelError` if absent."""
        if label not in self._index:
            raise UnknownLabelError([label], len(self))
        return self._index[label]

    def encode(self, items: Iterable[Clip | str | Sequence[str]], *, multi_hot: bool = False) -> np.ndarray:
        """Class indices ``[clips]`` (int64), or multi-hot ``[clips, classes]`` (float32).

        Each item is a clip, one label, or a sequence of labels. Without ``multi_hot``
        every item must carry exactly one label. Unknown labels raise one
        :class:`UnknownLabelError` naming all of them.
        """
        rows = [item.labels if isinstance(item, Clip) else (item,) if isinstance(item, str) else tuple(item)
                for item in items]
        unknown = [label for row in rows for label in row if label not in self._index]
        if unknown:
            raise UnknownLabelError(unknown, len(self))
        if multi_hot:
            matrix = np.zeros((len(rows), len(self)), dtype=np.float32)
            for i, row in enumerate(rows):
                matrix[i, [self._index[label] for label in row]] = 1.0
            return matrix
        wrong = [i for i, row in enumerate(rows) if len(row) != 1]
        if wrong:
            raise InvalidInput(f"{len(wrong)} item(s) do not carry exactly one label (first: item {wrong[0]}, "
                             f"{list(rows[wrong[0]])}); use multi_hot=True for multi-label data")
        return np.array([self._index[row[0]] for row in rows], dtype=np.int64)

    def decode(self, indices: Iterable[int]) -> list[str]:
        """Labels of class indices."""
        return [self.labels[int(i)] for i in indices]

    def union(self, *others: "LabelMap") -> "LabelMap":
        """Merged label space: this map's labels keep their indices, new ones follow in order of appearance.

        ``LabelMap.union(a, b, c)`` merges the label spaces of several groups.
        """
        merged = dict.fromkeys(self.labels)
        for other in others:
            merged.update(dict.fromkeys(other.labels))
        return LabelMap(tuple(merged))
