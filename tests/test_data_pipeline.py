"""The data layer end to end on synthetic recordings: manifest, split, Raven table, windows."""

from __future__ import annotations

from pathlib import Path

from chorus.audio import audio_info
from chorus.data.annotations import Event, read_raven, write_raven
from chorus.data.labels import LabelMap
from chorus.data.manifest import read_manifest
from chorus.data.splits import stratified_split
from chorus.data.synth import generate_dataset, render_soundscape
from chorus.data.synth.config import make_config
from chorus.data.windows import label_windows, sliding_windows


def test_synthetic_dataset_manifest_reads_back_and_splits(tmp_path):
    config = make_config(groups=("birds", "anurans"), species=2, clips_per_species=3, seconds=0.5, sample_rate=8000)
    generated = generate_dataset(tmp_path / "ds", config)
    manifest = read_manifest(tmp_path / "ds" / "manifest.csv")
    assert manifest.clips == generated.clips and manifest.groups == ["anurans", "birds"]
    resplit = stratified_split(manifest, seed=1, overwrite=True)
    assert LabelMap(tuple(resplit.labels)).encode(resplit.select(split="test")).shape == (4,)


def test_soundscape_events_survive_a_raven_table_and_label_their_windows(tmp_path):
    config = make_config(groups=("birds",), species=3, sample_rate=8000)
    wav = tmp_path / "scape.wav"
    calls = render_soundscape(wav, config, 30.0, calls_per_minute=30)
    events = [Event(c.start_s, c.end_s, c.label, c.low_hz, c.high_hz, path=wav) for c in calls]
    write_raven(tmp_path / "scape.selections.txt", events, sample_rate=8000)
    back = read_raven(tmp_path / "scape.selections.txt")
    assert [(e.label, e.path) for e in back] == [(e.label, Path(str(e.path))) for e in events]
    assert all(abs(a.begin - b.begin) < 1e-6 and abs(a.end - b.end) < 1e-6 for a, b in zip(back, events))
    windows = sliding_windows(audio_info(wav).duration, 2.0, 1.0)
    assert len(windows) == 29 and windows[-1].end == 30.0
    labels = label_windows(windows, back)
    for event in back:
        inside = [w for w in windows if w.start <= event.begin and event.end <= w.end]
        assert all(event.label in labels[windows.index(w)] for w in inside)
