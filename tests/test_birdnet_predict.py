"""``chorus predict birdnet``: BirdNET's own head with BirdNET-Analyzer's options, its
detections against the reference runtime on the same segments, and its tables."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from chorus.audio import write_audio
from chorus.data.synth import make_config, render_clip
from chorus.encoders import load_encoder
from chorus.encoders.birdnet import LABELS_FILE, MODEL_FILE, birdnet_file
from chorus.encoders.birdnet_labels import read_labels
from chorus.predict.birdnet_analyzer import BirdNETSettings, analyze_recording, confidences, read_species_list, segments
from chorus.predict.errors import BirdNETSettingsError
from chorus.predict.birdnet_run import allowed_species

RATE = 44_100


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """10.5 s of synthetic calls at 44.1 kHz (decoded and resampled to 48 kHz when read)."""
    config = make_config(groups=("birds",), species=3, seconds=3.5, sample_rate=RATE)
    clip = np.concatenate([render_clip(config, "birds", n, 0)[0] for n in (1, 2, 3)])
    path = tmp_path_factory.mktemp("rec") / "dawn.wav"
    write_audio(path, clip, RATE)
    return path


@pytest.fixture(scope="module")
def birdnet():
    return load_encoder("birdnet"), read_labels(birdnet_file(LABELS_FILE), 6522)


def _reference_detections(path, labels, settings):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(birdnet_file(MODEL_FILE)), num_threads=2)
    interpreter.allocate_tensors()
    rows = []
    for start, end, samples in segments(path, settings):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], samples[None])
        interpreter.invoke()
        scores = confidences(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].astype(np.float64),
                             settings.sensitivity)
        rows += [(start, end, labels[i], scores[i]) for i in np.flatnonzero(scores >= settings.min_conf)]
    return rows


def test_detections_equal_the_reference_runtime_on_the_same_segments(recording, birdnet):
    encoder, labels = birdnet
    settings = BirdNETSettings(min_conf=0.02, overlap=1.0)
    ours = analyze_recording(recording, encoder, labels, np.ones(6522, bool), settings)
    reference = _reference_detections(recording, labels, settings)
    assert len(ours) >= 3
    assert sorted((d.start, d.end, d.label) for d in ours) == sorted((s, e, lab) for s, e, lab, _ in reference)
    expected = {(s, lab): c for s, _, lab, c in reference}
    assert all(abs(d.confidence - expected[(d.start, d.label)]) < 1e-4 for d in ours)
    starts = sorted({d.start for d in ours})
    assert set(starts) <= {0.0, 2.0, 4.0, 6.0, 8.0} and ours[-1].end <= 10.5 + 1e-9


def test_segments_follow_the_overlap_and_drop_short_tails(recording):
    spans = [(s, e) for s, e, _ in segments(recording, BirdNETSettings(overlap=1.5))]
    assert spans[:3] == [(0.0, 3.0), (1.5, 4.5), (3.0, 6.0)]
    assert spans[-1] == (7.5, 10.5)  # the next one (9.0 s, 1.5 s long) is padded
    assert [s for s, _, _ in segments(recording, BirdNETSettings())] == [0.0, 3.0, 6.0, 9.0]


def test_sensitivity_and_min_conf_move_the_detections(recording, birdnet):
    encoder, labels = birdnet
    everything = np.ones(6522, bool)
    counts = [len(analyze_recording(recording, encoder, labels, everything, BirdNETSettings(min_conf=0.05, sensitivity=s)))
              for s in (0.5, 1.0, 1.5)]
    assert counts[0] <= counts[1] <= counts[2] and counts[0] < counts[2]
    assert confidences(np.array([0.0]), 1.5)[0] == pytest.approx(0.5)
    assert confidences(np.array([-2.0]), 1.5)[0] > confidences(np.array([-2.0]), 0.5)[0]


def test_species_list_and_location_narrow_the_species(tmp_path, birdnet):
    _, labels = birdnet
    listing = tmp_path / "species.txt"
    listing.write_text("Turdus merula_Eurasian Blackbird\nErithacus rubecula\nNorthern Cardinal\nDodo dodo\n")
    mask, problems = read_species_list(listing, labels)
    assert int(mask.sum()) == 3 and problems == [f"{listing}:4: 'Dodo dodo' matches no BirdNET label"]
    berlin = allowed_species(labels, BirdNETSettings(lat=52.5, lon=13.4, week=20), None)[0]
    assert 50 < int(berlin.sum()) < 1000 and berlin[labels.index("Turdus merula_Eurasian Blackbird")]
    assert not berlin[labels.index("Cardinalis cardinalis_Northern Cardinal")]
    both = allowed_species(labels, BirdNETSettings(lat=52.5, lon=13.4, week=20), listing)[0]
    assert int(both.sum()) == 2


@pytest.mark.parametrize("fields", [{"min_conf": 0.0}, {"sensitivity": 2.0}, {"overlap": 3.0}, {"lat": 10.0},
                                    {"lat": 95.0, "lon": 0.0}, {"lat": 0.0, "lon": 0.0, "week": 0}])
def test_bad_settings_are_typed_errors(fields):
    with pytest.raises(BirdNETSettingsError):
        BirdNETSettings(**fields)


def test_cli_writes_birdnet_analyzer_tables(run_cli, recording, tmp_path):
    listing = tmp_path / "species.txt"
    listing.write_text("Nobody here\n")
    result = run_cli("predict", "birdnet", recording, "--out", tmp_path / "raven", "--min-conf", "0.02",
                     "--species-list", listing)
    assert result.exit_code == 0, result.output
    assert "species.txt:1: 'Nobody here' matches no BirdNET label" in result.output
    table = (tmp_path / "raven" / "dawn.BirdNET.selection.table.txt").read_text().splitlines()
    assert table[0].split("\t")[7:] == ["Common Name", "Species Code", "Confidence", "Begin Path", "File Offset (s)"]
    assert len(table) == 1  # nothing listed matched, so no species is reported
    result = run_cli("predict", "birdnet", recording, "--out", tmp_path / "k", "--min-conf", "0.02",
                     "--format", "kaleidoscope", "--lat", "52.5", "--lon", "13.4", "--week", "20")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "k" / "dawn.BirdNET.results.kaleidoscope.csv").open()))
    assert rows and {r["IN FILE"] for r in rows} == {"dawn.wav"} and {r["week"] for r in rows} == {"20"}
    bad = run_cli("predict", "birdnet", recording, "--out", tmp_path / "x", "--lat", "91", "--lon", "0")
    assert bad.exit_code == 2 and "latitude 91.0 is outside -90..90" in bad.output


def test_classify_is_batch_independent(birdnet):
    encoder, _ = birdnet
    x = torch.from_numpy((0.05 * np.random.default_rng(2).standard_normal((3, 144_000))).astype(np.float32))
    with torch.inference_mode():
        together = encoder.classify(x)[1]
        alone = torch.cat([encoder.classify(x[i:i + 1])[1] for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_audacity_and_csv_tables_use_birdnet_analyzer_columns():
    from chorus.predict.birdnet_analyzer import BirdNETDetection
    from chorus.predict.birdnet_tables import format_table

    found = [BirdNETDetection(3.0, 6.0, "Turdus merula_Eurasian Blackbird", 0.81234)]
    assert format_table("audacity", found, "a/b.wav", BirdNETSettings()) == "3.0\t6.0\tTurdus merula, Eurasian Blackbird\t0.8123\n"
    assert format_table("csv", found, "a/b.wav", BirdNETSettings()).splitlines() == [
        "Start (s),End (s),Scientific name,Common name,Confidence,File",
        "3.0000,6.0000,Turdus merula,Eurasian Blackbird,0.8123,a/b.wav"]
    with pytest.raises(ValueError, match="unknown format 'parquet'"):
        format_table("parquet", found, "a/b.wav", BirdNETSettings())
