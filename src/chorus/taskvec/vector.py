"""``TaskVector``: τ = θ_finetuned − θ_base as a stored, validated, lazily read artifact.

Task arithmetic after Ilharco et al., *Editing Models with Task Arithmetic* (ICLR 2023).
A :class:`TaskVector` is a linear combination ``Σ c_i τ_i`` of stored vectors (one term
with coefficient 1 for a vector just loaded or taken from two models). Arithmetic builds
new combinations without reading any tensor; :meth:`TaskVector.tensor` reads the
operands' tensors of one name only, so merges stream tensor by tensor.

Buffer rule (BatchNorm running statistics; docs/task-vector.md): parameter deltas add
linearly, buffer deltas (``buffers.`` names) combine as a weighted mean with weights
``|c_i| * buffer_weight_i``, because statistics are not directions.
"""

from __future__ import annotations

import abc
import math
import numbers
import shutil
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

from .. import __version__
from ..fileio import write_json
from ..model.layout import parse_json_file
from ..model.schema import ClassifierSettings, HeadEntry
from ..tensorfile import read_header, save_tensors, verify_sha256
from . import storage
from .errors import (BaseMismatchError, IncompatibleVectorsError, SparseStorageWarning, TaskVectorError,
                     TaskVectorFileError)
from .fingerprint import base_fingerprint
from .gram import COUNT_SUFFIX, check_gram_header, read_gram
from .manifest import (CLASSSTATS_FILE, DELTAS_FILE, FORMAT_VERSION, GRAM_FILE, HEAD_FILE, MANIFEST_FILE, BaseEntry,
                       StorageSpec, TaskVectorManifest, TensorEntry, TrainingSummary)
from .naming import BUFFER_PREFIX, is_buffer

HeadTensors = tuple[Tensor, Tensor]
"""``(weight [classes, features], bias [classes])`` of one linear head."""


class _Leaf(abc.ABC):
    """One stored vector: its manifest and a way to read one delta at a time."""

    manifest: TaskVectorManifest

    @abc.abstractmethod
    def read(self, name: str, exact: bool) -> Tensor:
        """Delta ``name``: float32, or float64 including the exactness correction."""

    @abc.abstractmethod
    def residual(self, name: str) -> storage.Residual | None:
        """The exactness correction of ``name``, if stored."""

    @abc.abstractmethod
    def head_tensors(self) -> list[HeadTensors]:
        """Weights of the heads in ``manifest.heads``, in order."""

    def gram(self, name: str) -> Tensor | None:
        """The stored Gram of weight ``name`` (float64, validated), None when there is none."""
        return None


class _MemoryLeaf(_Leaf):
    def __init__(self, manifest: TaskVectorManifest, deltas: dict[str, Tensor],
                 residuals: dict[str, storage.Residual], heads: list[HeadTensors]):
        self.manifest, self._deltas, self._residuals, self._heads = manifest, deltas, residuals, heads

    def read(self, name: str, exact: bool) -> Tensor:
        if not exact:
            return self._deltas[name].clone()
        delta = self._deltas[name].double()
        if name in self._residuals:
            indices, values = self._residuals[name]
            delta.view(-1)[indices] += values
        return delta

    def residual(self, name: str) -> storage.Residual | None:
        return self._residuals.get(name)

    def head_tensors(self) -> list[HeadTensors]:
        return [(w.clone(), b.clone()) for w, b in self._heads]


