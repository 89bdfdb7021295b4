"""Names inside task vectors: parameter deltas vs buffer deltas, the parameters a set of
vectors shares, and the group a vector was trained for.

A delta's *logical name* is the encoder state-dict name for a parameter and
``buffers.<state-dict name>`` for a buffer (BatchNorm running statistics), so that the
two kinds never collide and merges can treat buffers apart (docs/task-vector.md).
"""

from __future__ import annotations

from typing import Sequence

from .errors import IncompatibleVectorsError, MissingGroupError

BUFFER_PREFIX = "buffers."


def is_buffer(name: str) -> bool:
    """True for the logical name of a buffer delta (``buffers.<state-dict name>``)."""
    return name.startswith(BUFFER_PREFIX)


def state_name(name: str) -> str:
    """The encoder state-dict entry a logical delta name refers to."""
    return name[len(BUFFER_PREFIX):] if is_buffer(name) else name


def vector_label(vector, index: int) -> str:
    """``"task vector 2 (birds)"``: how messages name the ``index``-th vector of a call."""
    group = getattr(vector.manifest, "group", None)
    return f"task vector {index} ({group})" if group else f"task vector {index}"


def vector_group(vector) -> str | None:
    """The group a vector was trained for: its manifest's, else its first head's."""
    manifest = vector.manifest
    return manifest.group or next((head.group for head in manifest.heads if head.group), None)


def require_groups(vectors: Sequence, why: str) -> list[str]:
    """Every vector's group (:class:`MissingGroupError` naming the first without one;
    ``why`` completes "a ... needs each vector's group")."""
    groups = [vector_group(vector) for vector in vectors]
    for index, group in enumerate(groups):
        if group is None:
            raise MissingGroupError(f"task vector {index} names no group; {why} needs each vector's group")
    return groups


def shared_parameter_names(vectors: Sequence) -> list[str]:
    """The parameter (not buffer) names of ``vectors`` in the first vector's (network)
    order, after checking every
    vector holds the same names with the same shapes as the first
    (:class:`IncompatibleVectorsError` listing what differs)."""
    reference = {name: tuple(vectors[0].shape(name)) for name in vectors[0].keys() if not is_buffer(name)}
    for index, vector in enumerate(vectors[1:], start=1):
        found = {name: tuple(vector.shape(name)) for name in vector.keys() if not is_buffer(name)}
        if found != reference:
            missing = sorted(set(reference) - set(found))
            extra = sorted(set(found) - set(reference))
            wrong = sorted(n for n in set(found) & set(reference) if found[n] != reference[n])
            details = "; ".join(f"{label}: {', '.join(names[:4])}" for label, names in
                                (("missing", missing), ("extra", extra), ("other shape", wrong)) if names)
            raise IncompatibleVectorsError(f"{vector_label(vector, index)} does not match task vector 0's "
                                           f"parameters ({details})")
    return list(reference)
