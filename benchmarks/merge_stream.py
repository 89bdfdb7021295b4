"""Benchmark: streaming merge of K task vectors of a base-size encoder (chorus.taskvec.merge).

Set-up (cached in ``--workdir``, not timed): a random encoder shaped like WavLM Base
(94.4 M parameters: shapes read from ``transformers.WavLMConfig()`` on the meta device) saved
as ``base.safetensors``, and K task vectors (base + seeded noise, taken with
``TaskVector.from_models`` and saved in the task-vector format).

Measured, each in a fresh subprocess (peak RSS from ``getrusage`` of that process alone;
the parent never imports torch, since a child inherits its parent's peak at fork), inputs
warm in the page cache for all three (a read pass runs first), fastest of ``--repeats``:

- I/O floor: read every input file once (the K deltas files and the base) and write one
  model-sized output file;
- chorus: ``open_vectors`` (manifests and headers validated; the sha256 of every file
  checked, before the output is committed), ``plan_merge`` and ``write_merged_encoder``
  with ``task_arithmetic`` (θ0 + λ Σ τ_i), streaming tensor by tensor — twice: with the
  inputs seen for the first time (an empty ``CHORUS_CACHE_DIR``: every input is hashed on
  worker threads during the merge) and with inputs verified by an earlier merge and
  unchanged since (``chorus.verified``: not hashed again);
- chorus without the sha256 check of the inputs (what verification costs: hashing 3.4 GB
  is CPU-bound, about 0.7 s per GB per core here);
- naive: every state dict loaded into memory (``safetensors.torch.load_file``), summed,
  saved with ``save_file`` — what merging toolkits that hold all models do.

``--method regmean`` (or ``regmean_pp``, any method needing Gram statistics) also stores
synthetic Gram statistics with every vector (``c·I + Y Yᵀ``, ``Y`` ``[d, 8]``, for each
linear layer and ungrouped convolution of WavLM Base; about 0.6 GB per vector) and merges
with that method in the chorus runs, so the peak RSS includes reading the Grams; the
naive run stays task arithmetic in memory (no toolkit offers RegMean from stored Grams).

``--methods all`` (or a comma-separated list) measures instead, for every merge method,
one chorus merge in its own process (inputs new: every file hashed, Grams included) and
prints its peak RSS over one model's size, the largest ratio last (target ≤ 2.5). The
vectors carry synthetic Grams (as above) so that ``regmean`` reads them; ``slerp`` takes
the first two vectors (it merges two); ``wudi`` runs ``--wudi-steps`` Adam steps per matrix
instead of 300 (its memory does not depend on the step count; 300 steps of WavLM Base's
matrices take tens of minutes of CPU); ``regmean_pp`` is not run (RegMean's solve on
Grams of a merged encoder: the same streaming as ``regmean``); ``negation`` is run.

Usage: ``python benchmarks/merge_stream.py [--vectors 8] [--workdir DIR] [--method M]
[--methods all]``. Prints the peak RSS over one model's size and the wall time over the
I/O floor, ratios last.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 1 << 24


def meta_model():
    """WavLM Base on the meta device (no weights allocated)."""
    import torch
    from transformers import WavLMConfig, WavLMModel

    with torch.device("meta"):
        return WavLMModel(WavLMConfig())


def model_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of WavLM Base."""
    return {name: tuple(p.shape) for name, p in meta_model().named_parameters()}


def write_grams(paths: list[Path]) -> None:
    """Synthetic Gram statistics for every vector that has none yet (seeded)."""
    import torch

    from chorus.taskvec.gram import GramStatistics, gram_layers, input_width, write_gram
    from chorus.taskvec.manifest import GRAM_FILE

    widths = {name: input_width(tuple(module.weight.shape)) for name, module in gram_layers(meta_model()).items()}
    for index, path in enumerate(paths):
        if (path / GRAM_FILE).exists():
            continue
        gen = torch.Generator().manual_seed(100 + index)
        grams = {}
        for name, width in widths.items():
            factor = torch.randn(width, 8, generator=gen, dtype=torch.float64)
            grams[name] = factor @ factor.T + torch.eye(width, dtype=torch.float64)
        write_gram(path, GramStatistics(grams, dict.fromkeys(grams, 1000), clips=100))
        del grams


