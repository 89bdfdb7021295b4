"""Per-epoch training checkpoints in safetensors + JSON (never pickle), for resuming.

Layout under ``<out>/checkpoint/``: ``epoch-NNNN/`` holding ``model.safetensors``
(model state, LoRA wrappers included), ``optimizer.safetensors`` (AdamW moments,
``{param index}.{field}``), ``best.safetensors`` (model state of the best epoch) and
``state.json`` (epoch, optimizer step, history, early stopping, optimizer groups, sha256
of the three files); ``latest.json`` names the newest complete folder and is written
last, so a crash while checkpointing leaves the previous checkpoint in force.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..fileio import write_json
from ..tensorfile import load_tensors, save_tensors

CHECKPOINT_DIR = "checkpoint"
LATEST = "latest.json"


def save_checkpoint(out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    best_state: dict[str, Tensor] | None, state: dict[str, Any]) -> Path:
    """Write the checkpoint of the epoch ``state["epoch"]`` and drop older ones."""
    root = Path(out_dir) / CHECKPOINT_DIR
    folder = root / f"epoch-{state['epoch']:04d}"
    saved = optimizer.state_dict()
    moments = {f"{index}.{field}": value for index, fields in saved["state"].items()
               for field, value in fields.items() if isinstance(value, Tensor)}
    files = {"model.safetensors": save_tensors(folder / "model.safetensors", model.state_dict()),
             "optimizer.safetensors": save_tensors(folder / "optimizer.safetensors", moments)}
    if best_state is not None:
        files["best.safetensors"] = save_tensors(folder / "best.safetensors", best_state)
    write_json(folder / "state.json", {**state, "param_groups": saved["param_groups"], "files": files})
    write_json(root / LATEST, {"folder": folder.name})
    for old in root.glob("epoch-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def load_checkpoint(out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer
                    ) -> tuple[dict[str, Any], dict[str, Tensor] | None] | None:
    """Restore ``model`` and ``optimizer`` from the newest checkpoint.

    Returns ``(state, best_state)``, or None when there is no checkpoint.
    """
    root = Path(out_dir) / CHECKPOINT_DIR
    if not (root / LATEST).is_file():
        return None
    folder = root / json.loads((root / LATEST).read_text())["folder"]
    state = json.loads((folder / "state.json").read_text())
    files = state.pop("files")
    model.load_state_dict(load_tensors(folder / "model.safetensors", files["model.safetensors"]))
    moments = load_tensors(folder / "optimizer.safetensors", files["optimizer.safetensors"])
    restored: dict[int, dict[str, Tensor]] = {}
    for key, value in moments.items():
        index, field = key.split(".", 1)
        restored.setdefault(int(index), {})[field] = value
    optimizer.load_state_dict({"state": restored, "param_groups": state.pop("param_groups")})
    best = (load_tensors(folder / "best.safetensors", files["best.safetensors"])
            if "best.safetensors" in files else None)
    return state, best


def remove_checkpoints(out_dir: Path) -> None:
    shutil.rmtree(Path(out_dir) / CHECKPOINT_DIR, ignore_errors=True)
