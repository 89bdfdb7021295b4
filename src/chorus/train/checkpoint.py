"""Resumable training checkpoints in safetensors + JSON (never pickle), shared by every
training in chorus (fine-tuning, continual pre-training, source priors).

Layout under ``<out>/checkpoint/``: ``step-NNNNNNNN/`` (named after the optimizer steps
done) holding ``model.safetensors`` (model state, LoRA wrappers included),
``optimizer.safetensors`` (optimizer moments, ``{param index}.{field}``), one
``<name>.safetensors`` per extra tensor set (the best epoch's weights, an EMA...),
``rng.safetensors`` (states of named random generators) and ``state.json`` (format,
training step and loss-scaler state, optimizer groups, the caller's JSON state, sha256 of
every tensor file). ``latest.json`` names the newest complete folder and is written last,
so a crash while checkpointing leaves the previous checkpoint in force. Loading validates
every file (headers, sha256) before reading it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .errors import CheckpointError
from ..fileio import write_json
from ..tensorfile import load_tensors, save_tensors
from .step import TrainStep

CHECKPOINT_DIR = "checkpoint"
LATEST = "latest.json"
FORMAT = "chorus-checkpoint/1"
_FOLDER = re.compile(r"step-\d{8}")
_FILE = re.compile(r"[A-Za-z0-9_-]+\.safetensors")
_RESERVED = {"model", "optimizer", "rng"}


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` restored besides the model, optimizer and step.

    ``step``: optimizer steps done; ``state``: the caller's JSON state; ``tensors``: the
    caller's extra tensor sets by name.
    """

    step: int
    state: dict[str, Any]
    tensors: dict[str, dict[str, Tensor]] = field(default_factory=dict)


def save_checkpoint(out_dir: Path, model: nn.Module, trainer: TrainStep, state: dict[str, Any],
                    tensors: dict[str, dict[str, Tensor]] | None = None,
                    generators: dict[str, torch.Generator] | None = None) -> Path:
    """Write a checkpoint after ``trainer.step`` optimizer steps and drop older ones.

    ``state``: JSON-able caller state; ``tensors``: extra named tensor sets;
    ``generators``: random generators whose states a resumed run continues from.
    """
    tensors = tensors or {}
    if _RESERVED & set(tensors):
        raise ValueError(f"extra tensor sets may not be named {sorted(_RESERVED & set(tensors))}")
    root = Path(out_dir) / CHECKPOINT_DIR
    folder = root / f"step-{trainer.step:08d}"
    partial = root / f"{folder.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    saved = trainer.optimizer.state_dict()
    moments = {f"{index}.{name}": value for index, fields in saved["state"].items()
               for name, value in fields.items() if isinstance(value, Tensor)}
    sets = {"model": model.state_dict(), "optimizer": moments, **tensors,
            "rng": {name: gen.get_state() for name, gen in (generators or {}).items()}}
    try:
        files = {f"{name}.safetensors": save_tensors(partial / f"{name}.safetensors", values)
                 for name, values in sets.items()}
        write_json(partial / "state.json", {"format": FORMAT, "trainer": trainer.state(),
                                            "param_groups": saved["param_groups"], "state": state, "files": files})
    except BaseException:  # a full disk or an interruption: no half-written checkpoint stays behind
        shutil.rmtree(partial, ignore_errors=True)
        if not any(root.iterdir()):
            root.rmdir()
        raise
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    write_json(root / LATEST, {"folder": folder.name})
    for old in root.glob("step-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def load_checkpoint(out_dir: Path, model: nn.Module, trainer: TrainStep,
                    generators: dict[str, torch.Generator] | None = None,
                    check: Callable[[dict[str, Any]], None] | None = None) -> Checkpoint | None:
    """Restore ``model``, ``trainer`` (optimizer, step, loss scaler) and ``generators`` from
    the newest checkpoint under ``out_dir``; None when there is none. ``check(state)`` sees
    the caller's state before anything is restored (to refuse other settings). Raises
    :class:`CheckpointError` (or a :class:`~chorus.tensorfile.TensorFileError`) for a
    damaged, altered or foreign checkpoint; nothing is ever unpickled."""
    root = Path(out_dir) / CHECKPOINT_DIR
    if not (root / LATEST).is_file():
        return None
    name = _read_json(root / LATEST).get("folder")
    if not isinstance(name, str) or not _FOLDER.fullmatch(name):
        raise CheckpointError(root / LATEST, f"names no checkpoint folder ({name!r})")
    folder = root / name
    record = _read_json(folder / "state.json")
    if record.get("format") != FORMAT:
        raise CheckpointError(folder / "state.json", f"format {record.get('format')!r}, expected {FORMAT!r} "
                                                     "(start without resuming)")
    files = record.get("files")
    if not isinstance(files, dict) or not all(isinstance(f, str) and _FILE.fullmatch(f) for f in files) \
            or not {f"{name}.safetensors" for name in _RESERVED} <= set(files) \
            or not {"trainer", "param_groups", "state"} <= set(record):
        raise CheckpointError(folder / "state.json", "malformed checkpoint record")
    if check is not None:
        check(record["state"])
    sets = {file.removesuffix(".safetensors"): load_tensors(folder / file, digest) for file, digest in files.items()}
    model.load_state_dict(sets.pop("model"))
    restored: dict[int, dict[str, Tensor]] = {}
    for key, value in sets.pop("optimizer").items():
        index, moment = key.split(".", 1)
        restored.setdefault(int(index), {})[moment] = value
    trainer.optimizer.load_state_dict({"state": restored, "param_groups": record["param_groups"]})
    trainer.load_state(record["trainer"])
    states = sets.pop("rng")
    for name, gen in (generators or {}).items():
        if name not in states:
            raise CheckpointError(folder / "rng.safetensors", f"holds no state of the generator {name!r}")
        gen.set_state(states[name])
    return Checkpoint(trainer.step, record["state"], sets)


def remove_checkpoints(out_dir: Path) -> None:
    shutil.rmtree(Path(out_dir) / CHECKPOINT_DIR, ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(path, "missing (incomplete checkpoint)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(path, f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise CheckpointError(path, "not a JSON object")
    return value
