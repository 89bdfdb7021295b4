"""Registry of merge methods: small pure functions over one named tensor, by name.

A method receives the ``K`` deltas of one tensor name and a :class:`TensorContext`, and
returns the merged *direction* ``f(τ_1..τ_K)`` of that tensor; the driver adds
``λ · f`` to the base. Parameters are a pydantic model per method, so recipes validate them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from pydantic import ConfigDict
from torch import Tensor

from ...schema import FrozenModel
from .errors import MergeError


class MethodParams(FrozenModel):
    """Base of every method's parameters: strict, immutable, finite numbers only."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class TensorContext:
    """What a method knows besides the deltas of one tensor.

    ``name``: the tensor's name (seeds random masks, so results never depend on the order
    tensors are processed in). ``weights``: one per vector. ``vector_ids``: stable ids of
    the vectors (seed their masks). ``seed``: the merge's seed. ``bounds``: per vector,
    magnitude thresholds computed over the whole vector by a first pass (global scope),
    under the names the method's ``global_ranks`` gave them; None for per-tensor scope.
    ``gram``: for methods that need Gram statistics, ``gram(i)`` reads vector ``i``'s
    ``XᵀX`` ``[d, d]`` (float64, a new tensor each call: the method may change it) of
    this tensor's layer inputs, or None when it has none. ``densities``: per vector, the
    kept fraction its sparsifier uses (a recipe's per-vector ``density``); None: the
    parameters' one density for every vector (methods registered with ``vector_density``).
    """

    name: str
    weights: tuple[float, ...]
    vector_ids: tuple[str, ...]
    seed: int = 0
    bounds: tuple[dict[str, float], ...] | None = None
    gram: Callable[[int], Tensor | None] | None = None
    densities: tuple[float, ...] | None = None

    def density(self, index: int, default: float) -> float:
        """Vector ``index``'s density: its own when the merge gives one per vector, else ``default``."""
        return default if self.densities is None else self.densities[index]


MergeFunction = Callable[[Sequence[Tensor], MethodParams, TensorContext], Tensor]
GramSource = Literal["finetuned", "merged"]
"""Which Gram statistics a method reads: each party's own fine-tuned encoder's, or all
computed on one merged encoder (``computed_on`` in the task-vector manifest)."""
GlobalRanks = Callable[[MethodParams, int], dict[str, int]]
"""``ranks(params, numel)``: the k-th largest magnitudes (k from 1) of each whole vector of
``numel`` parameter entries the method needs, by name (e.g. ``{"kept": k}``), or ``{}`` when
it works per tensor; the thresholds come back in :attr:`TensorContext.bounds` under the
same names."""


@dataclass(frozen=True)
class MergeMethod:
    """A registered merge method.

    ``default_lambda(params, k)``: the scaling λ used when a recipe sets none and no
    validation sweep runs. ``source``: the paper the method comes from. ``gram_source``:
    the Gram statistics every vector must carry (None: the method needs none).
    ``vector_density``: the method's ``density`` parameter may be given per vector.
    """

    name: str
    function: MergeFunction
    params: type[MethodParams]
    default_lambda: Callable[[MethodParams, int], float]
    source: str
    summary: str
    global_ranks: GlobalRanks | None = None
    gram_source: GramSource | None = None
    vector_density: bool = False

    def parse(self, values: dict | MethodParams | None) -> MethodParams:
        """Validate ``values`` into this method's parameters (:class:`MergeError` if bad)."""
        from pydantic import ValidationError

        if isinstance(values, self.params):
            return values
        try:
            return self.params.model_validate(dict(values or {}))
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
            raise MergeError(f"invalid parameters for merge method {self.name!r}: {reasons}") from None

    def ranks(self, params: MethodParams, numel: int) -> dict[str, int]:
        return self.global_ranks(params, numel) if self.global_ranks else {}


_METHODS: dict[str, MergeMethod] = {}


def register_method(name: str, *, params: type[MethodParams], source: str, summary: str,
                    default_lambda: float | Callable[[MethodParams, int], float] = 1.0,
                    global_ranks: GlobalRanks | None = None,
                    gram_source: GramSource | None = None,
                    vector_density: bool = False) -> Callable[[MergeFunction], MergeFunction]:
    """Decorator registering ``function(deltas, params, ctx) -> Tensor`` under ``name``."""
    lam = default_lambda if callable(default_lambda) else (lambda _p, _k, value=float(default_lambda): value)

    def decorate(function: MergeFunction) -> MergeFunction:
        if name in _METHODS:
            raise ValueError(f"merge method {name!r} registered twice")
        _METHODS[name] = MergeMethod(name, function, params, lam, source, summary, global_ranks, gram_source,
                                    vector_density)
        return function

    return decorate


def get_method(name: str) -> MergeMethod:
    _import_methods()
    try:
        return _METHODS[name]
    except KeyError:
        raise MergeError(f"unknown merge method {name!r}; known: {', '.join(sorted(_METHODS))}") from None


def method_names() -> list[str]:
    """Every registered method, by name."""
    _import_methods()
    return sorted(_METHODS)


def _import_methods() -> None:
    """Import every module of this package once: each method module registers itself, so
    adding a method is adding one file."""
    from ...registration import import_submodules

    import_submodules(__package__)
