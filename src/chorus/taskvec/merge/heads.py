"""One classifier over the union of the contributors' label spaces.

Every task vector brings its own linear head(s), trained apart on its own data, so their
raw logits are not comparable: a softmax is unchanged by adding a constant to all of one
head's logits, and heads differ in scale. Before the heads are concatenated each is
calibrated with the statistics its task vector carries (computed by the contributor on
its own validation split, see :class:`chorus.model.Calibration`):

- ``zscore`` (default for multi-class): logit ``l_c`` of class ``c`` becomes
  ``(l_c − μ_c) / σ_c`` with the class's validation logit mean and standard deviation, so
  every class's score reads "how many standard deviations above its usual level";
- ``temperature`` (default for multi-label): ``l_c / T`` with the head's fitted temperature
  (Guo et al., ICML 2017), which keeps a sigmoid head's 0.5 threshold meaningful;
- ``none``: raw logits;
- ``lda``: not a calibration of the trained heads but a replacement: one linear-discriminant
  head over the union of labels built from the class statistics each vector carries, equal
  to the LDA head fitted on every party's clips pooled (:mod:`.stats_head`). No gate.

Both calibrations are affine per class, so they are folded into the head's weights and
bias: the output is a normal chorus model directory whose heads already emit calibrated
logits. A label present in several heads becomes one class, kept in the first head that
has it; its logit is the mean of the calibrated logits of every head that has it (a mean
stays affine, hence foldable, where a max would not).

Per-class calibration puts heads on comparable scales but cannot tell a head that a clip
is not from its group. A composer who holds validation clips can add a
:class:`GroupGate` (a linear group detector, also folded into the heads).

An *original head* of the base encoder (BirdNET's 6,522-species head, :class:`BaseHead`)
can join the composition: its labels join the union (a custom label equal to one of its
labels becomes one class) and it is calibrated with statistics the composer computes on
its own validation windows. For ``zscore`` these are one mean and one standard deviation
over all its classes (the same affine map for every class, so its ranking of species is
unchanged); for ``temperature`` its temperature is 1 (its sigmoid confidences are kept).
With a group gate, the custom groups' gate terms are centred (their mean over groups is
subtracted: the same term for every custom logit, so nothing changes among them) and the
original head gets none.

Heads must read the same encoder layer with the same pooling and task at the same sample
rate; anything else is refused with :class:`HeadCompatibilityError` naming both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import torch
from torch import Tensor

from ...model import Calibration, ClassifierSettings, HeadEntry
from ..naming import vector_label
from .errors import HeadCompatibilityError

CalibrationMethod = Literal["auto", "zscore", "temperature", "none", "lda"]
DEFAULT_CALIBRATION = {"multiclass": "zscore", "multilabel": "temperature"}
_MIN_STD = 1e-6


def resolve_calibration(method: CalibrationMethod, task: str) -> str:
    return DEFAULT_CALIBRATION[task] if method == "auto" else method


def fold_calibration(weight: Tensor, bias: Tensor, calibration: Calibration | None, method: str,
                     where: str) -> tuple[Tensor, Tensor]:
    """``(W', b')`` with ``W' x + b'`` the calibrated logits of ``W x + b``
    (``weight [classes, features]``, ``bias [classes]``)."""
    if method == "none":
        return weight.clone(), bias.clone()
    if calibration is None:
        raise HeadCompatibilityError(f"{where} carries no calibration statistics, needed by {method!r} "
                                     "calibration (use calibration: none to combine raw logits)")
    if method == "temperature":
        return weight / calibration.temperature, bias / calibration.temperature
    if method == "zscore":
        mean = torch.tensor(calibration.logit_mean, dtype=weight.dtype)
        std = torch.tensor(calibration.logit_std, dtype=weight.dtype).clamp_min(_MIN_STD)
        return weight / std.unsqueeze(1), (bias - mean) / std
    raise HeadCompatibilityError(f"unknown calibration {method!r} (zscore, temperature or none)")


@dataclass
class BaseHead:
    """An original head of the base encoder composed with the task vectors' heads:
    ``weight [classes, features]``, ``bias [classes]``, the ``layer`` and ``pooling`` it
    reads, and its ``calibration`` (the composer's statistics; None: only ``none`` works)."""

    group: str
    labels: list[str]
    weight: Tensor
    bias: Tensor
    layer: str
    pooling: str
    calibration: Calibration | None = None


def headwide_calibration(logits: Tensor) -> Calibration:
    """One mean and standard deviation over every class and window of ``logits [windows,
    classes]``, repeated per class (a z-score that keeps the head's ranking of classes)."""
    logits = logits.double()
    classes = logits.shape[1]
    mean, std = float(logits.mean()), float(logits.std(unbiased=False))
    zeros = [0] * classes
    return Calibration(clips=logits.shape[0], logit_mean=[mean] * classes, logit_std=[max(std, _MIN_STD)] * classes,
                       temperature=1.0, valid_counts=zeros, train_counts=zeros, priors=[0.0] * classes)


@dataclass
class ComposedHeads:
    """The heads of a composed classifier.

    ``entries``/``tensors``: output heads with their ``(weight, bias)``, labels unique across
    heads, calibration folded in. ``settings``: the shared classifier settings.
    ``calibration``: the method used. ``shared``: labels found in several heads, with the
    groups whose calibrated logits were averaged. ``gate``: strength of the folded
    :class:`GroupGate` (0: none).
    """

    entries: list[HeadEntry]
    tensors: list[tuple[Tensor, Tensor]]
    settings: ClassifierSettings
    calibration: str
    shared: dict[str, list[str]] = field(default_factory=dict)
    gate: float = 0.0

    @property
    def labels(self) -> list[str]:
        return [label for entry in self.entries for label in entry.labels]

    def logits(self, features: Tensor) -> Tensor:
        """Calibrated logits ``[clips, classes]`` of pooled ``features [clips, features]``."""
        return torch.cat([features @ weight.T + bias for weight, bias in self.tensors], dim=1)


def check_compatible(vectors: Sequence) -> ClassifierSettings:
    """The classifier settings every vector shares; raises :class:`HeadCompatibilityError`."""
    first = vectors[0].manifest
    for index, vector in enumerate(vectors):
        manifest = vector.manifest
        if not manifest.heads or manifest.classifier is None:
            raise HeadCompatibilityError(f"{vector_label(vector, index)} carries no classification head; every "
                                         "contributor of a composed classifier needs one")
        if index == 0:
            continue
        mine, theirs = _reads(manifest), _reads(first)
        if mine != theirs:
            raise HeadCompatibilityError(f"{vector_label(vector, index)} reads {_describe(mine)}, but "
                                         f"{vector_label(vectors[0], 0)} reads {_describe(theirs)}")
    seconds = [v.manifest.classifier.clip_seconds for v in vectors if v.manifest.classifier.clip_seconds]
    return first.classifier.model_copy(update={"clip_seconds": max(seconds) if seconds else None})


def _reads(manifest) -> tuple:
    c = manifest.classifier
    return manifest.base.encoder, c.layer, c.pooling, c.task, manifest.sample_rate, manifest.base.architecture


def _describe(reads: tuple) -> str:
    encoder, layer, pooling, task, rate, architecture = reads
    return (f"encoder {encoder!r} ({architecture.get('family')}) layer {layer!r} with {pooling} pooling, "
            f"{task}, at {rate} Hz")


@dataclass
class GroupGate:
    """A linear group detector folded into the heads: ``strength · (w_g · x + b_g)`` is
    added to the logits of every class of group ``g``.

    Heads trained apart never saw the other groups' audio, so nothing in a head says "this
    clip is not mine"; calibration alone cannot fix that. The gate is a diagonal linear
    discriminant over the pooled features (Gaussian classes with one shared diagonal
    covariance): ``w_g = μ_g / σ²``, ``b_g = −½ Σ μ_g² / σ²`` — the log-likelihood of group
    ``g`` up to a term shared by every group, hence linear and foldable into the heads.
    ``weight [groups, features]``, ``bias [groups]``.
    """

    groups: list[str]
    weight: Tensor
    bias: Tensor
    strength: float = 1.0

    @classmethod
    def fit(cls, features: Tensor, groups: Sequence[str], strength: float = 1.0) -> "GroupGate":
        """Group means and the pooled per-dimension variance of ``features [clips, features]``."""
        names = sorted(set(groups))
        rows = [[i for i, g in enumerate(groups) if g == name] for name in names]
        features = features.double()
        means = torch.stack([features[r].mean(dim=0) for r in rows])
        variance = torch.stack([features[r].var(dim=0, unbiased=False) for r in rows]).mean(dim=0)
        variance = variance + 1e-6 * float(variance.mean()) + 1e-12
        weight = means / variance
        bias = -0.5 * (means * means / variance).sum(dim=1)
        return cls(names, weight.float(), bias.float(), strength)

    def save(self, path: str | Path) -> str:
        """Write ``weight`` and ``bias`` to a safetensors file (groups in its metadata); return its sha256."""
        from ...tensorfile import save_tensors

        return save_tensors(path, {"weight": self.weight, "bias": self.bias}, {"groups": self.groups})

    @classmethod
    def load(cls, path: str | Path, strength: float) -> "GroupGate":
        """Read a gate written by :meth:`save` (validated safetensors)."""
        from ...tensorfile import TensorFileError, load_tensors, read_metadata

        tensors = load_tensors(path)
        try:
            groups = list(read_metadata(path)["groups"])
            weight, bias = tensors["weight"], tensors["bias"]
        except (KeyError, ValueError, TypeError):
            raise TensorFileError(path, "not a chorus group gate (weight, bias and groups expected)") from None
        if weight.dim() != 2 or weight.shape[0] != len(groups) or bias.shape != (len(groups),):
            raise TensorFileError(path, f"gate tensors {tuple(weight.shape)}/{tuple(bias.shape)} do not fit "
                                        f"{len(groups)} groups")
        return cls(groups, weight.float(), bias.float(), strength)

    def for_group(self, group: str | None, where: str) -> tuple[Tensor, Tensor]:
        if group not in self.groups:
            raise HeadCompatibilityError(f"{where}: the group gate knows no group {group!r} "
                                         f"(groups: {', '.join(self.groups)})")
        index = self.groups.index(group)
        return self.strength * self.weight[index], self.strength * self.bias[index]


def _base_settings(vectors: Sequence, base_head: BaseHead | None) -> ClassifierSettings:
    if base_head is None:
        return check_compatible(vectors)
    if not vectors:
        return ClassifierSettings(layer=base_head.layer, pooling=base_head.pooling, task="multilabel")
    settings = check_compatible(vectors)
    if (settings.layer, settings.pooling) != (base_head.layer, base_head.pooling):
        raise HeadCompatibilityError(f"the original {base_head.group} head reads layer {base_head.layer!r} with "
                                     f"{base_head.pooling} pooling, the task vectors' heads layer {settings.layer!r} "
                                     f"with {settings.pooling} pooling (fine-tune with --layer {base_head.layer} "
                                     f"--pooling {base_head.pooling})")
    return settings


def _centred(gate: GroupGate) -> GroupGate:
    """``gate`` minus its mean over groups (the same linear term for every group)."""
    return GroupGate(gate.groups, gate.weight - gate.weight.mean(dim=0), gate.bias - gate.bias.mean(), gate.strength)


def compose_heads(vectors: Sequence, calibration: CalibrationMethod = "auto",
                  gate: GroupGate | None = None, *, shrinkage: float | None = None,
                  base_head: BaseHead | None = None) -> ComposedHeads:
    """Calibrate every head of every vector (and add ``gate``'s group evidence) and merge
    them, then ``base_head`` (an original head of the base encoder, if given), into a
    union label space. ``lda``: the statistics head instead
    (:func:`~.stats_head.compose_lda_heads`, ridge ``shrinkage``; a gate is refused)."""
    settings = _base_settings(vectors, base_head)
    method = resolve_calibration(calibration, settings.task)
    if method == "lda":
        from .stats_head import DEFAULT_SHRINKAGE, compose_lda_heads

        if gate is not None and gate.strength:
            raise HeadCompatibilityError("lda heads take no group gate (they already tell every class apart)")
        if base_head is not None:
            raise HeadCompatibilityError("lda heads are built from class statistics; the base encoder's own head "
                                         "has none: use another calibration with base_head")
        return compose_lda_heads(vectors, DEFAULT_SHRINKAGE if shrinkage is None else shrinkage)
    if base_head is not None and gate is not None:
        gate = _centred(gate)
    rows: dict[str, list[tuple[Tensor, Tensor, str]]] = {}
    owners: list[tuple[str | None, list[str]]] = []
    width = None
    heads = [(entry, pair, f"{vector_label(vector, index)} head {entry.group or ''}".rstrip(),
              entry.group or vector.manifest.group, True, entry.group or vector.manifest.group or f"#{index}")
             for index, vector in enumerate(vectors) for entry, pair in zip(vector.manifest.heads, vector.head_tensors())]
    if base_head is not None:
        entry = HeadEntry(group=base_head.group, labels=base_head.labels, calibration=base_head.calibration)
        heads.append((entry, (base_head.weight, base_head.bias), f"the original {base_head.group} head",
                      base_head.group, False, base_head.group))
    for entry, (weight, bias), where, group, gated, owner in heads:
        if width is not None and weight.shape[1] != width:
            raise HeadCompatibilityError(f"{where} takes {weight.shape[1]} features, the other heads {width}")
        width = weight.shape[1]
        weight, bias = fold_calibration(weight.float(), bias.float(), entry.calibration, method, where)
        if gate is not None and gate.strength and gated:
            gate_weight, gate_bias = gate.for_group(group, where)
            weight, bias = weight + gate_weight, bias + gate_bias
        fresh = []
        for row, label in enumerate(entry.labels):
            if label not in rows:
                fresh.append(label)
                rows[label] = []
            rows[label].append((weight[row], bias[row], owner))
        if fresh:
            owners.append((group, fresh))
    entries, tensors = [], []
    for group, labels in owners:
        weight = torch.stack([torch.stack([r[0] for r in rows[label]]).mean(dim=0) for label in labels])
        bias = torch.stack([torch.stack([r[1] for r in rows[label]]).mean(dim=0) for label in labels])
        entries.append(HeadEntry(group=group, labels=labels))
        tensors.append((weight, bias))
    shared = {label: [r[2] for r in parts] for label, parts in rows.items() if len(parts) > 1}
    return ComposedHeads(entries, tensors, settings, method, shared, gate.strength if gate is not None else 0.0)