class _FileLeaf(_Leaf):
    def __init__(self, directory: Path, manifest: TaskVectorManifest, gram_names: frozenset[str] = frozenset()):
        self.directory, self.manifest, self.gram_names = directory, manifest, gram_names

    def gram(self, name: str) -> Tensor | None:
        return read_gram(self.directory / GRAM_FILE, name) if name in self.gram_names else None

    def _open(self, file: str):
        from safetensors import safe_open

        return safe_open(str(self.directory / file), framework="pt")

    def read(self, name: str, exact: bool) -> Tensor:
        with self._open(DELTAS_FILE) as handle:
            return storage.decode(handle, name, self.manifest.tensors[name], exact)

    def residual(self, name: str) -> storage.Residual | None:
        if not self.manifest.tensors[name].residuals:
            return None
        with self._open(DELTAS_FILE) as handle:
            return storage.read_residual(handle, name)

    def head_tensors(self) -> list[HeadTensors]:
        if not self.manifest.heads:
            return []
        with self._open(HEAD_FILE) as handle:
            return [(handle.get_tensor(f"{i}.weight"), handle.get_tensor(f"{i}.bias"))
                    for i in range(len(self.manifest.heads))]


class TaskVector:
    """A task vector, or a linear combination of task vectors sharing one base encoder.

    ``manifest``: the :class:`TaskVectorManifest` (for combinations: derived, no files).
    """

    def __init__(self, terms: Sequence[tuple[float, _Leaf]]):
        if not terms:
            raise TaskVectorError("a task vector needs at least one term")
        self._terms = list(terms)
        self.manifest = _combined_manifest(self._terms)

    # ----------------------------------------------------------------- reading
    @property
    def fingerprint(self) -> str:
        """Fingerprint of the base encoder this vector applies to."""
        return self.manifest.base.fingerprint

    @property
    def heads(self) -> list[HeadEntry]:
        return self.manifest.heads

    def keys(self) -> list[str]:
        """Logical tensor names: encoder parameter names, then ``buffers.`` names."""
        return list(self.manifest.tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._entry(name).shape)

    def _entry(self, name: str) -> TensorEntry:
        try:
            return self.manifest.tensors[name]
        except KeyError:
            raise TaskVectorError(f"task vector has no tensor {name!r}") from None

    def tensor(self, name: str, exact: bool = False) -> Tensor:
        """Delta ``name`` (shape of the encoder tensor): float32, or float64 with the
        exactness correction when ``exact`` (what :func:`~chorus.taskvec.apply` uses)."""
        self._entry(name)
        if is_buffer(name):
            weights = [abs(c) * leaf.manifest.buffer_weight for c, leaf in self._terms]
            parts = [(w, leaf) for w, (_, leaf) in zip(weights, self._terms) if name in leaf.manifest.tensors]
            total = sum(weights)
        else:
            parts = [(c, leaf) for c, leaf in self._terms]
            total = 1.0
        if len(parts) == 1 and parts[0][0] == total != 0:
            return parts[0][1].read(name, exact)
        result = torch.zeros(self.shape(name), dtype=torch.float64 if exact else torch.float32)
        for coefficient, leaf in parts:
            if coefficient:
                result += (coefficient / total) * leaf.read(name, exact)
        return result

    def head_tensors(self) -> list[HeadTensors]:
        """``(weight, bias)`` of every head in :attr:`heads`, in order."""
        return [pair for leaf in _unique_leaves(self._terms) for pair in leaf.head_tensors()]

    @property
    def has_gram(self) -> bool:
        """True for a stored vector (not a combination) that carries Gram statistics."""
        return len(self._terms) == 1 and self._terms[0][0] == 1.0 and isinstance(self._terms[0][1], _FileLeaf) \
            and self.manifest.gram is not None

    def gram(self, name: str) -> Tensor | None:
        """``XᵀX`` ``[d, d]`` (float64) of the inputs of weight ``name`` over the party's clips
        (see :mod:`chorus.taskvec.gram`); None when the vector holds none for ``name``."""
        return self._terms[0][1].gram(name) if self.has_gram else None

    @property
    def has_class_stats(self) -> bool:
        """True for a stored vector (not a combination) that carries class statistics."""
        return len(self._terms) == 1 and self._terms[0][0] == 1.0 and isinstance(self._terms[0][1], _FileLeaf) \
            and self.manifest.classstats is not None

    def class_stats(self):
        """The :class:`~chorus.taskvec.classstats.ClassStatistics` of the vector's clips (read
        and checked: finite, counts > 0, symmetric scatter), or None when it carries none."""
        from .classstats import read_class_stats

        if not self.has_class_stats:
            return None
        entry = self.manifest.classstats
        return read_class_stats(self._terms[0][1].directory / CLASSSTATS_FILE, entry.labels, entry.layer,
                                entry.pooling, entry.computed_on)

    # -------------------------------------------------------------- arithmetic
    def __add__(self, other: "TaskVector") -> "TaskVector":
        if not isinstance(other, TaskVector):
            return NotImplemented
        return TaskVector(self._terms + other._terms)

    def __radd__(self, other: object) -> "TaskVector":
        if isinstance(other, numbers.Number) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, coefficient: float) -> "TaskVector":
        if isinstance(coefficient, bool) or not isinstance(coefficient, numbers.Real):
            return NotImplemented
        if not math.isfinite(coefficient):
            raise TaskVectorError(f"coefficient must be finite, got {coefficient}")
        return TaskVector([(float(coefficient) * c, leaf) for c, leaf in self._terms])

    __rmul__ = __mul__

    def __neg__(self) -> "TaskVector":
        return self * -1.0

    def __sub__(self, other: "TaskVector") -> "TaskVector":
        if not isinstance(other, TaskVector):
            return NotImplemented
        return self + (-other)

    def __repr__(self) -> str:
        what = self.manifest.derivation or self.manifest.group or "task vector"
        return f"TaskVector({what}, {len(self.manifest.tensors)} tensors, base {self.fingerprint[:12]})"

    # ------------------------------------------------------------------- files
    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> "TaskVector":
        """Open a task-vector directory, validating the manifest, the safetensors headers,
        every file's sha256 (unless ``verify=False``) and that tensors match the manifest.
        Tensors themselves are read later, one at a time."""
        directory = Path(path)
        if directory.is_file() and directory.name == MANIFEST_FILE:
            directory = directory.parent
        manifest = parse_json_file(directory / MANIFEST_FILE, TaskVectorManifest, TaskVectorFileError)
        required = [DELTAS_FILE] + ([HEAD_FILE] if manifest.heads else [])
        headers = {}
        for file in required:
            if file not in manifest.files:
                raise TaskVectorFileError(directory / MANIFEST_FILE, f"files lacks the sha256 of {file}")
            headers[file] = read_header(directory / file)
            if verify:
                verify_sha256(directory / file, manifest.files[file])
        _check_deltas_header(directory / DELTAS_FILE, headers[DELTAS_FILE], manifest)
        if manifest.heads:
            _check_head_header(directory / HEAD_FILE, headers[HEAD_FILE], manifest.heads)
        gram_names: frozenset[str] = frozenset()
        if manifest.gram is not None:
            header = read_header(directory / GRAM_FILE)
            if verify:
                verify_sha256(directory / GRAM_FILE, manifest.files[GRAM_FILE])
            check_gram_header(directory / GRAM_FILE, header,
                              {name: entry.shape for name, entry in manifest.tensors.items() if not is_buffer(name)})
            gram_names = frozenset(key for key in header if not key.endswith(COUNT_SUFFIX))
        if manifest.classstats is not None:
            from .classstats import check_stats_header

            if verify:
                verify_sha256(directory / CLASSSTATS_FILE, manifest.files[CLASSSTATS_FILE])
            width = headers[HEAD_FILE]["0.weight"]["shape"][1]
            check_stats_header(directory / CLASSSTATS_FILE, read_header(directory / CLASSSTATS_FILE),
                               len(manifest.labels), width)
        return cls([(1.0, _FileLeaf(directory, manifest, gram_names))])

    def save(self, path: str | Path, *, dtype: str = "float32", density: float = 1.0,
             creator: str | None = None, license: str | None = None) -> Path:
        """Write ``taskvector.json``, ``deltas.safetensors`` and ``head.safetensors`` into the
        directory ``path``. ``dtype``: float32 (default), bfloat16 or float16. ``density``
        < 1 keeps only the top ``density`` fraction of each parameter delta by magnitude
        (buffers stay dense). The exactness correction is kept for float32 dense saves of
        a single, unscaled vector; so are ``gram.safetensors`` and ``classstats.safetensors``
        (copied) for any save of one."""
        if dtype not in storage.DTYPES:
            raise TaskVectorError(f"unknown delta dtype {dtype!r}; choose {', '.join(storage.DTYPES)}")
        spec = StorageSpec(dtype=dtype, density=density)
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        keep_residuals = dtype == "float32" and density == 1.0 and len(self._terms) == 1 and self._terms[0][0] == 1.0
        stored: dict[str, Tensor] = {}
        entries: dict[str, TensorEntry] = {}
        for name in self.keys():
            residual = self._terms[0][1].residual(name) if keep_residuals else None
            tensors, entries[name] = storage.encode(name, self.tensor(name), dtype,
                                                    1.0 if is_buffer(name) else density, residual)
            stored.update(tensors)
        _warn_if_sparse_is_larger(entries, dtype, density)
        files = {DELTAS_FILE: save_tensors(directory / DELTAS_FILE, stored)}
        if self.heads:
            heads = {f"{i}.{part}": tensor for i, pair in enumerate(self.head_tensors())
                     for part, tensor in zip(("weight", "bias"), pair)}
            files[HEAD_FILE] = save_tensors(directory / HEAD_FILE, heads)
        gram = self.manifest.gram if self.has_gram else None
        if gram is not None:
            source = self._terms[0][1].directory / GRAM_FILE
            if source.resolve() != (directory / GRAM_FILE).resolve():
                shutil.copyfile(source, directory / GRAM_FILE)
            files[GRAM_FILE] = self.manifest.files[GRAM_FILE]
        classstats = self.manifest.classstats if self.has_class_stats else None
        if classstats is not None:
            source = self._terms[0][1].directory / CLASSSTATS_FILE
            if source.resolve() != (directory / CLASSSTATS_FILE).resolve():
                shutil.copyfile(source, directory / CLASSSTATS_FILE)
            files[CLASSSTATS_FILE] = self.manifest.files[CLASSSTATS_FILE]
        manifest = self.manifest.model_copy(update={
            "storage": spec, "tensors": entries, "files": files, "chorus_version": __version__, "gram": gram,
            "classstats": classstats,
            "creator": creator if creator is not None else self.manifest.creator,
            "license": license if license is not None else self.manifest.license,
        })
        write_json(directory / MANIFEST_FILE, manifest.model_dump(mode="json"))
        return directory

    # ------------------------------------------------------------ construction
    @classmethod
    def from_models(cls, base: nn.Module, finetuned: nn.Module, *, encoder_name: str | None = None,
                    sample_rate: int | None = None, group: str | None = None,
                    classifier: ClassifierSettings | None = None, heads: Sequence[HeadEntry] = (),
                    head_tensors: Sequence[HeadTensors] = (), training: TrainingSummary | None = None,
                    creator: str | None = None, license: str | None = None) -> "TaskVector":
        """τ = ``finetuned`` − ``base`` over the encoders' state dicts.

        Every floating parameter is kept (zeros where frozen). Floating buffers are kept,
        under ``buffers.<name>``, only where they changed; integer buffers
        (``num_batches_tracked``) never. Deltas are float32 plus a sparse float64
        correction where ``float32(base + delta)`` would miss the fine-tuned value, so that
        :func:`~chorus.taskvec.apply` reproduces ``finetuned`` bit for bit.
        Encoder name, sample rate and architecture default to the base's attributes.
        """
        base_state, tuned_state = base.state_dict(), finetuned.state_dict()
        if set(base_state) != set(tuned_state):
            differ = sorted(set(base_state) ^ set(tuned_state))
            raise IncompatibleVectorsError(f"the two models have different tensors: {', '.join(differ[:5])}")
        parameters = {name for name, _ in base.named_parameters(remove_duplicate=False)}
        deltas: dict[str, Tensor] = {}
        residuals: dict[str, storage.Residual] = {}
        for name, before in base_state.items():
            after = tuned_state[name]
            if before.shape != after.shape:
                raise IncompatibleVectorsError(f"{name}: shape {tuple(before.shape)} vs {tuple(after.shape)}")
            if not before.is_floating_point() or (name not in parameters and torch.equal(before, after)):
                continue
            key = name if name in parameters else BUFFER_PREFIX + name
            deltas[key], residual = exact_delta(before.detach().cpu(), after.detach().cpu())
            if residual is not None:
                residuals[key] = residual
        if len(heads) != len(head_tensors):
            raise TaskVectorError(f"{len(heads)} head entries but {len(head_tensors)} head tensors")
        manifest = TaskVectorManifest(
            format_version=FORMAT_VERSION,
            base=BaseEntry(encoder=encoder_name or getattr(base, "name", type(base).__name__),
                           architecture=base.architecture() if hasattr(base, "architecture") else {},
                           fingerprint=base_fingerprint(base_state)),
            group=group, sample_rate=sample_rate or getattr(base, "sample_rate"),
            classifier=classifier, heads=list(heads),
            tensors={name: TensorEntry(shape=list(t.shape), residuals=int(residuals[name][0].numel())
                                       if name in residuals else 0) for name, t in deltas.items()},
            training=training, creator=creator, license=license, chorus_version=__version__,
        )
        heads_copy = [(w.detach().cpu().float().clone(), b.detach().cpu().float().clone()) for w, b in head_tensors]
        return cls([(1.0, _MemoryLeaf(manifest, deltas, residuals, heads_copy))])

    @classmethod
    def from_classifier(cls, base: nn.Module, model: nn.Module, **kwargs) -> "TaskVector":
        """τ of a fine-tuned :class:`~chorus.model.ClassifierModel` against its base encoder,
        carrying the model's heads and classifier settings. ``group`` defaults to the
        groups of the model's heads."""
        groups = [entry.group for entry in model.head_entries if entry.group]
        kwargs.setdefault("group", "+".join(groups) or None)
        return cls.from_models(base, model.encoder, encoder_name=model.encoder.name,
                               sample_rate=model.encoder.sample_rate, classifier=model.settings,
                               heads=model.head_entries,
                               head_tensors=[(h.weight, h.bias) for h in model.heads], **kwargs)


