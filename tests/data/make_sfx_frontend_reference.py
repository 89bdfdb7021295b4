"""Regenerate ``sfx_frontend_essentia.npy``: aisfx's Essentia log-mel of a fixed signal.

Needs ``essentia`` (not a chorus dependency) and ``aisfx``; run once by hand:
``PYTHONPATH=<dir with essentia> python tests/data/make_sfx_frontend_reference.py``.
The stored array is aisfx's ``spectrogram_essentia.compute_spectrogram`` output divided
by aisfx's "original" normalisation maximum, ``[frames, 96]`` float32.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf


def reference_signal() -> np.ndarray:
    """0.5 s at 44.1 kHz: a rising chirp, a 7 kHz tone burst and a click, peak 0.6."""
    t = np.arange(22050) / 44100
    chirp = 0.3 * np.sin(2 * np.pi * (300 * t + 4000 * t**2))
    burst = 0.2 * np.sin(2 * np.pi * 7000 * t) * ((t > 0.2) & (t < 0.3))
    click = np.zeros_like(t)
    click[15000:15010] = 0.5
    x = chirp + burst + click
    return (0.6 * x / np.abs(x).max()).astype(np.float32)


def main() -> None:
    from aisfx.preprocessing import spectrogram_normalize
    from aisfx.spectrogram.spectrogram_essentia import compute_spectrogram

    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "reference.wav"
        sf.write(str(wav), reference_signal(), 44100, subtype="FLOAT")
        spec = compute_spectrogram(str(wav), sr=44100.0, block_size=2048, hop_size=1024, n_mels=96,
                                   f_min=0.0, f_max=22050.0)
    out = Path(__file__).with_name("sfx_frontend_essentia.npy")
    np.save(out, spectrogram_normalize(spec, spec_norm="original").astype(np.float32))


if __name__ == "__main__":
    main()
