"""Fuzzing: whatever bytes a user's file holds, the parsers of manifests, Raven selection
tables, merge recipes, task-vector headers and manifests, and model configs raise a
:class:`~chorus.errors.ChorusError` (or succeed), never anything else."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chorus.data.annotations import read_raven
from chorus.data.manifest import read_manifest
from chorus.errors import ChorusError
from chorus.model.layout import read_config
from chorus.taskvec import TaskVector
from chorus.taskvec.merge import load_recipe, parse_recipe
from chorus.tensorfile import read_header

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=12)
CELL = st.sampled_from(["path", "label", "labels", "split", "group", "start", "end", "train", "valid", "test",
                        "a.wav", "-1", "nan", "1e308", "", " ", '"', "\x00", "é", "a;b", "0.5"]) | st.text(max_size=8)
TABLE = st.lists(st.lists(CELL, min_size=1, max_size=6), min_size=0, max_size=6)
RAVEN_CELL = st.sampled_from(["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)",
                              "High Freq (Hz)", "Annotation", "Species", "Begin Path", "1", "0.5", "-3", "nan",
                              "inf", "Spectrogram 1", "Waveform 1", ""]) | st.text(max_size=8)
RAVEN = st.lists(st.lists(RAVEN_CELL, min_size=1, max_size=8), max_size=6)
RECIPE_KEYS = st.sampled_from(["method", "lambda", "vectors", "path", "weight", "params", "calibration", "base",
                               "density", "task_arithmetic", "ties", "mean", ".nan", "-.inf"])
RECIPE = st.recursive(st.none() | st.floats() | st.integers() | RECIPE_KEYS | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(RECIPE_KEYS, inner, max_size=4),
                      max_leaves=12)


def _never_crashes(parse, *args) -> None:
    try:
        parse(*args)
    except ChorusError as exc:
        assert str(exc)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def vector_copy(tmp_path_factory):
    from _mergedata import saved_vectors

    return saved_vectors(tmp_path_factory.mktemp("tv"))[0]


@FUZZ
@given(raw=st.binary(max_size=300) | TABLE.map(lambda rows: "\n".join(",".join(r) for r in rows).encode()))
def test_manifests(scratch, raw):
    path = scratch / "manifest.csv"
    path.write_bytes(raw)
    _never_crashes(read_manifest, path)
    tsv = scratch / "manifest.tsv"
    tsv.write_bytes(raw.replace(b",", b"\t"))
    _never_crashes(read_manifest, tsv)


@FUZZ
@given(raw=st.binary(max_size=300) | RAVEN.map(lambda rows: "\n".join("\t".join(r) for r in rows).encode()))
def test_raven_selection_tables(scratch, raw):
    path = scratch / "table.selections.txt"
    path.write_bytes(raw)
    _never_crashes(read_raven, path)


@FUZZ
@given(data=RECIPE, raw=st.binary(max_size=200))
def test_recipes(scratch, data, raw):
    _never_crashes(parse_recipe, data, "recipe.yaml")
    for name, text in (("recipe.yaml", raw), ("recipe.json", json.dumps(data, allow_nan=True).encode())):
        path = scratch / name
        path.write_bytes(text)
        _never_crashes(load_recipe, path)


@FUZZ
@given(header=JSON, raw=st.binary(max_size=120), claimed=st.integers(0, 2**64 - 1))
def test_safetensors_headers(scratch, header, raw, claimed):
    text = json.dumps(header, allow_nan=True).encode()
    for name, content in (("json.safetensors", struct.pack("<Q", len(text)) + text),
                          ("claimed.safetensors", struct.pack("<Q", claimed) + raw),
                          ("raw.safetensors", raw)):
        path = scratch / name
        path.write_bytes(content)
        _never_crashes(read_header, path)


@FUZZ
@given(data=JSON, raw=st.binary(max_size=200))
def test_task_vector_manifests(vector_copy, data, raw):
    manifest = vector_copy / "taskvector.json"
    original = manifest.read_bytes()
    try:
        for content in (json.dumps(data, allow_nan=True).encode(), raw,
                        original.replace(b'"', b"", 1 + len(raw) % 7)):
            manifest.write_bytes(content)
            _never_crashes(TaskVector.load, vector_copy)
    finally:
        manifest.write_bytes(original)


@FUZZ
@given(data=JSON, raw=st.binary(max_size=200))
def test_model_configs(scratch, data, raw):
    path = scratch / "config.json"
    for content in (json.dumps(data, allow_nan=True).encode(), raw):
        path.write_bytes(content)
        _never_crashes(read_config, scratch)
