"""Peak RSS of ``chorus predict`` on a 2-hour recording vs a 5-minute one (target ≤ 1.5×).

Each run is a fresh ``chorus predict`` subprocess (one worker, in-process scoring) with
``sfx-cnn-tiny`` and a random head at 44.1 kHz, so the 16 kHz recordings are also
resampled on the fly; the peak resident set comes from ``wait4``'s rusage of that child.
Needs ``make bench-data``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _predict_common import bench_recording, model_dir


def peak_rss_mib(args: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one ``chorus`` subprocess."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "chorus.cli.main", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        sys.exit(f"chorus {' '.join(args)} failed with status {status}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    short, long = bench_recording("soundscape-5min"), bench_recording("soundscape-2h")
    with tempfile.TemporaryDirectory() as tmp:
        model = model_dir("sfx-cnn-tiny", Path(tmp) / "model")
        common = ["--window", "3", "--hop", "3", "--format", "raven", "--workers", "1", "--batch-size", "16"]
        results = {}
        for name, recording in (("5 min", short), ("2 h", long)):
            out = Path(tmp) / name.replace(" ", "")
            results[name] = peak_rss_mib(["predict", str(model), str(recording), "--out", str(out), *common])
            print(f"{name}: peak RSS {results[name][0]:.1f} MiB, {results[name][1]:.1f} s")
    print(f"peak RSS ratio 2 h / 5 min: {results['2 h'][0] / results['5 min'][0]:.3f} (target <= 1.5)")


if __name__ == "__main__":
    main()
