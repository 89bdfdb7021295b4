"""The package's shape: sub-packages import each other without cycles, registries find
their members by module, and `chorus encoders` lists only real backbones by default."""

from __future__ import annotations

import grimp
from typer.testing import CliRunner

from chorus.cli.main import build_app


def _package_graph() -> dict[str, set[str]]:
    """Which top-level part of chorus (sub-package or module) imports which other."""
    graph = grimp.build_graph("chorus")
    parts: dict[str, set[str]] = {}
    for module in graph.modules:
        source = ".".join(module.split(".")[:2])
        for imported in graph.find_modules_directly_imported_by(module):
            target = ".".join(imported.split(".")[:2])
            if target != source and target.startswith("chorus."):
                parts.setdefault(source, set()).add(target)
    return parts


def test_top_level_parts_import_each_other_without_a_cycle():
    graph = _package_graph()
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for successor in sorted(graph.get(node, ())):
            assert state.get(successor) != "open", f"import cycle: {' -> '.join(path + [node, successor])}"
            if successor not in state:
                visit(successor, path + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert "chorus.cli" in graph and "chorus.encoders" in graph["chorus.cli"]


def test_encoders_lists_real_backbones_and_all_adds_the_test_configurations():
    runner = CliRunner()
    default = runner.invoke(build_app(), ["encoders"], env={"COLUMNS": "200"})
    everything = runner.invoke(build_app(), ["encoders", "--all"], env={"COLUMNS": "200"})
    assert default.exit_code == everything.exit_code == 0
    for real in ("sfx-cnn", "crepe-full", "wavlm-base-plus", "beats", "whisper-base"):
        assert real in default.output
    for tiny in ("sfx-cnn-tiny", "toy-cnn", "wavlm-tiny", "crepe-micro", "student-cnn-tiny"):
        assert tiny not in default.output and tiny in everything.output


def test_test_configurations_still_load_by_name():
    from chorus.encoders import get_spec, load_encoder

    assert get_spec("toy-cnn").for_tests
    assert load_encoder("toy-cnn").num_layers == 3


def test_registries_discover_every_family_and_method_module():
    from chorus.encoders import encoder_specs
    from chorus.registration import import_submodules
    from chorus.taskvec.merge import method_names

    families = {spec.family for spec in encoder_specs(include_test_configs=True)}
    assert {"sfx-cnn", "crepe", "wavlm", "hubert", "wav2vec2", "mert", "ast", "whisper", "clap", "beats"} <= families
    assert {"mean", "task_arithmetic", "ties", "dare", "breadcrumbs", "tsv", "iso_c"} <= set(method_names())
    commands = [m.__name__.rsplit(".", 1)[1] for m in import_submodules("chorus.cli")]
    assert "merge" in commands and "probe" in commands