def exact_delta(before: Tensor, after: Tensor) -> tuple[Tensor, storage.Residual | None]:
    """``after − before`` in float32, and the float64 correction ``(indices, values)`` at the
    elements where ``dtype(before + delta)`` (added in float64) differs from ``after``."""
    delta = after.float() - before.float()
    wide = before.double() + delta.double()
    missed = (wide.to(after.dtype) != after).reshape(-1).nonzero().squeeze(1)
    if not missed.numel():
        return delta, None
    correction = (after.double() - before.double() - delta.double()).reshape(-1)[missed]
    return delta, (missed, correction)


def _unique_leaves(terms: Iterable[tuple[float, _Leaf]]) -> list[_Leaf]:
    seen: list[_Leaf] = []
    for _, leaf in terms:
        if not any(leaf is other for other in seen):
            seen.append(leaf)
    return seen


def _combined_manifest(terms: list[tuple[float, _Leaf]]) -> TaskVectorManifest:
    """The manifest of ``Σ c_i τ_i``: checks that the operands are compatible."""
    first = terms[0][1].manifest
    if len(terms) == 1 and terms[0][0] == 1.0:
        return first
    leaves = _unique_leaves(terms)
    tensors = {name: TensorEntry(shape=entry.shape) for name, entry in first.tensors.items() if not is_buffer(name)}
    for leaf in leaves[1:]:
        other = leaf.manifest
        if other.base.fingerprint != first.base.fingerprint:
            raise BaseMismatchError(first.base.fingerprint, other.base.fingerprint, what="the other task vector")
        params = {name: entry.shape for name, entry in other.tensors.items() if not is_buffer(name)}
        if params != {name: entry.shape for name, entry in tensors.items()}:
            differ = sorted(set(params) ^ set(tensors)) or sorted(n for n in params if params[n] != tensors[n].shape)
            raise IncompatibleVectorsError(f"task vectors disagree on parameter tensors: {', '.join(differ[:5])}")
    for leaf in leaves:
        for name, entry in leaf.manifest.tensors.items():
            if is_buffer(name):
                if name in tensors and tensors[name].shape != entry.shape:
                    raise IncompatibleVectorsError(f"task vectors disagree on the shape of {name}")
                tensors[name] = TensorEntry(shape=entry.shape)
    with_heads = [leaf.manifest for leaf in leaves if leaf.manifest.heads]
    settings = {(m.classifier.layer, m.classifier.pooling, m.classifier.task) for m in with_heads}
    if len(settings) > 1:
        raise IncompatibleVectorsError(f"heads read different layers/poolings/tasks: {sorted(settings)}")
    groups = [leaf.manifest.group for leaf in leaves if leaf.manifest.group]
    return TaskVectorManifest(
        format_version=FORMAT_VERSION, base=first.base, group="+".join(groups) or None,
        sample_rate=first.sample_rate, classifier=with_heads[0].classifier if with_heads else None,
        heads=[head for m in with_heads for head in m.heads],
        buffer_weight=sum(abs(c) * leaf.manifest.buffer_weight for c, leaf in terms), tensors=tensors,
        derivation=" + ".join(f"{c:g}*{leaf.manifest.group or 'tau'}" for c, leaf in terms),
        chorus_version=__version__,
    )


