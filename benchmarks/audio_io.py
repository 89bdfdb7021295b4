"""Benchmark: range reads and streaming of long recordings (chorus.audio).

Compares, on one long synthetic recording per format (wav, flac, mp3, ogg/vorbis):

- range: ``load_audio(start=, end=)`` of a few seconds near the end, against decoding
  the whole file and slicing it (what a loader without seeking does). MP3 decodes one
  second of pre-roll; Vorbis decodes from the start (libsndfile seeks are not exact).
- memory: peak traced allocation of ``stream_audio`` (10 s blocks, resampled to 16 kHz)
  against loading the whole file at 16 kHz.

Usage: ``python benchmarks/audio_io.py [--minutes 10] [--rate 22050]``. Prints the
time ratios (whole / ours) per format, the memory ratio, and last the smallest time ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from chorus.audio import load_audio, stream_audio

FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"), "ogg": ("OGG", "VORBIS")}


def write_long(path: Path, minutes: float, rate: int, fmt: str, subtype: str) -> None:
    """A chirpy noise recording written block by block (never whole in memory)."""
    rng = np.random.default_rng(0)
    block = rate * 10
    t = np.arange(block) / rate
    with sf.SoundFile(str(path), "w", rate, 1, subtype=subtype, format=fmt) as handle:
        for _ in range(int(minutes * 6)):
            call = 0.2 * np.sin(2 * np.pi * (800 + 400 * t) * t) + 0.02 * rng.standard_normal(block)
            handle.write(call.astype(np.float32))


def best_time(function: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_bytes(function: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=22050)
    args = parser.parse_args()
    start = args.minutes * 60 - 30.0
    ratios = {}
    with tempfile.TemporaryDirectory() as folder:
        for ext, (fmt, subtype) in FORMATS.items():
            path = Path(folder) / f"long.{ext}"
            write_long(path, args.minutes, args.rate, fmt, subtype)
            ours = best_time(lambda: load_audio(path, start=start, end=start + 5.0))
            whole = best_time(lambda: sf.read(str(path), dtype="float32")[0][int(start * args.rate):int((start + 5) * args.rate)])
            ratios[ext] = whole / ours
            print(f"{ext:5s} 5 s range at {start:.0f} s: ours {ours * 1e3:8.1f} ms, whole+slice {whole * 1e3:8.1f} ms,"
                  f" ratio {ratios[ext]:.1f}x")
        path = Path(folder) / "long.wav"
        streamed = peak_bytes(lambda: sum(len(b) for b in stream_audio(path, 10.0, 16000)))
        loaded = peak_bytes(lambda: load_audio(path, 16000))
        print(f"memory: stream_audio peak {streamed / 1e6:.1f} MB, whole load {loaded / 1e6:.1f} MB, "
              f"ratio {loaded / streamed:.1f}x")
    worst = min(ratios, key=ratios.get)
    print(f"smallest range-read ratio (whole / ours): {ratios[worst]:.1f}x ({worst})")


if __name__ == "__main__":
    main()
