"""BirdNET V2.4 forward: chorus's torch network vs the reference runtime (ai_edge_litert).

Both run the same batch of 3 s windows at 48 kHz on the same number of threads (2 by
default; on a machine shared with other processes each parallel op waits for a
descheduled thread, so compare ``--threads 1`` too): the reference with its
default XNNPACK delegate, one window per call as BirdNET-Analyzer runs it and, for
fairness, the whole batch in one call (the input resized); chorus with
``BirdNETEncoder.classify`` (eager torch, channels-last, its default chunk of windows per
network call, and for comparison the whole batch or one window per call). Each path is
timed best-of-``--repeats``, the paths taking turns so that load from other processes
hits all alike. The logits of every path
are checked against the reference. Prints windows per second and, last, the ratio of
chorus's default path to the reference's faster one.

Run: ``PYTHONPATH=src python benchmarks/birdnet_forward.py [--windows 32] [--repeats 3] [--threads 2]``
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a machine shared with other processes
# spinning threads steal the cores torch's next parallel op waits for (measured here: 2
# threads 20-30 ms/window passive vs 120-220 ms spinning, under a load average of 6 on
# 2 cores). XNNPACK (the reference) does not use OpenMP. Set it before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from chorus.data.synth import make_config, render_clip  # noqa: E402
from chorus.encoders import load_encoder  # noqa: E402
from chorus.encoders.birdnet import MODEL_FILE, birdnet_file  # noqa: E402
from chorus.encoders.birdnet_network import SAMPLE_RATE, WINDOW  # noqa: E402



def _windows(count: int) -> np.ndarray:
    """Synthetic bird calls and noise, ``[count, 144000]`` float32."""
    config = make_config(groups=("birds",), species=4, seconds=3.0, sample_rate=SAMPLE_RATE)
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        x = render_clip(config, "birds", i % 4 + 1, i // 4)[0] if i % 2 == 0 else 0.1 * rng.standard_normal(WINDOW)
        out.append(x.astype(np.float32))
    return np.stack(out)


def _reference(windows: np.ndarray, threads: int) -> dict[str, Callable[[], np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter

    single = Interpreter(model_path=str(birdnet_file(MODEL_FILE)), num_threads=threads)
    single.allocate_tensors()
    batched = Interpreter(model_path=str(birdnet_file(MODEL_FILE)), num_threads=threads)
    batched.resize_tensor_input(batched.get_input_details()[0]["index"], list(windows.shape))
    batched.allocate_tensors()

    def run(interpreter, x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    return {"reference, 1 window per call": lambda: np.concatenate([run(single, w[None]) for w in windows]),
            "reference, whole batch per call": lambda: run(batched, windows)}


def _chorus(windows: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    batch = torch.from_numpy(windows)

    def eager(chunk: int) -> Callable[[], np.ndarray]:
        encoder = load_encoder("birdnet")
        encoder.chunk = chunk

        def run() -> np.ndarray:
            with torch.inference_mode():
                return encoder.classify(batch)[1].numpy()
        return run

    default = load_encoder("birdnet").chunk
    return {f"chorus, {default} windows per call (default)": eager(default),
            f"chorus, {len(windows)} windows per call": eager(len(windows)),
            "chorus, 1 window per call": eager(1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads of both runtimes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    windows = _windows(args.windows)
    paths = {**_reference(windows, args.threads), **_chorus(windows)}
    results = {name: fn() for name, fn in paths.items()}  # warm-up, and the outputs to compare
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    reference = results["reference, 1 window per call"]
    print(f"{args.windows} windows of 3 s at 48 kHz, {args.threads} threads, best of {args.repeats}, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    for name in paths:
        best = min(times[name])
        diff = float(np.abs(results[name] - reference).max())
        print(f"{name:36s} {args.windows / best:7.2f} windows/s   max |logit - reference| {diff:.1e}")
    ref_best = min(min(times[n]) for n in paths if n.startswith("reference"))
    ours = next(min(t) for n, t in times.items() if n.endswith("(default)"))
    print(f"speed ratio (chorus default / fastest reference): {ref_best / ours:.2f}x")


if __name__ == "__main__":
    main()
