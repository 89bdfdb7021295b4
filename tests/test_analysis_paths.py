"""Connectivity, negation, spectra and ``chorus analyze`` on toy-cnn vectors and tone clips."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from _mergedata import SETTINGS, toy_vector
from _toydata import TONES, tone_manifest

from chorus.analysis import AnalysisError, AnalysisSettings, analyze
from chorus.analysis.connectivity import alpha_grid, barriers, connectivity
from chorus.analysis.negation import score_negations
from chorus.analysis.spectra import js_distance, log_mel_spectrum, rank_correlation
from chorus.encoders import load_encoder
from chorus.data.clipset import load_eval_audio
from chorus.analysis.scoring import score
from chorus.evaluate import layer_features
from chorus.taskvec import TaskVector, apply
from chorus.taskvec.merge import compose_heads


@pytest.fixture(scope="module")
def base():
    return load_encoder("toy-cnn")


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return tone_manifest(tmp_path_factory.mktemp("tones"))


@pytest.fixture(scope="module")
def audio(tones):
    return load_eval_audio(tones.select(split="valid").clips, 16_000)


@pytest.fixture(scope="module")
def vectors(base):
    return [toy_vector(base, group, list(labels), seed) for seed, (group, labels) in enumerate(TONES.items())]


def test_lmc_between_a_model_and_itself_is_flat(base, vectors, audio):
    g1 = vectors[0]
    twin = toy_vector(base, "g1", list(TONES["g1"]), 0)  # the same τ again
    curves = connectivity([g1, twin], base.state_dict(), audio, alpha_grid(5))
    curve, = curves
    assert curve["pair"] == ["g1", "g1"] and curve["clips"] == 4 and curve["alpha"] == [0, 0.25, 0.5, 0.75, 1]
    assert max(curve["loss"]) - min(curve["loss"]) < 1e-5 and len(set(curve["accuracy"])) == 1
    assert abs(curve["loss_barrier"]) < 1e-5 and curve["accuracy_barrier"] == 0.0
    assert curve["straight"]["same_as_task_vector_path"] and curve["straight"]["loss"] == curve["loss"][::-1]


def test_lmc_endpoints_are_the_fine_tuned_models(base, vectors, audio):
    curve, = connectivity(vectors, base.state_dict(), audio, [0.0, 0.5, 1.0])
    assert curve["pair"] == ["g1", "g2"] and curve["clips"] == 8
    heads = compose_heads(vectors, "auto")
    part = audio.of_groups(["g1", "g2"])
    for alpha, tuned in ((0.0, apply(base, [vectors[1]])), (1.0, apply(base, [vectors[0]]))):
        expected = score(heads, layer_features(tuned, heads.settings, part), part.clips)
        index = curve["alpha"].index(alpha)
        assert curve["loss"][index] == pytest.approx(expected["loss"], rel=1e-5)
        assert curve["accuracy"][index] == expected["accuracy"]
    assert len(set(curve["loss"])) == 3  # the midpoint is a different model
    with pytest.raises(AnalysisError, match="rise from 0 to 1"):
        connectivity(vectors, base.state_dict(), audio, [0.0, 0.5])


def test_barrier_heights():
    result = barriers([0.0, 0.5, 1.0], accuracy=[0.8, 0.5, 0.6], loss=[1.0, 3.0, 2.0])
    assert result["loss_barrier"] == pytest.approx(1.5) and result["accuracy_barrier"] == pytest.approx(0.2)


def test_negation_curves(base, vectors, audio):
    records = score_negations(vectors, base.state_dict(), audio, [0.0, 1.0])
    assert [r["negated"] for r in records] == ["g1", "g2"]
    first = records[0]
    assert set(first["accuracy"]) == {"g1", "g2"} and first["lambda"] == [0.0, 1.0]
    # λ = 0 is the base encoder for every negated group
    assert records[0]["loss"]["g2"][0] == records[1]["loss"]["g2"][0]
    assert first["loss"]["g1"][0] != first["loss"]["g1"][1]
    g1 = vectors[0]
    zero = TaskVector.from_models(base, copy.deepcopy(base), group="g1", classifier=SETTINGS, heads=g1.heads,
                                  head_tensors=g1.head_tensors())
    flat, _ = score_negations([zero, vectors[1]], base.state_dict(), audio, [0.0, 2.0])
    assert flat["loss"]["g1"][0] == pytest.approx(flat["loss"]["g1"][1], rel=1e-6)


def test_spectral_distance_and_rank_correlation():
    rate = 16_000
    t = np.arange(rate // 2) / rate
    low, high = np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 6000 * t)
    p, q = log_mel_spectrum(low, rate), log_mel_spectrum(high, rate)
    assert p.sum() == pytest.approx(1.0) and js_distance(p, p) == pytest.approx(0.0, abs=1e-6)
    assert js_distance(p, q) > 0.95
    assert js_distance(p, log_mel_spectrum(low + 0.3 * high, rate)) < js_distance(p, q)
    assert log_mel_spectrum(np.zeros(rate), rate) is None
    assert rank_correlation([0.1, 0.2, 0.3], [0.3, 0.2, 0.1])["rho"] == pytest.approx(-1.0)
    assert rank_correlation([0.1, 0.2], [0.3, 0.2])["rho"] is None


def test_analyze_without_clips_is_geometry_only(vectors):
    result = analyze(vectors, settings=AnalysisSettings(ranks=False))
    assert set(result) == {"settings", "geometry", "summary"} and result["geometry"]["effective_rank"] == []
    assert result["summary"]["mean_off_diagonal_cosine"] == result["geometry"]["whole_model"]["cosine"][0][1]


def test_cli_analyze_writes_json_figures_and_page(run_cli, base, vectors, tones, tmp_path):
    paths = [v.save(tmp_path / g) for v, g in zip(vectors, TONES)]
    out = tmp_path / "analysis"
    result = run_cli("analyze", *paths, "--data", tones.source, "--out", out, "--alpha-points", "3",
                     "--lambdas", "0,1")
    assert result.exit_code == 0, result.output
    assert "mean off-diagonal cosine" in result.output and "Spearman" in result.output
    record = json.loads((out / "analysis.json").read_text())
    assert record["connectivity"][0]["alpha"] == [0.0, 0.5, 1.0] and record["negation"][0]["lambda"] == [0.0, 1.0]
    assert record["spectra"]["pairs"][0]["pair"] == ["g1", "g2"]
    assert [layer["layer"] for layer in record["geometry"]["layers"]] == list(base.layer_names)  # as probes name them
    for stem in ("cosine", "layers", "norms", "lmc", "spectra", "negation"):
        assert (out / f"{stem}.png").read_bytes().startswith(b"\x89PNG")
    page = (out / "analysis.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and "Linear mode connectivity" in page


def test_cli_analyze_refuses_missing_groups_and_bad_vectors(run_cli, vectors, tones, tmp_path):
    g1 = vectors[0].save(tmp_path / "g1")
    other = toy_vector(load_encoder("toy-cnn"), "owls", ["owls/a"], 3).save(tmp_path / "owls")
    result = run_cli("analyze", g1, other, "--data", tones.source, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "owls" in result.output and "manifest.csv" in result.output
    (tmp_path / "broken").mkdir()
    result = run_cli("analyze", g1, tmp_path / "broken", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "broken" in result.output
