"""``chorus separate``, ``chorus prior train`` and ``chorus separation-metrics`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from chorus.audio import write_audio
from chorus.data.manifest import Clip, Manifest, write_manifest

pytest.importorskip("diffusers")

from tiny_diffusers import clap_scorer_folder, tiny_audioldm, tiny_audioldm2  # noqa: E402


def _signal(freq: float, seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    gate = (np.sin(2 * np.pi * 4 * t + seed) > 0).astype(np.float64)
    return (0.25 * gate * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("build", [tiny_audioldm, tiny_audioldm2])
def test_separate_with_a_pipeline_folder(run_cli, tmp_path, build):
    build().save_pretrained(tmp_path / "model")
    mix = tmp_path / "mix.wav"
    write_audio(mix, _signal(440, 0.2, 22050) + _signal(3000, 0.2, 22050, 1), 22050)
    result = run_cli("separate", mix, "--model", tmp_path / "model", "--prompt", "dog barking", "--prompt", "rain",
                     "--steps", "2", "--device", "cpu")
    assert result.exit_code == 0, result.output
    out = tmp_path / "mix-separated"
    record = json.loads((out / "separation.json").read_text())
    assert [s["file"] for s in record["sources"]] == ["mix.dog-barking.wav", "mix.rain.wav"]
    assert record["evaluations"] == record["chunks"] * (2 + 1) * 2 and record["chunks"] == 2
    for entry in record["sources"]:
        info = sf.info(str(out / entry["file"]))
        assert (info.samplerate, info.frames) == (22050, 4410)


@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")
def test_prior_train_separate_and_metrics(run_cli, tmp_path):
    rate = 8000
    clips = []
    for group, freq in (("low", 500.0), ("high", 2500.0)):
        for k in range(2):
            path = tmp_path / "data" / f"{group}{k}.wav"
            write_audio(path, _signal(freq * (1 + 0.05 * k), 0.5, rate, k), rate)
            clips.append(Clip(path, (f"{group}/sp01",), "train", group))
    write_manifest(Manifest(clips, tmp_path / "data"), tmp_path / "data" / "manifest.csv")
    prior = tmp_path / "prior"
    result = run_cli("prior", "train", "--data", tmp_path / "data" / "manifest.csv", "--out", prior,
                     "--class-conditional", "--class-key", "group", "--steps", "2", "--batch-size", "2",
                     "--sample-rate", rate, "--segment-seconds", "0.25", "--n-fft", "64", "--hop", "16",
                     "--channels", "8", "--depth", "1")
    assert result.exit_code == 0, result.output
    assert json.loads((prior / "config.json").read_text())["labels"] == ["high", "low"]

    refs = [_signal(500, 0.4, rate), _signal(2500, 0.4, rate, 1)]
    for name, wave in zip(("ref_low", "ref_high", "mix"), (*refs, refs[0] + refs[1])):
        write_audio(tmp_path / f"{name}.wav", wave, rate, subtype="FLOAT")
    result = run_cli("separate", tmp_path / "mix.wav", "--priors", f"{prior}#low,{prior}#high", "--steps", "3",
                     "--out", tmp_path / "sep", "--device", "cpu")
    assert result.exit_code == 0, result.output
    estimates = [tmp_path / "sep" / "mix.low.wav", tmp_path / "sep" / "mix.high.wav"]
    assert all(sf.info(str(p)).frames == len(refs[0]) for p in estimates)

    result = run_cli("separation-metrics", tmp_path / "ref_low.wav", tmp_path / "ref_high.wav",
                     "--est", estimates[0], "--est", estimates[1], "--mix", tmp_path / "mix.wav",
                     "--clap", clap_scorer_folder(tmp_path / "clap"), "--prompt", "low hum", "--prompt", "high tone",
                     "--json", tmp_path / "scores.json")
    assert result.exit_code == 0, result.output
    assert "SI-SDRi" in result.output and "CLAP-T" in result.output
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert [s["name"] for s in scores["sources"]] == ["mix.low", "mix.high"]
    assert all(isinstance(s[k], float) for s in scores["sources"] for k in ("si_sdri", "sdr", "mel_distance", "clap_a"))


def test_separate_errors_are_one_line(run_cli, tmp_path):
    mix = tmp_path / "mix.wav"
    write_audio(mix, _signal(440, 0.1, 8000), 8000)
    result = run_cli("separate", mix)
    assert result.exit_code == 2 and "either --model" in result.output
    result = run_cli("separate", mix, "--model", tmp_path / "nowhere", "--prompt", "x")
    assert result.exit_code == 2 and "nowhere" in result.output
    result = run_cli("separate", mix, "--priors", f"{tmp_path / 'nowhere'},{tmp_path}")
    assert result.exit_code == 2 and "not a source prior folder" in result.output
    result = run_cli("separate", tmp_path / "missing.wav", "--priors", "a,b")
    assert result.exit_code == 2 and "missing.wav" in result.output
