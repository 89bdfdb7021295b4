"""The local process pool and Ray Data give the same bytes as an in-process run."""

from __future__ import annotations

import pytest

from _predictdata import recordings, toy_model, tree_bytes
from chorus.predict import PredictSettings, predict


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for this module, shut down after it."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("engines")
    model = toy_model(root / "model")
    recordings(root / "rec", seconds=(4.0, 1.5, 7.0, 0.3, 2.2))
    (root / "rec" / "zz-broken.wav").write_bytes(b"RIFF junk")
    settings = PredictSettings(window=1.0, hop=0.5, format="parquet", batch_size=4, open_files=2)
    predict(model, [root / "rec"], root / "reference", settings, workers=1)
    return model, root, settings


def test_local_pool_matches_in_process(inputs):
    model, root, settings = inputs
    report = predict(model, [root / "rec"], root / "pool", settings, engine="local", workers=2)
    assert report.computed == 5 and [f.path.name for f in report.failures] == ["zz-broken.wav"]
    assert tree_bytes(root / "pool") == tree_bytes(root / "reference")


def test_ray_matches_in_process(inputs, local_ray):
    model, root, settings = inputs
    report = predict(model, [root / "rec"], root / "ray", settings, engine="ray", workers=2)
    assert report.computed == 5 and [f.path.name for f in report.failures] == ["zz-broken.wav"]
    assert local_ray.is_initialized(), "a Ray session the caller started is left running"
    assert tree_bytes(root / "ray") == tree_bytes(root / "reference")


def _embed_rows(out):
    from chorus.features import read_embeddings

    table = read_embeddings(out).sort_by([("path", "ascending"), ("start", "ascending")])
    return table.drop(["key"]).to_pylist()


@pytest.fixture(scope="module")
def embedded(inputs):
    from chorus.features import embed_manifest
    from chorus.features.embed import window_clips
    from chorus.features.engines import EncoderRecipe
    from chorus.predict import find_recordings

    _, root, _ = inputs
    clips, bad = window_clips(find_recordings([root / "rec"]), 1.0, 0.5)
    recipe = EncoderRecipe("toy-cnn")
    report = embed_manifest(recipe.load(), clips, root / "emb-ref", batch_size=3, workers=1)
    assert [e.path.name for e in bad] == ["zz-broken.wav"] and report.computed == len(clips) > 12
    return clips, recipe, root


def test_embed_windows_on_a_local_pool_match_in_process(embedded):
    from chorus.features import embed_manifest

    clips, recipe, root = embedded
    report = embed_manifest(recipe.load(), clips, root / "emb-pool", batch_size=3, workers=2, recipe=recipe)
    assert report.computed == len(clips)
    rows = _embed_rows(root / "emb-pool")
    assert rows == _embed_rows(root / "emb-ref") and rows[1]["start"] == 0.5 and len(rows[0]["layer_conv3"]) == 32


def test_embed_windows_on_ray_match_in_process(embedded, local_ray):
    from chorus.features import embed_manifest

    clips, recipe, root = embedded
    report = embed_manifest(recipe.load(), clips, root / "emb-ray", batch_size=3, engine="ray", workers=1,
                            recipe=recipe)
    assert report.computed == len(clips) and _embed_rows(root / "emb-ray") == _embed_rows(root / "emb-ref")
