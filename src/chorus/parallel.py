"""Running one worker over many items in parallel: a local process pool or a Ray cluster.

Both engines take a *worker factory*: a picklable callable ``factory(threads)`` that builds,
once per process (or Ray actor), a callable ``worker(item) -> result`` — typically one
that holds a loaded model. Items are processed in the order given; results come back
in that order (``ordered=True``) or as they complete.

Used by feature extraction (``chorus embed``) and by ``chorus predict``; Ray is imported
lazily, only by :func:`ray_map`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import ChorusError

ENGINES = ("local", "ray")
WorkerFactory = Callable[[int | None], Callable[[Any], Any]]
"""``factory(threads)``: builds the per-process worker; ``threads`` torch threads (None:
leave the process's setting)."""


def machine_workers() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_worker: Callable[[Any], Any] | None = None


def _init_process(factory: WorkerFactory, threads: int) -> None:
    global _worker
    _worker = factory(threads)


def _run_in_process(item: Any) -> Any:
    if _worker is None:
        raise RuntimeError("pool worker used before its initialiser ran")
    return _worker(item)


def pool_map(factory: WorkerFactory, items: Sequence[Any], workers: int, ordered: bool = True) -> Iterator[Any]:
    """``worker(item)`` for every item on ``workers`` spawned processes, each using an
    equal share of this machine's cores as torch threads; ``workers <= 1`` (or a single
    item) runs in this process with its own thread setting."""
    workers = max(1, min(workers, len(items)))
    if workers == 1:
        worker = factory(None)
        for item in items:
            yield worker(item)
        return
    import multiprocessing

    threads = max(1, machine_workers() // workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, _init_process, (factory, threads)) as pool:
        mapper = pool.imap if ordered else pool.imap_unordered
        yield from mapper(_run_in_process, items)


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[None]:
    """Join ``address`` (or start a local Ray with ``num_cpus``) unless Ray is already up;
    shut down only what this call started."""
    try:
        import ray
    except ImportError as exc:
        raise ChorusError("--engine ray needs Ray: pip install 'chorus-audio[ray]'") from exc
    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class Opaque:
    """An item or result carried through a Ray Data row as one Python object: Arrow cannot
    convert it, so Ray keeps it whole instead of turning its arrays and tuples into
    Arrow types."""

    value: Any


class RayWorker:
    """Ray Data actor holding one worker; each call processes one item (one row)."""

    def __init__(self, factory: WorkerFactory):
        self.worker = factory(1)

    def __call__(self, row: dict) -> dict:
        return {"position": row["position"], "result": Opaque(self.worker(row["item"].value))}


def ray_map(factory: WorkerFactory, items: Iterable[Any], workers: int | None, address: str | None,
            ordered: bool = True) -> Iterator[Any]:
    """``worker(item)`` for every item on a Ray Data actor pool of ``workers`` replicas
    (default: one per local core, or 2 on a cluster), a GPU each when CUDA is present."""
    rows = [{"position": position, "item": Opaque(item)} for position, item in enumerate(items)]
    if not rows:
        return
    with ray_session(address, workers or machine_workers()):
        import ray
        import torch

        actors = max(1, min(workers or (2 if address else machine_workers()), len(rows)))
        computed = ray.data.from_items(rows).map(
            RayWorker, fn_constructor_args=(factory,), concurrency=actors, num_cpus=1,
            num_gpus=1 if torch.cuda.is_available() else 0)
        pending: dict[int, Any] = {}
        following = 0
        for row in computed.iter_rows():
            result = row["result"].value
            if not ordered:
                yield result
                continue
            pending[int(row["position"])] = result
            while following in pending:
                yield pending.pop(following)
                following += 1