def _warn_if_sparse_is_larger(entries: dict[str, TensorEntry], dtype: str, density: float) -> None:
    """A :class:`SparseStorageWarning` when the sparse deltas take as many bytes as dense ones would."""
    sparse = [entry for entry in entries.values() if entry.sparse]
    if not sparse:
        return
    stored = sum(storage.stored_bytes(entry, dtype) for entry in sparse)
    dense = sum(storage.stored_bytes(TensorEntry(shape=entry.shape), dtype) for entry in sparse)
    if stored >= dense:
        warnings.warn(SparseStorageWarning(
            f"density {density:g} in {dtype} stores {stored:,} bytes of deltas, dense would take {dense:,}: "
            "sparse storage does not make this vector smaller (use a lower density, or density 1)"), stacklevel=3)


def _check_deltas_header(path: Path, header: dict, manifest: TaskVectorManifest) -> None:
    expected: dict[str, tuple[str, list[int]]] = {}
    for name, entry in manifest.tensors.items():
        expected.update(storage.expected_keys(name, entry, manifest.storage.dtype))
    found = {key: (info["dtype"], list(info["shape"])) for key, info in header.items()}
    if found != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
        groups = (("missing", missing), ("not in the manifest", extra), ("wrong dtype/shape", wrong))
        details = "; ".join(f"{label}: {', '.join(keys[:5])}" for label, keys in groups if keys)
        raise TaskVectorFileError(path, f"tensors disagree with {MANIFEST_FILE} ({details})")


def _check_head_header(path: Path, header: dict, heads: list[HeadEntry]) -> None:
    widths = set()
    for index, head in enumerate(heads):
        weight, bias = header.get(f"{index}.weight"), header.get(f"{index}.bias")
        if weight is None or bias is None or len(weight["shape"]) != 2 or weight["shape"][0] != len(head.labels) \
                or bias["shape"] != [len(head.labels)]:
            raise TaskVectorFileError(path, f"head {index} does not hold {len(head.labels)} classes "
                                            f"({len(head.labels)} labels in {MANIFEST_FILE})")
        widths.add(weight["shape"][1])
    if len(widths) > 1 or len(header) != 2 * len(heads):
        raise TaskVectorFileError(path, "heads disagree in width or the file holds extra tensors")