def holder(state):
    """An ``nn.Module`` whose parameters are ``state`` under the same dotted names."""
    from torch import nn

    root = nn.Module()
    for name, tensor in state.items():
        *path, leaf = name.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_parameter(leaf, nn.Parameter(tensor, requires_grad=False))
    return root


def prepare(workdir: Path, vectors: int) -> tuple[Path, list[Path]]:
    """Base weights and ``vectors`` task vectors under ``workdir`` (reused when present)."""
    import torch

    from chorus.taskvec import TaskVector
    from chorus.tensorfile import save_tensors

    base_file = workdir / "base.safetensors"
    paths = [workdir / f"tv{i}" for i in range(vectors)]
    if base_file.exists() and all((p / "taskvector.json").exists() for p in paths):
        return base_file, paths
    gen = torch.Generator().manual_seed(0)
    state = {name: 0.02 * torch.randn(shape, generator=gen) for name, shape in model_shapes().items()}
    save_tensors(base_file, state)
    base = holder(state)
    for index, path in enumerate(paths):
        if (path / "taskvector.json").exists():
            continue
        noise = torch.Generator().manual_seed(1 + index)
        tuned = holder({name: t + 1e-3 * torch.randn(t.shape, generator=noise) for name, t in state.items()})
        TaskVector.from_models(base, tuned, encoder_name="wavlm-base-shaped", sample_rate=16_000,
                               group=f"task{index}").save(path)
        del tuned
    return base_file, paths


def io_floor(base_file: Path, paths: list[Path], out: Path) -> None:
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    for file in [base_file] + [p / "deltas.safetensors" for p in paths]:
        with open(file, "rb", buffering=0) as handle:
            while handle.readinto(view):
                pass
    with open(out, "wb") as handle:
        remaining = base_file.stat().st_size
        while remaining > 0:
            count = min(CHUNK, remaining)
            handle.write(view[:count])
            remaining -= count
        handle.flush()
        os.fsync(handle.fileno())


METHOD = "task_arithmetic"
PARAMS: dict = {}
TWO_VECTORS = ("slerp",)
NOT_RUN = ("regmean_pp",)


def ours(base_file: Path, paths: list[Path], out: Path) -> None:
    from chorus.taskvec.merge import plan_merge, write_merged_encoder
    from chorus.merging.recipe_run import open_vectors
    from chorus.taskvec.merge.sources import SafetensorsFile

    vectors, checks = open_vectors(paths[:2] if METHOD in TWO_VECTORS else paths, verify_now=False)
    write_merged_encoder(plan_merge(vectors, METHOD, PARAMS), SafetensorsFile(base_file), out, 0.3, checks=checks)


def unverified(base_file: Path, paths: list[Path], out: Path) -> None:
    """``ours`` without the sha256 check of the inputs (to show what the checks cost)."""
    from chorus.taskvec import TaskVector
    from chorus.taskvec.merge import plan_merge, write_merged_encoder
    from chorus.taskvec.merge.sources import SafetensorsFile, StoredDeltas

    vectors = [StoredDeltas(TaskVector.load(p, verify=False), p) for p in paths]
    write_merged_encoder(plan_merge(vectors, METHOD), SafetensorsFile(base_file), out, 0.3)


def runtime(base_file: Path, paths: list[Path], out: Path) -> None:
    """Nothing: the peak RSS of the interpreter with torch and chorus imported."""
    import chorus.taskvec.merge  # noqa: F401


def naive(base_file: Path, paths: list[Path], out: Path) -> None:
    from safetensors.torch import load_file, save_file

    base = load_file(str(base_file))
    deltas = [load_file(str(p / "deltas.safetensors")) for p in paths]
    merged = {name: tensor + 0.3 * sum(d[name] for d in deltas) for name, tensor in base.items()}
    save_file(merged, str(out))
    with open(out, "rb+") as handle:  # as durable as the other two
        os.fsync(handle.fileno())


