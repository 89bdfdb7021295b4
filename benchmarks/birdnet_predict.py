"""``chorus predict birdnet`` on a long synthetic soundscape vs a plain loop over the
reference runtime (ai_edge_litert, XNNPACK) on the same 3 s segments.

Both read the recording the same way (streamed, :func:`chorus.predict.birdnet_analyzer.segments`),
apply the same confidence mapping and ``min_conf`` and keep every detection; the reference
runs one segment per ``invoke`` as BirdNET-Analyzer does. Both use ``--threads`` threads.
Then chorus's peak memory (max RSS of a child process) on a quarter of the recording and
on all of it shows whether memory stays flat with file length. The detections of both are
compared, and the speed ratio is printed last.

Run: ``PYTHONPATH=src python benchmarks/birdnet_predict.py [--minutes 60] [--threads 2]``
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a machine shared with other processes
# spinning threads steal the cores torch's next parallel op waits for (measured here: 2
# threads 20-30 ms/window passive vs 120-220 ms spinning, under a load average of 6 on
# 2 cores). XNNPACK (the reference) does not use OpenMP. Set it before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from chorus.data.synth import make_config, render_soundscape  # noqa: E402
from chorus.encoders.birdnet import LABELS_FILE, MODEL_FILE, birdnet_file  # noqa: E402
from chorus.encoders.birdnet_labels import read_labels  # noqa: E402
from chorus.predict.birdnet_analyzer import BirdNETSettings, confidences, segments  # noqa: E402
from chorus.predict.birdnet_run import predict_birdnet  # noqa: E402

SETTINGS = BirdNETSettings(min_conf=0.1)


def reference_loop(path: Path, threads: int) -> list[tuple[float, str]]:
    from ai_edge_litert.interpreter import Interpreter

    labels = read_labels(birdnet_file(LABELS_FILE))
    interpreter = Interpreter(model_path=str(birdnet_file(MODEL_FILE)), num_threads=threads)
    interpreter.allocate_tensors()
    found = []
    for start, _, samples in segments(path, SETTINGS):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], samples[None])
        interpreter.invoke()
        logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        scores = confidences(logits.astype(np.float64), SETTINGS.sensitivity)
        found += [(start, labels[i]) for i in np.flatnonzero(scores >= SETTINGS.min_conf)]
    return found


def chorus_predict(path: Path, out: Path, threads: int) -> list[tuple[float, str]]:
    torch.set_num_threads(threads)
    predict_birdnet([path], out, SETTINGS, fmt="csv")
    rows = (out / f"{path.stem}.BirdNET.results.csv").read_text().splitlines()[1:]
    return [(float(r.split(",")[0]), f"{r.split(',')[2]}_{r.split(',')[3]}") for r in rows]


def peak_rss_mb(path: Path, out: Path, threads: int) -> float:
    """Max RSS (MB) of a child process running chorus predict birdnet on ``path``."""
    code = ("import resource, sys; from pathlib import Path; sys.path.insert(0, 'benchmarks'); "
            f"import birdnet_predict as b; b.chorus_predict(Path({str(path)!r}), Path({str(out)!r}), {threads}); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(result.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = make_config(groups=("birds",), species=8, sample_rate=48_000)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        long, short = tmp / "long.wav", tmp / "short.wav"
        render_soundscape(long, config, args.minutes * 60)
        render_soundscape(short, config, args.minutes * 15)
        start = time.perf_counter()
        ours = chorus_predict(long, tmp / "ours", args.threads)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        reference = reference_loop(long, args.threads)
        reference_s = time.perf_counter() - start
        short_mb = peak_rss_mb(short, tmp / "short-out", args.threads)
        long_mb = peak_rss_mb(long, tmp / "long-out", args.threads)
    same = sorted(ours) == sorted(reference)
    print(f"{args.minutes:g} min soundscape at 48 kHz, {args.threads} threads, min_conf {SETTINGS.min_conf}, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    print(f"reference loop (ai_edge_litert, 1 segment per call): {reference_s:.1f} s, {len(reference)} detections")
    print(f"chorus predict birdnet:                              {ours_s:.1f} s, {len(ours)} detections"
          f" ({'identical' if same else 'DIFFERENT'} detections)")
    print(f"chorus peak memory: {short_mb:.0f} MB on {args.minutes / 4:g} min, {long_mb:.0f} MB on {args.minutes:g} min")
    print(f"speed ratio (reference loop / chorus): {reference_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
