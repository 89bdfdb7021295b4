"""``chorus predict`` throughput relative to the bare model forward on the same windows
(target ≥ 0.8: decoding, resampling, windowing and writing cost ≤ 20 %), and the
real-time factor of ``sfx-cnn`` on this machine.

Our side: :func:`chorus.predict.predict` on the 5-minute bench recording (16 kHz,
resampled to 44.1 kHz while streaming), one worker, one torch thread, model loading
included. Reference: the same windows already decoded in memory, through
``ClassifierModel.predict_scores`` in the same batches. Best of 2 runs each.
The 100 windows fill 5 batches exactly: predict pads a run's last batch to full size
(fixed shapes keep every window's scores independent of its batch neighbours), a cost
of at most one batch per run that a 5-minute benchmark would otherwise inflate.
Needs ``make bench-data``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import best_times  # noqa: E402
from _predict_common import bench_recording, model_dir  # noqa: E402
from chorus.audio import audio_info  # noqa: E402
from chorus.model import ClassifierModel  # noqa: E402
from chorus.predict import PredictSettings, WindowSpec, predict, stream_windows  # noqa: E402

WINDOW, HOP, BATCH = 3.0, 3.0, 20


def main() -> None:
    torch.set_num_threads(1)
    recording = bench_recording("soundscape-5min")
    seconds = audio_info(recording).duration
    with tempfile.TemporaryDirectory() as tmp:
        directory = model_dir("sfx-cnn", Path(tmp) / "model")
        model = ClassifierModel.from_pretrained(directory)
        spec = WindowSpec(WINDOW, HOP, model.encoder.sample_rate)
        windows = list(stream_windows(recording, spec))
        batches = [(torch.from_numpy(np.stack([w.samples for w in windows[i:i + BATCH]])),
                    torch.tensor([w.valid for w in windows[i:i + BATCH]])) for i in range(0, len(windows), BATCH)]
        settings = PredictSettings(window=WINDOW, hop=HOP, format="csv", batch_size=BATCH)
        out = Path(tmp) / "out"

        def ours() -> None:
            shutil.rmtree(out, ignore_errors=True)
            predict(directory, [recording], out, settings, workers=1)

        def bare() -> None:
            for waveforms, lengths in batches:
                model.predict_scores(waveforms, lengths)

        times = best_times({"chorus predict": ours, "bare forward": bare}, repeats=2)
    for name, value in times.items():
        print(f"{name}: {value:.2f} s for {len(windows)} windows of {WINDOW:g} s ({seconds:.0f} s of audio)")
    print(f"sfx-cnn real-time factor of chorus predict (audio seconds per second): {seconds / times['chorus predict']:.1f}x")
    print(f"throughput relative to the bare forward: {times['bare forward'] / times['chorus predict']:.3f} (target >= 0.8)")


if __name__ == "__main__":
    main()
