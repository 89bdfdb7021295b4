"""Benchmark: peak memory of the streamed task-vector geometry (chorus.analysis) against
the dense reference, on K task vectors of a base-size encoder.

Set-up (cached in ``--workdir``, not measured): ``merge_stream.prepare`` — a random encoder
shaped like WavLM Base (94.4 M parameters) and K task vectors of it (base + seeded noise)
saved in the task-vector format.

Measured, each in a fresh subprocess (peak RSS from ``getrusage`` of that process alone;
the parent never imports torch, since a child inherits its parent's peak at fork):

- chorus: ``TaskVector.load`` (manifests, headers and sha256 validated) then
  ``vector_geometry`` — whole-model and per-layer cosine, sign conflicts, top-k overlap,
  norms (and effective ranks unless ``--no-ranks``), one parameter tensor per vector in
  memory at a time;
- dense reference: every vector's parameter deltas loaded (``safetensors.torch.load_file``;
  the sparse exactness corrections, ``name::residual_*``, left out), flattened and stacked
  into an N × P matrix, cosine as the normalised Gram matrix — what a
  toolkit that holds all vectors does (whole-model cosine only);
- runtime: the interpreter with torch and chorus imported, nothing else.

Usage: ``python benchmarks/analyze_memory.py [--vectors 8] [--workdir DIR] [--no-ranks]``.
Prints both peaks over one model's size (float32 bytes), the ratio last.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from merge_stream import prepare


def ours(paths: list[Path], ranks: bool) -> list[list[float]]:
    from chorus.analysis import vector_geometry
    from chorus.taskvec import TaskVector

    vectors = [TaskVector.load(path) for path in paths]
    return vector_geometry(vectors, ranks=ranks).whole.cosine()


def dense(paths: list[Path], ranks: bool) -> list[list[float]]:
    import torch
    from safetensors.torch import load_file

    rows = []
    for path in paths:
        state = load_file(str(path / "deltas.safetensors"))
        rows.append(torch.cat([tensor.reshape(-1) for name, tensor in state.items() if "::" not in name]))
        del state
    matrix = torch.stack(rows)
    del rows
    unit = matrix / matrix.norm(dim=1, keepdim=True)
    return (unit @ unit.T).tolist()


def runtime(paths: list[Path], ranks: bool) -> None:
    import chorus.analysis  # noqa: F401


KINDS = {"ours": ours, "dense": dense, "runtime": runtime}


def child(kind: str, workdir: Path, vectors: int, ranks: bool) -> None:
    """Run one measurement; print ``{"seconds", "peak_rss", "cosine"}`` as JSON."""
    import torch

    torch.set_num_threads(1)
    base_file, paths = prepare(workdir, vectors)
    if kind == "prepare":
        print(json.dumps({"model_bytes": base_file.stat().st_size}))
        return
    start = time.perf_counter()
    cosine = KINDS[kind](paths, ranks)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "cosine": cosine}))


def measure(kind: str, workdir: Path, vectors: int, ranks: bool) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--workdir", str(workdir), "--vectors", str(vectors)]
    done = subprocess.run(command + ([] if ranks else ["--no-ranks"]), check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "chorus-bench-analyze")
    parser.add_argument("--no-ranks", dest="ranks", action="store_false", help="skip the effective ranks (SVDs)")
    parser.add_argument("--child", choices=["prepare", *KINDS])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workdir, args.vectors, args.ranks)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    model_bytes = measure("prepare", args.workdir, args.vectors, args.ranks)["model_bytes"]
    results = {kind: measure(kind, args.workdir, args.vectors, args.ranks) for kind in ("runtime", "ours", "dense")}
    ours_cos, dense_cos = results["ours"]["cosine"], results["dense"]["cosine"]
    n = len(ours_cos)
    off = max(abs(ours_cos[i][j] - dense_cos[i][j]) for i in range(n) for j in range(n) if i != j)
    diagonal = {kind: max(abs(results[kind]["cosine"][i][i] - 1.0) for i in range(n)) for kind in ("ours", "dense")}
    print(f"{args.vectors} task vectors of a {model_bytes / 1e6:.0f} MB encoder (float32); effective ranks "
          f"{'on' if args.ranks else 'off'}")
    print(f"python + torch + chorus at rest: peak RSS {results['runtime']['peak_rss'] / 1e6:.0f} MB")
    for kind, label in (("ours", "chorus streaming"), ("dense", "dense N x P")):
        r = results[kind]
        print(f"{label:17s} {r['seconds']:7.1f} s   peak RSS {r['peak_rss'] / 1e6:6.0f} MB "
              f"({r['peak_rss'] / model_bytes:5.2f}x model)")
    print(f"cosine, streaming (float64 sums) vs dense (float32 matmul): largest off-diagonal difference "
          f"{off:.1e}; largest |cos(i, i) - 1|: streaming {diagonal['ours']:.1e}, dense {diagonal['dense']:.1e}")
    print(f"dense / chorus peak RSS: {results['dense']['peak_rss'] / results['ours']['peak_rss']:.2f}")
    print(f"chorus peak RSS / model size: {results['ours']['peak_rss'] / model_bytes:.2f} (target < 2.5)")


if __name__ == "__main__":
    main()
