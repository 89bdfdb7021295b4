"""``make bench-data``: long synthetic soundscapes (calls over background) for the
prediction benchmarks, written block by block into ``bench-data/`` with their calls as
Raven selection tables. Existing files are kept."""

from __future__ import annotations

import argparse
from pathlib import Path

from chorus.data.annotations import Event, write_raven
from chorus.data.synth import make_config
from chorus.data.synth.soundscape import render_soundscape
from chorus.progress import tqdm_progress

LENGTHS = {"soundscape-5min": 300.0, "soundscape-2h": 7200.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-data"))
    parser.add_argument("--sample-rate", type=int, default=16_000)
    args = parser.parse_args()
    config = make_config(sample_rate=args.sample_rate, seed=0)
    for name, seconds in LENGTHS.items():
        wav = args.out / f"{name}.wav"
        if wav.exists():
            print(f"{wav}: exists")
            continue
        calls = render_soundscape(wav, config, seconds, progress=tqdm_progress)
        write_raven(args.out / f"{name}.selections.txt",
                    [Event(c.start_s, c.end_s, c.label, c.low_hz, c.high_hz) for c in calls])
        print(f"{wav}: {seconds / 3600:.2f} h, {len(calls)} calls")


if __name__ == "__main__":
    main()
