"""One CLI vocabulary: every command (subcommands included) answers ``-h`` with an example,
shared things have the shared names and short flags, ``--device`` defaults to ``auto``
wherever a model runs, and piped tables are TSV, never cut to the terminal's width."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

import chorus
from chorus.cli.main import build_app

MODEL_COMMANDS = {"embed", "probe", "finetune", "pretrain", "predict", "evaluate", "compare", "separate", "analyze"}
"""Commands that run a model on a torch device."""
SHARED = {"out": ("-o", "--out"), "encoder": ("-e", "--encoder"), "data": ("-d", "--data"),
          "seed": ("--seed",), "batch_size": ("--batch-size",), "split": ("--split",), "device": ("--device",)}


def _commands(group, path=()):
    """``(path, click command)`` of every registered command and group, depth first."""
    yield path, group
    for name, command in sorted(getattr(group, "commands", {}).items()):
        yield from _commands(command, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(build_app())))


def _options(command):
    return [p for p in command.params if p.param_type_name == "option"]


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "chorus" for p, _ in COMMANDS])
def test_every_command_has_help_with_an_example_and_the_shared_names(path, command):
    result = CliRunner().invoke(build_app(), [*path, "-h"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "<bool>" not in result.output
    for option in _options(command):
        if option.name in SHARED:
            assert tuple(sorted(option.opts)) == tuple(sorted(SHARED[option.name])), (path, option.opts)
        if option.name == "device":
            assert option.default == "auto"
        if option.name == "split":
            assert "'all': every clip" in option.help
    if path and path[-1] in MODEL_COMMANDS:
        assert "device" in {o.name for o in _options(command)}, path


def test_a_short_flag_means_one_thing_everywhere():
    meaning: dict[str, set[str]] = {}
    for _, command in COMMANDS:
        for option in _options(command):
            longs = tuple(sorted(o for o in option.opts if o.startswith("--")))
            for short in (o for o in option.opts if not o.startswith("--")):
                meaning.setdefault(short, set()).add(longs)
    assert {short: longs for short, longs in meaning.items() if len(longs) > 1} == {}
    assert meaning["-o"] == {("--out",)} and meaning["-e"] == {("--encoder",)} and meaning["-d"] == {("--data",)}


def test_required_options_are_marked_and_version_is_printed():
    merge = dict(COMMANDS)[("merge",)]
    assert next(o for o in merge.params if o.name == "out").required
    assert "[required]" in CliRunner().invoke(build_app(), ["merge", "-h"]).output
    result = CliRunner().invoke(build_app(), ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"chorus {chorus.__version__}"


def test_all_is_the_one_spelling_of_every_clip_and_the_old_one_still_works():
    from chorus.cli._options import split_value

    assert split_value("all") is None and split_value("") is None and split_value("valid") == "valid"


def _chorus(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "chorus.cli.main", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=300)


def test_a_piped_table_is_tsv_with_long_names_whole():
    from chorus.encoders import encoder_specs

    result = _chorus("encoders", "--all")
    assert result.returncode == 0, result.stderr
    title, *lines = result.stdout.splitlines()
    assert title == "# chorus encoders" and lines[0] == "name\tfamily\tsample rate\tlayers\tparameters\tweights"
    longest = max(encoder_specs(include_test_configs=True), key=lambda spec: len(spec.weights))
    assert len(longest.weights) > 40  # more than an 80-column table leaves that column
    row = next(line.split("\t") for line in lines if line.startswith(longest.name + "\t"))
    assert row[-1] == longest.weights and "…" not in result.stdout
    assert len(lines) == 1 + len(encoder_specs(include_test_configs=True))


def test_quiet_prints_nothing_on_stdout():
    result = _chorus("--quiet", "encoders")
    assert result.returncode == 0 and result.stdout == ""


MINIMAL_ARGS = {"embed": ["x.wav", "-o", "o"], "probe": ["-d", "m.csv", "-o", "o"],
                "finetune": ["-d", "m.csv", "-o", "o"],
                "pretrain": ["-d", "m.csv", "-o", "o"], "predict": ["model", "x.wav", "-o", "o"],
                "evaluate": ["model", "-d", "m.csv"], "compare": ["-d", "m.csv", "-o", "o"], "separate": ["mix.wav"],
                "analyze": ["tv", "-o", "o"]}


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
def test_a_device_that_cannot_be_used_is_refused_before_any_work(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(build_app(), [command, *MINIMAL_ARGS[command], "--device", "cuda:99"])
    assert result.exit_code == 2 and "cuda:99 requested" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_quiet_and_verbose_are_global_and_exclusive():
    assert CliRunner().invoke(build_app(), ["--verbose", "encoders"]).exit_code == 0
    both = CliRunner().invoke(build_app(), ["--quiet", "--verbose", "encoders"])
    assert both.exit_code == 2 and "not both" in both.output
