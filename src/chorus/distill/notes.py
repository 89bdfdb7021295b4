"""A pitch-class dataset of synthesised instrument notes (FluidSynth + General MIDI).

Each clip holds one short note (``min_note``..``max_note`` seconds) at a random onset,
played by one of several General MIDI instruments in one of several octaves, at a random
velocity, with white noise added at a random SNR (``snr_db`` range). The label is the
pitch class (``C``, ``C#``, ..., ``B``): a class spans octaves and timbres, so a probe must
read pitch, not spectrum shape. Clips are balanced over classes; each class's clips are
split train/valid/test by a seeded shuffle.

All notes go into one MIDI file (one slot of ``seconds + 1`` s per clip, so release tails
never reach the next clip), rendered once by the ``fluidsynth`` program with the
``FluidR3_GM`` sound font (Debian ``fluidsynth`` + ``fluid-soundfont-gm``), then cut.
Same seed, same FluidSynth build: same files.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from ..audio import load_audio, write_audio
from ..data.manifest import Clip, Manifest, write_manifest
from ..fileio import write_json
from ..schema import FrozenModel
from .errors import NotesError

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
INSTRUMENTS = {"piano": 0, "marimba": 12, "organ": 19, "guitar": 24, "violin": 40, "cello": 42, "trumpet": 56,
               "flute": 73}
"""General MIDI programs (0-based) used, one per MIDI channel."""


class NotesConfig(FrozenModel):
    """What to render: ``clips_per_class`` clips for each of the 12 pitch classes, octaves
    ``octaves`` (MIDI octave numbers, C4 = 60), ``seconds`` per clip at ``sample_rate``."""

    clips_per_class: int = 90
    octaves: tuple[int, ...] = (2, 3, 4, 5)
    seconds: float = 1.0
    min_note: float = Field(0.12, description="shortest note, s")
    max_note: float = Field(0.5, description="longest note, s")
    snr_db: tuple[float, float] = Field((0.0, 12.0), description="range of the note-to-noise ratio, dB")
    sample_rate: int = 16_000
    splits: tuple[float, float, float] = (0.6, 0.2, 0.2)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "NotesConfig":
        if self.clips_per_class < 3 or not self.octaves or not 0 < self.min_note <= self.max_note < self.seconds:
            raise NotesError("need clips_per_class >= 3, some octaves and 0 < min_note <= max_note < seconds")
        return self


@dataclass(frozen=True)
class Note:
    pitch_class: int
    midi: int
    instrument: str
    velocity: int
    onset: float
    duration: float
    snr_db: float
    split: str


def plan_notes(config: NotesConfig) -> list[Note]:
    """Every clip's note, drawn from ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    names = list(INSTRUMENTS)
    n_valid = int(round(config.splits[1] * config.clips_per_class))
    n_test = int(round(config.splits[2] * config.clips_per_class))
    notes = []
    for pitch_class in range(12):
        splits = ["train"] * (config.clips_per_class - n_valid - n_test) + ["valid"] * n_valid + ["test"] * n_test
        rng.shuffle(splits)
        for split in splits:
            duration = float(rng.uniform(config.min_note, config.max_note))
            notes.append(Note(
                pitch_class=pitch_class, midi=12 * (int(rng.choice(config.octaves)) + 1) + pitch_class,
                instrument=names[int(rng.integers(len(names)))], velocity=int(rng.integers(50, 120)),
                onset=float(rng.uniform(0.0, config.seconds - duration - 0.05)), duration=duration,
                snr_db=float(rng.uniform(*config.snr_db)), split=split))
    return notes


def write_midi(notes: list[Note], slot: float, path: Path) -> None:
    """One MIDI file: note ``i`` starts at ``i * slot + onset`` seconds on its instrument's channel."""
    import mido

    ticks_per_second = 960  # 480 ticks per beat at 120 bpm
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    channels = {name: channel for channel, name in enumerate(INSTRUMENTS)}
    for name, program in INSTRUMENTS.items():
        track.append(mido.Message("program_change", channel=channels[name], program=program, time=0))
    events = []
    for index, note in enumerate(notes):
        start = index * slot + note.onset
        for when, kind in ((start, "note_on"), (start + note.duration, "note_off")):
            events.append((round(when * ticks_per_second), kind == "note_on", channels[note.instrument], note))
    now = 0
    for tick, on, channel, note in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(mido.Message("note_on" if on else "note_off", channel=channel, note=note.midi,
                                  velocity=note.velocity if on else 0, time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(str(path))


def render_midi(midi: Path, wav: Path, sample_rate: int, sound_font: Path = SOUND_FONT) -> None:
    """Render ``midi`` to ``wav`` with the ``fluidsynth`` program."""
    program = shutil.which("fluidsynth")
    if program is None or not sound_font.is_file():
        raise NotesError(f"rendering notes needs the fluidsynth program and {sound_font} "
                         "(Debian: apt-get install fluidsynth fluid-soundfont-gm)")
    done = subprocess.run([program, "-ni", "-q", "-g", "0.8", "-r", str(sample_rate), "-F", str(wav), str(sound_font),
                           str(midi)], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not wav.is_file():
        raise NotesError(f"fluidsynth failed on {midi}: {done.stderr.strip()[:500]}")


def generate_notes(out_dir: str | Path, config: NotesConfig = NotesConfig()) -> Manifest:
    """Render the dataset into ``out_dir`` (``<class>/<n>.wav``, ``manifest.csv`` with
    path,label,split,group = ``notes``, ``notes.json``); return its manifest."""
    out_dir = Path(out_dir)
    notes = plan_notes(config)
    slot = config.seconds + 1.0
    with tempfile.TemporaryDirectory() as scratch:
        midi, wav = Path(scratch) / "notes.mid", Path(scratch) / "notes.wav"
        write_midi(notes, slot, midi)
        render_midi(midi, wav, config.sample_rate)
        audio, _ = load_audio(wav, config.sample_rate)
    length, rng = int(round(config.seconds * config.sample_rate)), np.random.default_rng(config.seed + 1)
    clips = []
    for index, note in enumerate(notes):
        start = int(round(index * slot * config.sample_rate))
        clean = np.zeros(length, np.float32)
        piece = audio[start:start + length]
        clean[:len(piece)] = piece
        power = float(np.mean(clean ** 2)) or 1e-10
        noisy = clean + rng.standard_normal(length).astype(np.float32) * np.sqrt(power / 10 ** (note.snr_db / 10))
        path = out_dir / PITCH_CLASSES[note.pitch_class].replace("#", "s") / f"{index:05d}.wav"
        write_audio(path, 0.5 * noisy / max(1e-6, float(np.abs(noisy).max())), config.sample_rate)
        clips.append(Clip(path.resolve(), (PITCH_CLASSES[note.pitch_class],), note.split, "notes"))
    manifest = Manifest(clips, out_dir.resolve(), out_dir.resolve() / "manifest.csv")
    write_manifest(manifest, out_dir / "manifest.csv")
    write_json(out_dir / "notes.json", {"config": config.model_dump(), "notes": [asdict(n) for n in notes]})
    return manifest
