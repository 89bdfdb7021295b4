"""``analyze``: every diagnostic of a set of task vectors, as one JSON-ready dict.

Geometry (cosine, sign conflicts, top-k overlap, norms, effective ranks) needs only the
vectors and streams over their tensors. Linear mode connectivity, negation and the
spectral distances need labelled validation clips of every vector's group (and the base
weights, checked against the vectors' fingerprint); without clips they are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from pydantic import Field
from torch import Tensor

from ..schema import FrozenModel
from ..data.clipset import EvalAudio
from ..progress import ProgressFactory
from ..taskvec.naming import require_groups
from .errors import AnalysisError
from .connectivity import ALPHA_POINTS, alpha_grid, connectivity
from .geometry import SIGN_THRESHOLD, TOPK, vector_geometry
from .layers import exposed_layers
from .negation import LAMBDAS, score_negations
from .spectra import N_MELS, spectral_distances


class AnalysisSettings(FrozenModel):
    """What :func:`analyze` measures (recorded in ``analysis.json``).

    ``sign_threshold``: |τ| an entry must exceed to take part in sign conflicts (absolute,
    default 0: exact zeros never count). ``topk``: fraction kept by each vector's per-tensor
    top-k mask. ``alpha_points``: α grid of the connectivity curves. ``lambdas``: negation
    grid. ``calibration``: of the composed heads on the connectivity paths. ``ranks``:
    compute effective ranks (one SVD per matrix per vector).
    """
    sign_threshold: float = Field(SIGN_THRESHOLD, ge=0)
    topk: float = Field(TOPK, gt=0, le=1)
    alpha_points: int = Field(ALPHA_POINTS, ge=2)
    lambdas: tuple[float, ...] = LAMBDAS
    calibration: str = "auto"
    n_mels: int = Field(N_MELS, ge=2)
    ranks: bool = True


def analyze(vectors: Sequence, base_state: dict[str, Tensor] | None = None, audio: EvalAudio | None = None,
            settings: AnalysisSettings | None = None, progress: ProgressFactory | None = None,
            exposed: Mapping[str, str] | None = None, device: str = "cpu") -> dict:
    """The analysis of ``vectors`` (task vectors of one base). With ``audio`` (validation
    clips of every group; ``base_state``: the base encoder's weights) it includes
    connectivity, negation and spectra. ``exposed``: module prefix -> exposed layer name
    (per-layer results use the encoder's own layer names); ``device``: where encoders run
    for connectivity and negation. Returns ``analysis.json``'s content (strict JSON:
    non-finite numbers are None)."""
    from .report import clean

    settings = settings or AnalysisSettings()
    vectors = list(vectors)
    if audio is not None and base_state is None:
        raise AnalysisError("connectivity and negation need the base encoder's weights (base_state)")
    geometry = vector_geometry(vectors, sign_threshold=settings.sign_threshold, topk=settings.topk,
                               ranks=settings.ranks, progress=progress, exposed=exposed)
    result = {"settings": settings.model_dump(mode="json"), "geometry": geometry.as_dict()}
    if audio is not None and len(vectors) > 1:
        groups = require_groups(vectors, "the analysis of groups")
        result["connectivity"] = connectivity(vectors, base_state, audio, alpha_grid(settings.alpha_points),
                                              settings.calibration, progress, device)
        result["negation"] = score_negations(vectors, base_state, audio, settings.lambdas, progress, device)
        result["spectra"] = spectral_distances(audio, groups, result["geometry"]["whole_model"]["cosine"],
                                               settings.n_mels)
    result["summary"] = summary(result)
    return clean(result)


def summary(result: dict) -> dict:
    """Headline numbers: mean off-diagonal cosine and its range, the all-vector and the mean
    pairwise sign-conflict rates, the whole-model norm ratio max/min (a merge warns above
    :data:`~chorus.taskvec.merge.norms.NORM_RATIO_THRESHOLD`), the largest LMC barriers, the
    Spearman ρ, and negation at the largest λ."""
    from ..taskvec.merge.norms import norm_ratio

    geometry = result["geometry"]
    cosine = geometry["whole_model"]["cosine"]
    pairs = [cosine[i][j] for i in range(len(cosine)) for j in range(i + 1, len(cosine)) if cosine[i][j] is not None]
    conflicts = geometry["whole_model"]["sign_conflicts"]
    pairwise = [conflicts[i][j] for i in range(len(conflicts)) for j in range(i + 1, len(conflicts))
                if conflicts[i][j] is not None]
    found = {"mean_off_diagonal_cosine": geometry["mean_off_diagonal_cosine"],
             "pair_cosine_range": [min(pairs), max(pairs)] if pairs else None,
             "sign_conflict_rate": geometry["whole_model"]["sign_conflict_rate"],
             "mean_pairwise_sign_conflicts": sum(pairwise) / len(pairwise) if pairwise else None,
             "norm_ratio": norm_ratio(geometry["whole_model"]["norms"])}
    if "connectivity" in result:
        curves = result["connectivity"]
        found["max_loss_barrier"] = max(c["loss_barrier"] for c in curves)
        found["max_accuracy_barrier"] = max(c["accuracy_barrier"] for c in curves)
        found["spearman_rho"] = result["spectra"]["spearman"]["rho"]
        negated, others = [], []
        for record in result["negation"]:
            for group, values in record["accuracy"].items():
                (negated if group == record["negated"] else others).append(values[-1])
        found["negation"] = {"lambda": result["negation"][0]["lambda"][-1],
                             "negated_accuracy": [min(negated), max(negated)],
                             "other_accuracy": [min(others), max(others)]}
    return found


def run_analysis(paths: Sequence[str | Path], out_dir: str | Path, data: str | Path | None = None,
                 split: str | None = "valid", base: str | Path | None = None, settings: AnalysisSettings | None = None,
                 progress: ProgressFactory | None = None, device: str = "cpu") -> dict:
    """``chorus analyze``: load the task vectors at ``paths`` (validated), analyse them and
    write ``analysis.json``, the PNG figures and ``analysis.html`` into ``out_dir``.

    ``data``: a manifest whose ``split`` clips (None: all) of the vectors' groups feed
    connectivity, negation and spectra; ``base``: the base weights (a registered encoder
    name, a chorus model directory or a ``.safetensors`` file; default: the encoder the
    vectors name), checked against the vectors' fingerprint; ``device``: where encoders run.
    """
    from ..data.manifest import read_manifest
    from ..data.clipset import load_eval_audio
    from ..taskvec import TaskVector
    from ..taskvec.merge.compose import base_state, resolve_base
    from .report import write_analysis

    if not paths:
        raise AnalysisError("give at least one task-vector directory")
    if base is not None and data is None:
        raise AnalysisError(f"{base}: the base weights are used only with --data (connectivity, negation); "
                            "give --data or leave --base out")
    vectors = [TaskVector.load(path) for path in paths]
    audio = state = None
    if data is not None:
        if len(vectors) < 2:
            raise AnalysisError("connectivity, negation and spectra compare groups: give two or more task vectors")
        groups = require_groups(vectors, "the analysis of groups")
        manifest = read_manifest(data)
        clips = manifest.select(split=split or None, group=groups).clips
        missing = sorted(set(groups) - {c.group for c in clips})
        if missing:
            raise AnalysisError(f"{data}: no {split or 'any'} clips of group(s) {', '.join(missing)} "
                                f"(the vectors' groups: {', '.join(groups)})")
        audio = load_eval_audio(clips, vectors[0].manifest.sample_rate,
                                progress, "loading validation clips")
        state = base_state(resolve_base(vectors, base), vectors[0].fingerprint)
    result = analyze(vectors, state, audio, settings, progress, exposed_layers(vectors[0].manifest.base.architecture),
                     device)
    write_analysis(result, out_dir)
    return result
