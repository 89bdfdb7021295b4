"""Writing (or building in memory) the composed classifier: merged encoder + union heads.

The output directory is a normal chorus model directory (``model.json``,
``encoder.safetensors``, ``heads.safetensors``; :class:`chorus.model.ClassifierModel`
loads it), plus ``merge.json`` recording what was merged and how.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ... import __version__
from ...encoders import build_encoder, load_encoder
from ...fileio import write_json
from ...model import ClassifierModel, EncoderEntry, ModelJson
from ...model.classifier import ENCODER_FILE, HEADS_FILE, MODEL_JSON
from ...model.schema import MODEL_FORMAT_VERSION
from ...progress import ProgressFactory
from ...tensorfile import save_tensors
from .heads import ComposedHeads
from .errors import MergeError
from .norms import norm_ratio, norm_warning
from .sources import SafetensorsFile, StateDictSource, TensorSource
from .stream import MergePlan, write_merged_encoder

MERGE_JSON = "merge.json"


def resolve_base(vectors: Sequence, base: str | Path | None = None) -> TensorSource:
    """Base weights for a merge: ``None`` loads the registered encoder the vectors name;
    a chorus model directory or ``.safetensors`` file is read lazily; any other string is
    a registered encoder name. The fingerprint is checked while merging."""
    if base is None:
        base = vectors[0].manifest.base.encoder
    path = Path(base)
    if path.is_dir() and (path / MODEL_JSON).is_file():
        return SafetensorsFile(path / ENCODER_FILE)
    if path.suffix == ".safetensors":
        return SafetensorsFile(path)
    return StateDictSource(load_encoder(str(base)).state_dict())


def base_state(source: TensorSource, fingerprint: str) -> dict[str, Tensor]:
    """Every base tensor in memory, after checking its fingerprint against the vectors'."""
    from ..errors import BaseMismatchError
    from ..fingerprint import base_fingerprint

    state = {name: source.tensor(name) for name in source.keys()}
    actual = base_fingerprint(state)
    if actual != fingerprint:
        raise BaseMismatchError(fingerprint, actual)
    return state


def _encoder_entry(plan: MergePlan) -> EncoderEntry:
    manifest = plan.vectors[0].manifest
    return EncoderEntry(name=manifest.base.encoder, architecture=manifest.base.architecture,
                        sample_rate=manifest.sample_rate)


def build_encoder_from(plan: MergePlan, state: dict[str, Tensor]):
    """The vectors' encoder architecture with the weights ``state``, in eval mode."""
    entry = _encoder_entry(plan)
    encoder = build_encoder(entry.architecture)
    encoder.name = entry.name
    encoder.load_state_dict(state, strict=True)
    return encoder.eval()


def build_classifier(plan: MergePlan, heads: ComposedHeads, state: dict[str, Tensor]) -> ClassifierModel:
    """The composed classifier in memory from a merged encoder ``state``."""
    model = ClassifierModel(build_encoder_from(plan, state), heads.entries, heads.settings)
    return model.set_heads(heads.tensors, lambda weight, head: MergeError(
        f"heads take {weight.shape[1]} features but encoder layer {heads.settings.layer!r} gives {head.shape[1]}"))


def merge_record(plan: MergePlan, heads: ComposedHeads, lam: float, extra: dict[str, Any] | None = None) -> dict:
    """The content of ``merge.json``. ``norms``: the vectors' parameter norms (before any
    equalizing ``scales``), their max/min ratio; ``warnings``: lines for the user (a norm
    mismatch above :data:`~chorus.taskvec.merge.norms.NORM_RATIO_THRESHOLD` unless equalized)."""
    norms = plan.norms()
    labels = [v.manifest.group or f"task vector {i}" for i, v in enumerate(plan.vectors)]
    warning = norm_warning(norms, labels) if norms and plan.scales is None else None
    extra = dict(extra or {})
    warnings = ([warning] if warning else []) + list(extra.pop("warnings", []))
    return {
        "method": plan.method.name, "source": plan.method.source,
        "params": plan.params.model_dump(mode="json"), "lambda": lam, "seed": plan.seed,
        "base_fingerprint": plan.fingerprint, "calibration": heads.calibration,
        "vectors": [{"group": v.manifest.group, "weight": w,
                     **({"density": plan.densities[i]} if plan.densities else {}),
                     "deltas_sha256": (v.manifest.files or {}).get("deltas.safetensors")}
                    for i, (v, w) in enumerate(zip(plan.vectors, plan.weights))],
        "global_thresholds": [dict(b) for b in plan.bounds] if plan.bounds else None,
        "shared_labels": heads.shared,
        "labels": heads.labels,
        "norms": None if norms is None else {"values": norms, "ratio": _finite(norm_ratio(norms)),
                                             "scales": None if plan.scales is None else list(plan.scales)},
        "warnings": warnings,
        **extra,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_composed_model(plan: MergePlan, heads: ComposedHeads, base: TensorSource, out_dir: str | Path,
                         lam: float | None = None, extra: dict[str, Any] | None = None,
                         progress: ProgressFactory | None = None, checks: Sequence[Callable[[], None]] = (),
                         on_merged: Callable[[str], None] | None = None, dtype: torch.dtype | None = None) -> Path:
    """Stream the merged encoder into ``out_dir`` and write the heads, ``model.json`` and
    ``merge.json``. ``lam`` None: the method's default λ. ``checks``, ``on_merged``, ``dtype``
    (the encoder's floating tensors; heads stay float32): see
    :func:`~chorus.taskvec.merge.stream.write_merged_encoder` (``merge.json`` is built after
    them, so they may add to ``extra``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lam = plan.default_lambda() if lam is None else float(lam)
    files = {ENCODER_FILE: write_merged_encoder(plan, base, out_dir / ENCODER_FILE, lam, progress, checks,
                                                      on_merged, dtype)}
    files[HEADS_FILE] = save_tensors(out_dir / HEADS_FILE, {
        f"{i}.{part}": tensor for i, pair in enumerate(heads.tensors) for part, tensor in zip(("weight", "bias"), pair)})
    record = ModelJson(format_version=MODEL_FORMAT_VERSION, encoder=_encoder_entry(plan), classifier=heads.settings,
                       heads=heads.entries, files=files, chorus_version=__version__)
    write_json(out_dir / MERGE_JSON, merge_record(plan, heads, lam, extra))
    write_json(out_dir / MODEL_JSON, record.model_dump(mode="json"))
    return out_dir
