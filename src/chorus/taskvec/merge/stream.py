"""The streaming merge driver: task vectors in, merged encoder weights out, tensor by tensor.

:func:`plan_merge` validates the inputs (one base fingerprint, the same parameter names and
shapes in every vector) and, for global-scope sparsifiers, runs the threshold pass. Then

- :func:`write_merged_encoder` streams ``θ0 + λ·f(τ_1..τ_K)`` into a safetensors file: for
  each base tensor name (sorted) it reads the base tensor and one delta per vector, merges,
  and writes. Peak memory: one tensor per input plus the output tensor. The base's
  fingerprint is computed in the same pass and checked before the file is committed.
- :meth:`MergePlan.directions` returns ``f`` for every parameter in memory, for the
  λ sweep, which then applies many λ without merging again.

Buffers (BatchNorm running statistics, ``buffers.`` deltas) are never merged by the method:
they take the convex combination of the vectors' buffer deltas with weights
``|w_i| · buffer_weight_i`` (a vector without a delta for a buffer counts as zero), and
λ does not scale them — the rule documented in docs/task-vector.md.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import torch
from torch import Tensor

from ...progress import ProgressFactory, resolve
from ..naming import BUFFER_PREFIX, is_buffer, shared_parameter_names, state_name, vector_label
from .errors import MergeError
from .registry import MergeMethod, MethodParams, TensorContext, get_method
from .sources import FingerprintHasher, TensorSource
from .thresholds import kth_largest_magnitudes
from .writer import StreamingSafetensorsWriter

class DeltaSource(Protocol):
    """What the driver needs of a task vector (:class:`chorus.taskvec.TaskVector` fits)."""

    manifest: object

    def keys(self) -> list[str]: ...

    def shape(self, name: str) -> tuple[int, ...]: ...

    def tensor(self, name: str) -> Tensor: ...


def _fingerprint(vector: DeltaSource) -> str:
    return vector.manifest.base.fingerprint


def _vector_id(vector: DeltaSource, index: int) -> str:
    """A stable id seeding the vector's random masks: the sha256 of its deltas file when
    stored (reordering a recipe's vectors then changes nothing), else its position."""
    files = getattr(vector.manifest, "files", None) or {}
    return files.get("deltas.safetensors", f"#{index}")


@dataclass
class MergePlan:
    """Validated inputs of one merge. ``bounds``: per vector, global magnitude thresholds.
    ``scales``: per vector, a factor applied to its parameter deltas before the method
    (``--equalize-norms``); None: unscaled. ``densities``: per vector, the kept fraction of
    its sparsifier (a recipe's per-vector ``density``); None: the parameters' one density. Each merged tensor's squared delta norms are
    recorded on the way, so :meth:`norms` is known after a merge without a second pass."""

    vectors: list[DeltaSource]
    method: MergeMethod
    params: MethodParams
    weights: tuple[float, ...]
    seed: int
    parameters: list[str]
    buffers: list[str]
    fingerprint: str
    bounds: tuple[dict[str, float], ...] | None = None
    vector_ids: tuple[str, ...] = field(default_factory=tuple)
    scales: tuple[float, ...] | None = None
    densities: tuple[float, ...] | None = None
    _squares: dict[str, tuple[float, ...]] = field(default_factory=dict, repr=False)

    def norms(self) -> list[float] | None:
        """``‖τ_i‖`` over every parameter delta (before ``scales``), once every parameter was
        read (by a merge, :meth:`directions` or :meth:`measure_norms`); None before."""
        if len(self._squares) < len(self.parameters):
            return None
        return [math.sqrt(sum(squares[i] for squares in self._squares.values())) for i in range(len(self.vectors))]

    def measure_norms(self, progress: ProgressFactory | None = None) -> list[float]:
        """Read every parameter delta once for :meth:`norms` (what ``--equalize-norms`` needs
        before merging)."""
        bar = resolve(progress)(len(self.parameters), "task-vector norms")
        try:
            for name in self.parameters:
                if name not in self._squares:
                    self._record(name, [vector.tensor(name) for vector in self.vectors])
                bar.update(1)
        finally:
            bar.close()
        return self.norms()

    def _record(self, name: str, deltas: Sequence[Tensor]) -> None:
        self._squares[name] = tuple(float(torch.linalg.vector_norm(delta.float())) ** 2 for delta in deltas)

    def default_lambda(self) -> float:
        return self.method.default_lambda(self.params, len(self.vectors))

    def direction(self, name: str) -> Tensor:
        """The merged direction ``f`` of parameter ``name`` (float32)."""
        deltas = [vector.tensor(name).float() for vector in self.vectors]
        self._record(name, deltas)
        if self.scales is not None:
            deltas = [delta * scale for delta, scale in zip(deltas, self.scales)]
        gram = (lambda index: self.vectors[index].gram(name)) if self.method.gram_source else None
        context = TensorContext(name=name, weights=self.weights, vector_ids=self.vector_ids, seed=self.seed,
                                bounds=self.bounds, gram=gram, densities=self.densities)
        merged = self.method.function(deltas, self.params, context)
        if tuple(merged.shape) != tuple(deltas[0].shape):
            raise MergeError(f"method {self.method.name!r} returned shape {tuple(merged.shape)} for {name!r} "
                             f"of shape {tuple(deltas[0].shape)}")
        return merged

    def buffer_delta(self, name: str) -> Tensor:
        """The convex combination of the vectors' deltas of buffer ``name`` (``buffers.`` name)."""
        weights = [abs(w) * float(getattr(v.manifest, "buffer_weight", 1.0)) for w, v in zip(self.weights, self.vectors)]
        total = sum(weights)
        result = None
        for weight, vector in zip(weights, self.vectors):
            if name in vector.keys() and weight:
                part = vector.tensor(name).float() * (weight / total)
                result = part if result is None else result + part
        return result if result is not None else torch.zeros(self._buffer_shape(name))

    def _buffer_shape(self, name: str) -> tuple[int, ...]:
        for vector in self.vectors:
            if name in vector.keys():
                return tuple(vector.shape(name))
        raise MergeError(f"no vector holds buffer {name!r}")

    def directions(self, progress: ProgressFactory | None = None) -> dict[str, Tensor]:
        """``f`` of every parameter and the combined delta of every buffer, in memory
        (buffers under their ``buffers.`` names)."""
        bar = resolve(progress)(len(self.parameters) + len(self.buffers), f"merging ({self.method.name})")
        result = {}
        try:
            for name in self.parameters:
                result[name] = self.direction(name)
                bar.update(1)
            for name in self.buffers:
                result[name] = self.buffer_delta(name)
                bar.update(1)
        finally:
            bar.close()
        return result


def plan_merge(vectors: Sequence[DeltaSource], method: str, params: dict | MethodParams | None = None,
               weights: Sequence[float] | None = None, seed: int = 0,
               progress: ProgressFactory | None = None,
               densities: Sequence[float | None] | None = None) -> MergePlan:
    """Validate the inputs of a merge and run the global-threshold pass if the method needs it.

    ``densities``: per vector, its own kept fraction (None entries: the parameters'
    ``density``), for methods registered with ``vector_density`` (TIES, DARE, Breadcrumbs).

    Raises :class:`~chorus.taskvec.BaseMismatchError` when vectors come from different bases
    and :class:`MergeError` when their parameter names or shapes differ.
    """
    from ..errors import BaseMismatchError

    spec = get_method(method)
    parsed = spec.parse(params)
    vectors = list(vectors)
    if not vectors:
        raise MergeError("a merge needs at least one task vector")
    weights = tuple(float(w) for w in (weights if weights is not None else [1.0] * len(vectors)))
    if len(weights) != len(vectors):
        raise MergeError(f"{len(vectors)} task vectors but {len(weights)} weights")
    if not any(weights):
        raise MergeError("every weight is zero")
    first = _fingerprint(vectors[0])
    for index, vector in enumerate(vectors[1:], start=1):
        if _fingerprint(vector) != first:
            raise BaseMismatchError(first, _fingerprint(vector), what=f"{vector_label(vector, index)}'s base")
    parameters = sorted(shared_parameter_names(vectors))
    if spec.gram_source:
        _check_grams(vectors, spec)
    buffers = sorted({name for vector in vectors for name in vector.keys() if is_buffer(name)})
    plan = MergePlan(vectors, spec, parsed, weights, seed, parameters, buffers, first,
                     vector_ids=tuple(_vector_id(v, i) for i, v in enumerate(vectors)),
                     densities=_vector_densities(spec, parsed, densities, len(vectors)))
    numel = sum(_numel(vectors[0].shape(name)) for name in parameters)
    ranks = spec.ranks(parsed, numel)
    if ranks:
        own = [spec.ranks(parsed.model_copy(update={"density": d}), numel) for d in plan.densities or ()]
        bar = resolve(progress)(2 * len(parameters), "global magnitude thresholds")

        def stream():
            for name in parameters:
                yield [vector.tensor(name) for vector in vectors]
                bar.update(1)

        try:
            thresholds = kth_largest_magnitudes(stream, len(vectors),
                                                [list(r.values()) for r in own] or list(ranks.values()))
            plan.bounds = tuple(dict(zip(ranks, values)) for values in thresholds)
        finally:
            bar.close()
    return plan


def _vector_densities(spec: MergeMethod, params: MethodParams, densities: Sequence[float | None] | None,
                      count: int) -> tuple[float, ...] | None:
    """Every vector's density (None entries: ``params.density``), or None when none is given."""
    if densities is None or all(d is None for d in densities):
        return None
    if not spec.vector_density:
        raise MergeError(f"method {spec.name!r} takes no per-vector density (ties, dare and breadcrumbs do)")
    if len(densities) != count:
        raise MergeError(f"{count} task vectors but {len(densities)} densities")
    values = tuple(float(params.density if d is None else d) for d in densities)
    bad = [d for d in values if not 0.0 < d <= 1.0]
    if bad:
        raise MergeError(f"a density must lie in (0, 1], got {bad[0]}")
    return values


def _check_grams(vectors: Sequence[DeltaSource], spec: MergeMethod) -> None:
    """Every vector carries Gram statistics of the kind ``spec`` reads (:class:`MergeError`
    naming the vectors that do not)."""
    missing = [vector_label(v, i) for i, v in enumerate(vectors) if not getattr(v, "has_gram", False)]
    if missing:
        raise MergeError(f"method {spec.name!r} needs Gram statistics, which {', '.join(missing)} lack "
                         "(chorus tv gram VECTOR --data MANIFEST, or chorus finetune --gram)")
    sources = [v.manifest.gram.computed_on for v in vectors]
    if spec.gram_source == "finetuned":
        other = [vector_label(v, i) for i, (v, s) in enumerate(zip(vectors, sources)) if s != "finetuned"]
        if other:
            raise MergeError(f"method {spec.name!r} needs Grams of each party's own fine-tuned encoder; those of "
                             f"{', '.join(other)} were computed on another encoder (use regmean_pp)")
    else:
        merged = [s for s in sources if s != "finetuned"]
        reference = max(merged, key=merged.count) if merged else None
        other = [vector_label(v, i) for i, (v, s) in enumerate(zip(vectors, sources)) if s != reference]
        if other:
            raise MergeError(f"method {spec.name!r} needs every vector's Grams computed on one merged encoder "
                             f"(chorus tv gram VECTOR --on MERGED_MODEL); those of {', '.join(other)} were not")


def _numel(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count


def check_base_layout(plan: MergePlan, base: TensorSource) -> None:
    """Every delta must name a floating base tensor of the same shape (:class:`MergeError`)."""
    available = set(base.keys())
    for name in plan.parameters + plan.buffers:
        target = state_name(name)
        if target not in available:
            raise MergeError(f"the base encoder has no tensor {target!r} that the task vectors change")
        dtype, shape = base.info(target)
        expected = tuple(plan.vectors[0].shape(name)) if name in plan.vectors[0].keys() else plan._buffer_shape(name)
        if tuple(shape) != expected or not dtype.is_floating_point:
            raise MergeError(f"base tensor {target!r} is {dtype}{list(shape)}, the task vectors change {list(expected)}")


def write_merged_encoder(plan: MergePlan, base: TensorSource, out: str | Path, lam: float | None = None,
                         progress: ProgressFactory | None = None, checks: Sequence[Callable[[], None]] = (),
                         on_merged: Callable[[str], None] | None = None, dtype: torch.dtype | None = None) -> str:
    """Stream ``θ0 + λ·f`` (buffers: ``θ0 + convex mean``) for every base tensor into the
    safetensors file ``out``; return its sha256. ``lam`` None uses the method's default.
    ``dtype``: every floating tensor is written in it (None: each in the base tensor's dtype);
    integer tensors (counters) keep theirs.

    The base's fingerprint is computed on the way; if it differs from the vectors' the file
    is not written and :class:`~chorus.taskvec.BaseMismatchError` names both. ``checks``
    (e.g. the inputs' sha256 verification) run once every tensor is merged; if one raises,
    nothing is written either. ``on_merged`` (if given) receives the merged encoder's
    fingerprint (:func:`~chorus.taskvec.fingerprint.base_fingerprint` of what is written)
    before the checks; it may raise to leave no output.

    Two worker threads run beside the merge: one hashes each base tensor (fingerprint), the
    other writes and hashes each merged tensor, while the next one merges (at most two
    tensors in flight on each); hashing, file writes and torch kernels release the GIL.
    """
    from ..errors import BaseMismatchError

    check_base_layout(plan, base)
    lam = plan.default_lambda() if lam is None else float(lam)
    parameters, buffers = set(plan.parameters), set(plan.buffers)
    names = sorted(base.keys())
    hasher = FingerprintHasher()
    layout = [(name, *base.info(name)) for name in names]
    if dtype is not None:
        layout = [(name, dtype if kind.is_floating_point else kind, shape) for name, kind, shape in layout]
    written = {name: kind for name, kind, _ in layout}
    merged_hasher = FingerprintHasher() if on_merged is not None else None

    def write(name: str, tensor: Tensor) -> None:
        writer.write(name, tensor)
        if merged_hasher is not None:
            merged_hasher.update(name, tensor)

    bar = resolve(progress)(len(names), f"writing merged encoder ({plan.method.name})")
    try:
        with ThreadPoolExecutor(1) as fingerprinting, ThreadPoolExecutor(1) as writing, \
                StreamingSafetensorsWriter(out, layout) as writer:
            in_flight: deque = deque()
            for name in names:
                original = base.tensor(name)
                in_flight.append(fingerprinting.submit(hasher.update, name, original))
                if name in parameters:
                    merged = torch.add(original.float(), plan.direction(name), alpha=lam).to(written[name])
                elif BUFFER_PREFIX + name in buffers:
                    merged = (original.float() + plan.buffer_delta(BUFFER_PREFIX + name)).to(written[name])
                else:
                    merged = original.to(written[name])
                if merged.is_floating_point() and not bool(torch.isfinite(merged).all()):
                    raise MergeError(f"{out}: the merged tensor {name!r} holds non-finite values (NaN or inf); "
                                     "check the vectors' weights, λ and parameters — nothing was written")
                in_flight.append(writing.submit(write, name, merged))
                while len(in_flight) > 2:
                    in_flight.popleft().result()
                bar.update(1)
            for future in in_flight:
                future.result()
            if on_merged is not None:
                on_merged(merged_hasher.hexdigest())
            for check in checks:
                check()
            if hasher.hexdigest() != plan.fingerprint:
                raise BaseMismatchError(plan.fingerprint, hasher.hexdigest())
            return writer.commit()
    finally:
        bar.close()


def apply_directions(base_state: dict[str, Tensor], directions: dict[str, Tensor], lam: float) -> dict[str, Tensor]:
    """A new state dict ``θ0 + λ·f`` (buffers: ``θ0 + their combined delta``), in memory."""
    result = {}
    for name, original in base_state.items():
        if name in directions:
            result[name] = torch.add(original.float(), directions[name], alpha=lam).to(original.dtype)
        elif BUFFER_PREFIX + name in directions:
            result[name] = (original.float() + directions[BUFFER_PREFIX + name]).to(original.dtype)
        else:
            result[name] = original.clone()
    return result