KINDS = {"floor": io_floor, "ours": ours, "unverified": unverified, "naive": naive, "runtime": runtime}


def child(kind: str, workdir: Path, vectors: int, method: str, params: dict) -> None:
    """Run one measurement and print ``{"seconds", "peak_rss"}`` as JSON. (The parent never
    imports torch: a child inherits its parent's peak RSS at fork.)"""
    import torch

    from chorus.taskvec.merge import get_method

    global METHOD, PARAMS
    METHOD, PARAMS = method, params
    torch.set_num_threads(1)
    base_file, paths = prepare(workdir, vectors)
    if kind == "prepare" and get_method(method).gram_source:
        write_grams(paths)
    if kind == "prepare":
        print(json.dumps({"model_bytes": base_file.stat().st_size,
                          "input_bytes": sum(f.stat().st_size for f in [base_file] + [p / "deltas.safetensors"
                                                                                      for p in paths])}))
        return
    out = workdir / f"out-{kind}.safetensors"
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    start = time.perf_counter()
    KINDS[kind](base_file, paths, out)
    seconds = time.perf_counter() - start
    out.unlink(missing_ok=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "peak_rss": usage.ru_maxrss * 1024,
                      "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before}))


def measure_in_child(kind: str, workdir: Path, vectors: int, cache: Path | None = None, method: str = METHOD,
                     params: dict | None = None) -> dict:
    """``kind`` in a fresh process; ``cache``: its ``CHORUS_CACHE_DIR`` (default: a new, empty one)."""
    command = [sys.executable, __file__, "--child", kind, "--workdir", str(workdir), "--vectors", str(vectors),
               "--method", method, "--params", json.dumps(params or {})]
    env = {**os.environ, "CHORUS_CACHE_DIR": str(cache or tempfile.mkdtemp(prefix="chorus-bench-cache-"))}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{kind} with {method} failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def method_names(spec: str) -> list[str]:
    """The methods ``spec`` names (``all``: every registered one but :data:`NOT_RUN`), read
    in a child process (the parent never imports torch)."""
    if spec != "all":
        return spec.split(",")
    listing = "from chorus.taskvec.merge.registry import method_names; print(','.join(method_names()))"
    done = subprocess.run([sys.executable, "-c", listing], check=True, capture_output=True, text=True)
    return [name for name in done.stdout.strip().split(",") if name not in NOT_RUN]


def methods_table(args) -> None:
    """Peak RSS of one chorus merge per method (inputs new), over one model's size."""
    methods = method_names(args.methods)
    sizes = measure_in_child("prepare", args.workdir, args.vectors, method="regmean")  # vectors with Grams
    model_bytes = sizes["model_bytes"]
    gram_bytes = sum(f.stat().st_size for f in args.workdir.glob("tv*/gram.safetensors"))
    print(f"{args.vectors} task vectors of a {model_bytes / 1e6:.0f} MB encoder; deltas and base "
          f"{sizes['input_bytes'] / 1e9:.2f} GB, Grams {gram_bytes / 1e9:.2f} GB")
    measure_in_child("floor", args.workdir, args.vectors)  # warm the page cache
    runtime_rss = measure_in_child("runtime", args.workdir, args.vectors)["peak_rss"]
    print(f"python + torch + chorus at rest: peak RSS {runtime_rss / 1e6:.0f} MB; machine load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| method | vectors | wall | CPU | peak RSS | / one model |\n|---|---|---|---|---|---|")
    ratios = {}
    for method in methods:
        params = {"steps": args.wudi_steps} if method == "wudi" else {}
        run = measure_in_child("ours", args.workdir, args.vectors, method=method, params=params)
        ratios[method] = run["peak_rss"] / model_bytes
        print(f"| {method}{' (steps ' + str(args.wudi_steps) + ')' if params else ''} | "
              f"{2 if method in TWO_VECTORS else args.vectors} | {run['seconds']:.1f} s | {run['cpu_seconds']:.1f} s | "
              f"{run['peak_rss'] / 1e6:.0f} MB | {ratios[method]:.2f}x |", flush=True)
    worst = max(ratios, key=ratios.get)
    print(f"largest peak RSS / model size: {ratios[worst]:.2f} ({worst}; target <= 2.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "chorus-bench-merge")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each kind (the fastest counts)")
    parser.add_argument("--method", default=METHOD, help="merge method of the chorus runs")
    parser.add_argument("--params", type=json.loads, default={}, help="the method's parameters (JSON)")
    parser.add_argument("--methods", help="'all' or a comma-separated list: peak RSS of each method's merge")
    parser.add_argument("--wudi-steps", type=int, default=3, help="WUDI's Adam steps per matrix with --methods")
    parser.add_argument("--child", choices=["prepare", *KINDS])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workdir, args.vectors, args.method, args.params)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.methods:
        methods_table(args)
        return
    measure = functools.partial(measure_in_child, method=args.method, params=args.params)
    sizes = measure("prepare", args.workdir, args.vectors)
    print(f"chorus runs merge with {args.method}; the naive run is task arithmetic in memory")
    model_bytes = sizes["model_bytes"]
    print(f"{args.vectors} task vectors of a {model_bytes / 1e6:.0f} MB encoder; inputs {sizes['input_bytes'] / 1e9:.2f} GB")
    measure("floor", args.workdir, args.vectors)  # warm the page cache
    known = Path(tempfile.mkdtemp(prefix="chorus-bench-known-"))
    measure("ours", args.workdir, args.vectors, known)  # verifies the inputs once and records them
    results = {}
    for _ in range(args.repeats):
        for label, kind, cache in (("floor", "floor", None), ("ours", "ours", None), ("known", "ours", known),
                                   ("unverified", "unverified", None), ("naive", "naive", None)):
            run = measure(kind, args.workdir, args.vectors, cache)
            best = results.get(label)
            results[label] = run if best is None or run["seconds"] < best["seconds"] else best
            results[label]["peak_rss"] = max(run["peak_rss"], (best or run)["peak_rss"])
    results["runtime"] = measure("runtime", args.workdir, args.vectors)
    print(f"python + torch + chorus at rest: peak RSS {results['runtime']['peak_rss'] / 1e6:.0f} MB; "
          f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for kind, label in (("floor", "I/O floor"), ("ours", "chorus, inputs new"), ("known", "chorus, inputs known"),
                        ("unverified", "  without sha256"), ("naive", "naive in memory")):
        r = results[kind]
        print(f"{label:22s} {r['seconds']:7.2f} s wall {r['cpu_seconds']:6.2f} s CPU   peak RSS "
              f"{r['peak_rss'] / 1e6:6.0f} MB ({r['peak_rss'] / model_bytes:4.2f}x model)")
    print(f"naive / chorus wall time: {results['naive']['seconds'] / results['ours']['seconds']:.2f}")
    print(f"naive / chorus peak RSS: {results['naive']['peak_rss'] / results['ours']['peak_rss']:.2f}")
    print(f"chorus peak RSS / model size: {results['ours']['peak_rss'] / model_bytes:.2f} (target <= 2.5)")
    print(f"chorus CPU / I/O floor CPU: {results['ours']['cpu_seconds'] / results['floor']['cpu_seconds']:.2f}")
    print(f"chorus without input sha256, wall / I/O floor: "
          f"{results['unverified']['seconds'] / results['floor']['seconds']:.2f}")
    print(f"chorus wall / I/O floor, inputs new (every input hashed): "
          f"{results['ours']['seconds'] / results['floor']['seconds']:.2f}")
    print(f"chorus wall / I/O floor, inputs verified before and unchanged: "
          f"{results['known']['seconds'] / results['floor']['seconds']:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
