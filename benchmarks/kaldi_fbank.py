"""AST/BEATs front end: chorus's torch Kaldi fbank vs transformers' ASTFeatureExtractor.

Without torchaudio, ``ASTFeatureExtractor`` computes its Kaldi-style filterbank in numpy,
one clip at a time. chorus computes it in torch for the whole batch. Both compute 128-bin
log mel energies of 16 x 10 s clips at 16 kHz; we time both, check they agree, and print
the speed ratio last.

Run: ``PYTHONPATH=src python benchmarks/kaldi_fbank.py``
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from chorus.encoders.kaldi_fbank import fbank

CLIPS, SECONDS, RATE, REPEATS = 16, 10.0, 16_000, 3


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    warnings.simplefilter("ignore")
    from transformers import ASTFeatureExtractor

    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(int(SECONDS * RATE))).astype(np.float32) for _ in range(CLIPS)]
    extractor = ASTFeatureExtractor(do_normalize=False)
    frames = 1 + (int(SECONDS * RATE) - 400) // 160

    reference_s, reference = best_of(lambda: [extractor._extract_fbank_features(w, 1024)[:frames] for w in waves])
    batch = torch.from_numpy(np.stack(waves))
    ours_s, ours = best_of(lambda: fbank(batch, RATE, 128, window_type="hanning"))

    difference = max(float(np.abs(ours[i].numpy() - reference[i]).max()) for i in range(CLIPS))
    print(f"{CLIPS} clips x {SECONDS:.0f} s, 128 mel bins, torch threads {torch.get_num_threads()}")
    print(f"transformers ASTFeatureExtractor (numpy, per clip): {reference_s:.3f} s")
    print(f"chorus kaldi_fbank (torch, batched):                {ours_s:.3f} s")
    print(f"largest difference in log energy: {difference:.2e}")
    print(f"speed-up (transformers / chorus): {reference_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
