"""The synthetic bioacoustic data generator: determinism, manifest, niches, regions,
mixtures and streamed soundscapes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from chorus.data.synth import (
    GROUPS, SynthError, generate_dataset, make_config, mix_sources, render_clip, render_soundscape, species_of,
)
from chorus.data.synth.regions import REGIONS, Background, Channel
from chorus.data.synth.species import render_call, species_parameters

SMALL = dict(groups=("birds", "anurans"), species=2, clips_per_species=5, seconds=0.5, sample_rate=16000)


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    config = make_config(**SMALL, seed=3)
    generate_dataset(tmp_path / "a", config)
    generate_dataset(tmp_path / "b", config)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first == second
    assert {"manifest.csv", "synth.json"} <= set(first)
    assert sum(name.endswith(".wav") for name in first) == 2 * 2 * 5
    generate_dataset(tmp_path / "c", make_config(**SMALL, seed=4))
    other = _files(tmp_path / "c")
    assert other["anurans/sp01/anurans-sp01-0000.wav"] != first["anurans/sp01/anurans-sp01-0000.wav"]


def test_manifest_labels_groups_and_stratified_splits(tmp_path):
    config = make_config(**SMALL, species_per_group={"birds": 3}, seed=1)
    manifest = generate_dataset(tmp_path, config)
    assert manifest.labels == ["anurans/sp01", "anurans/sp02", "birds/sp01", "birds/sp02", "birds/sp03"]
    assert manifest.groups == ["anurans", "birds"]
    for label in manifest.labels:
        splits = sorted(c.split for c in manifest if c.label == label)
        assert splits == ["test", "train", "train", "train", "valid"]
    with open(tmp_path / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["path"] == "birds/sp01/birds-sp01-0000.wav"
    assert {r["group"] for r in rows} == {"birds", "anurans"}
    info = sf.info(str(tmp_path / rows[0]["path"]))
    assert (info.samplerate, info.frames) == (16000, 8000)
    record = json.loads((tmp_path / "synth.json").read_text())
    assert record["config"]["seed"] == 1 and record["config"]["species_per_group"] == {"birds": 3}
    assert set(record["groups"]["birds"]["species"]) == {"birds/sp01", "birds/sp02", "birds/sp03"}


def test_folder_made_with_other_parameters_is_refused(tmp_path):
    generate_dataset(tmp_path, make_config(**SMALL, seed=1))
    with pytest.raises(SynthError, match="other parameters"):
        generate_dataset(tmp_path, make_config(**SMALL, seed=2))
    generate_dataset(tmp_path, make_config(**SMALL, seed=2), overwrite=True)


def test_invalid_configuration_is_a_typed_error():
    with pytest.raises(SynthError, match="unknown group"):
        make_config(groups=("birds", "whales"))
    with pytest.raises(SynthError, match="unknown region"):
        make_config(region="moon")
    with pytest.raises(SynthError, match="splits"):
        make_config(splits=(0.5, 0.5, 0.5))


def test_species_depend_on_seed_group_and_number_only():
    base = make_config(seed=5, species=3, region="temperate")
    other = make_config(seed=5, species=9, region="savanna", groups=("mammals", "birds"))
    for number in (1, 2, 3):
        assert species_of(base, "birds", number) == species_of(other, "birds", number)
    assert species_of(base, "birds", 1) != species_of(base, "birds", 2)
    assert species_of(base, "birds", 1) != species_of(make_config(seed=6), "birds", 1)


def test_region_changes_background_and_channel_but_not_the_calls():
    clean = make_config(seed=2, region="clean", snr_db=None, sample_rate=32000, seconds=1.5)
    windy = make_config(seed=2, region="savanna", snr_db=0.0, sample_rate=32000, seconds=1.5)
    quiet, calls_quiet = render_clip(clean, "insects", 1, 0)
    noisy, calls_noisy = render_clip(windy, "insects", 1, 0)
    assert calls_quiet == calls_noisy
    spectrum_quiet = np.abs(np.fft.rfft(quiet / np.abs(quiet).max())) ** 2
    spectrum_noisy = np.abs(np.fft.rfft(noisy / np.abs(noisy).max())) ** 2
    freqs = np.fft.rfftfreq(len(quiet), 1 / 32000)
    low = freqs < 200  # the savanna's wind lives here, but its recorder cuts below 250 Hz
    high = freqs > 11000  # and above 9 kHz
    assert spectrum_noisy[high].sum() / spectrum_noisy.sum() < 0.2 * spectrum_quiet[high].sum() / spectrum_quiet.sum()
    assert spectrum_noisy[low].sum() < 0.05 * spectrum_noisy.sum()


@pytest.mark.parametrize("group, band", [("birds", (2000, 9000)), ("anurans", (250, 3000)),
                                         ("insects", (3500, 12500)), ("mammals", (90, 5000))])
def test_each_group_calls_in_its_niche(group, band):
    config = make_config(seed=0, region="clean", snr_db=None, sample_rate=32000, seconds=2.0, species=4)
    inside = total = 0.0
    for number in range(1, 5):
        clip, _ = render_clip(config, group, number, 0)
        power = np.abs(np.fft.rfft(clip)) ** 2
        freqs = np.fft.rfftfreq(len(clip), 1 / config.sample_rate)
        inside += power[(freqs >= band[0]) & (freqs <= band[1])].sum()
        total += power.sum()
    assert inside / total > 0.85


def test_snr_sets_the_background_level():
    def noise_share(snr):
        config = make_config(seed=1, region="temperate", snr_db=snr, sample_rate=16000, seconds=2.0)
        clip, events = render_clip(config, "mammals", 2, 1)
        quiet = np.ones(len(clip), bool)
        for e in events:
            quiet[int(e.start_s * 16000):int(e.end_s * 16000) + 4000] = False
        return np.mean(clip[quiet] ** 2) / np.mean(clip ** 2)

    assert noise_share(0.0) > 10 * noise_share(30.0)


def test_mixture_is_the_sum_of_its_sources():
    config = make_config(seed=4, region="wetland", snr_db=5.0, sample_rate=16000, seconds=1.0)
    mix = mix_sources(config, ["birds", "mammals"], index=7, species=[2, 3])
    assert mix.labels == ("birds/sp02", "mammals/sp03")
    assert mix.sources.shape == (2, 16000) and mix.mixture.shape == (16000,)
    np.testing.assert_allclose(mix.sources.sum(0) + mix.noise, mix.mixture, atol=1e-6)
    assert np.abs(mix.mixture).max() == pytest.approx(0.5, rel=1e-5)
    assert all(np.abs(s).max() > 0.01 for s in mix.sources)
    with pytest.raises(SynthError, match="not in the configuration"):
        mix_sources(make_config(groups=("birds",)), ["insects"], 0)


def test_soundscape_streams_the_same_audio_whatever_the_block_size(tmp_path):
    config = make_config(seed=3, region="rainforest", sample_rate=16000, species=2)
    events = render_soundscape(tmp_path / "a.wav", config, 12.0, calls_per_minute=40, block_seconds=12.0)
    again = render_soundscape(tmp_path / "b.wav", config, 12.0, calls_per_minute=40, block_seconds=0.7)
    assert events == again and len(events) >= 3
    assert all(0 <= e.start_s < e.end_s <= 12.0 and e.low_hz < e.high_hz for e in events)
    assert [e.start_s for e in events] == sorted(e.start_s for e in events)
    whole, rate = sf.read(str(tmp_path / "a.wav"), dtype="int16")
    blocks, _ = sf.read(str(tmp_path / "b.wav"), dtype="int16")
    assert rate == 16000 and len(whole) == 12 * 16000
    assert np.abs(whole.astype(int) - blocks.astype(int)).max() <= 1
    first = events[0]
    during = whole[int(first.start_s * rate):int(first.end_s * rate)].astype(float)
    assert np.sqrt(np.mean(during**2)) > 0


def test_streamed_background_and_reverb_have_no_seams():
    region = REGIONS["rainforest"]
    whole = Background(region, 16000, np.random.default_rng(0)).render(8000)
    pieces = Background(region, 16000, np.random.default_rng(0))
    joined = np.concatenate([pieces.render(n) for n in (100, 2900, 5000)])
    np.testing.assert_allclose(joined, whole, rtol=1e-9, atol=1e-12)
    signal_in = np.random.default_rng(1).standard_normal(8000)
    reverb_whole = Channel(region, 16000, seed=0).reverb(signal_in)
    channel = Channel(region, 16000, seed=0)
    reverb_blocks = np.concatenate([channel.reverb(signal_in[:1234]), channel.reverb(signal_in[1234:])])
    np.testing.assert_allclose(reverb_blocks, reverb_whole, atol=1e-9)


def test_every_group_model_renders_finite_calls_at_low_sample_rates():
    config = make_config(seed=9, sample_rate=8000, seconds=1.0, groups=tuple(GROUPS))
    for group in GROUPS:
        clip, _ = render_clip(config, group, 1, 0)
        assert np.isfinite(clip).all() and np.abs(clip).max() > 0


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_call_bands_are_ordered_and_below_nyquist_at_low_rates(group):
    model = GROUPS[group]
    rng = np.random.default_rng(0)
    for number in range(1, 9):
        for rate in (8000, 16000):
            call = render_call(model, species_parameters(model, 3, number), rng, rate, 1.0)
            assert 0 < call.low_hz <= call.high_hz <= rate / 2, (group, number, rate, call.low_hz, call.high_hz)


def test_cli_synth_writes_a_dataset_and_reports_bad_input(run_cli, tmp_path):
    result = run_cli("synth", "--out", tmp_path / "data", "--groups", "insects,mammals", "--species", "2",
                     "--clips-per-species", "3", "--seconds", "0.4", "--sample-rate", "16000",
                     "--group-species", "mammals=3", "--region", "wetland")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "data" / "manifest.csv", newline="") as handle:
        labels = {row["label"] for row in csv.DictReader(handle)}
    assert labels == {"insects/sp01", "insects/sp02", "mammals/sp01", "mammals/sp02", "mammals/sp03"}
    bad = run_cli("synth", "--out", tmp_path / "bad", "--groups", "birds,whales")
    assert bad.exit_code == 2 and "unknown group" in bad.output
    short = run_cli("synth", "--out", tmp_path / "short", "--preset", "short-call", "--groups", "birds",
                    "--species", "1", "--clips-per-species", "99", "--sample-rate", "8000")
    assert short.exit_code == 0, short.output
    record = json.loads((tmp_path / "short" / "synth.json").read_text())["config"]
    assert (record["call_seconds"], record["seconds"], record["clips_per_species"]) == (0.3, 5.0, 24)
    assert record["groups"] == ["birds"] and record["sample_rate"] == 8000
    unknown = run_cli("synth", "--out", tmp_path / "none", "--preset", "jungle")
    assert unknown.exit_code == 2 and "unknown synthetic preset" in unknown.output


def test_interrupted_generation_resumes_with_identical_files(tmp_path):
    config = make_config(**SMALL, seed=6)
    generate_dataset(tmp_path, config)
    before = _files(tmp_path)
    lost = tmp_path / "birds/sp02/birds-sp02-0003.wav"
    lost.unlink()
    kept = tmp_path / "birds/sp01/birds-sp01-0000.wav"
    stamp = kept.stat().st_mtime_ns
    generate_dataset(tmp_path, config)
    assert _files(tmp_path) == before
    assert kept.stat().st_mtime_ns == stamp  # finished clips are not rendered again


def test_short_call_setting_cuts_every_call():
    config = make_config(**{**SMALL, "seconds": 2.0}, max_calls=1, call_seconds=0.3, snr_db=None)
    for clip in range(4):
        waveform, events = render_clip(config, "anurans", 1, clip)
        assert len(events) == 1 and events[0].end_s - events[0].start_s <= 0.3 + 1e-9
        loud = np.flatnonzero(np.abs(waveform) > 1e-3 * np.abs(waveform).max())
        assert (loud[-1] - loud[0]) / 16000 < 0.6  # one short event (plus the channel's reverb) in 2 s


def test_unbalanced_setting_spreads_clip_counts(tmp_path):
    config = make_config(**{**SMALL, "clips_per_species": 40, "species": 3, "seconds": 0.1}, imbalance=10.0)
    counts = config.clip_counts()
    assert max(counts.values()) == 40 and min(counts.values()) == 4 and len(set(counts.values())) == 6
    manifest = generate_dataset(tmp_path, config)
    assert {label: sum(c.label == label for c in manifest) for label in manifest.labels} == {
        f"{group}/sp{number:02d}": count for (group, number), count in counts.items()}


def test_label_noise_changes_train_and_valid_labels_only(tmp_path):
    noisy = make_config(**{**SMALL, "species": 4, "clips_per_species": 20, "seconds": 0.1}, label_noise=0.3, seed=2)
    clean = generate_dataset(tmp_path / "clean", noisy.model_copy(update={"label_noise": 0.0}))
    manifest = generate_dataset(tmp_path / "noisy", noisy)
    pairs = list(zip(clean, manifest))
    assert all(a.path.name == b.path.name and a.path.read_bytes() == b.path.read_bytes() for a, b in pairs)
    changed = [(a, b) for a, b in pairs if a.label != b.label]
    assert all(b.split in ("train", "valid") for _, b in changed)
    trainable = sum(b.split != "test" for _, b in pairs)
    assert 0.15 < len(changed) / trainable < 0.45
    listed = json.loads((tmp_path / "noisy" / "synth.json").read_text())["label_noise"]
    assert [(e["true"], e["given"]) for e in listed] == [(a.label, b.label) for a, b in changed]


def test_named_hard_settings(tmp_path):
    assert len(make_config(preset="many-species").species_numbers()) >= 50
    assert make_config(preset="few-clips").clips_per_species <= 24
    assert make_config(preset="short-call", seed=5).seed == 5
    with pytest.raises(SynthError, match="unknown synthetic preset"):
        make_config(preset="impossible")
