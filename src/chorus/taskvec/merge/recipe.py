"""Merge recipes: a validated YAML file that says what to merge and how, saved (with every
default resolved) as ``recipe.yaml`` next to the output so each merge can be reproduced.

Example::

    method: ties
    params: {density: 0.2, scope: global}
    vectors:
      - birds/taskvector            # paths relative to the recipe file
      - {path: frogs/taskvector, weight: 0.5}
    lambda: 1.0                     # omit: the method's default, or the sweep's choice
    calibration: auto               # zscore (multi-class) / temperature (multi-label) / none / lda
    # shrinkage: 0.3                # lda only: ridge γ·tr(Σ)/D·I of the statistics head
    sweep: {data: valid.csv, split: valid}   # optional: λ, calibration and gate chosen on validation data
    # gate: {file: gate.safetensors, strength: 0.1}   # a group gate a sweep fitted (saved recipes)
    base: sfx-cnn                   # optional: registered name, model dir or .safetensors
    seed: 0
    equalize_norms: false           # true: rescale every vector to the mean norm first
    base_head: birdnet              # optional: also BirdNET's own species head (see below)
    dtype: float16                  # optional: the written encoder's dtype (default: the base's)

A vector may carry its own ``density`` (``{path: frogs/taskvector, density: 0.5}``, TIES,
DARE and Breadcrumbs), which replaces ``params.density`` for it. mergekit's key names
(``merge_method``, ``models``, ``base_model``, ``parameters``) are read too, see
:mod:`~chorus.taskvec.merge.mergekit`. Every problem of a recipe is reported at once, one
line each (:func:`parse_recipe`). The saved recipe holds paths relative to its folder.

``base_head: birdnet`` (or ``{kind: birdnet, data: valid.csv, split: valid}``) adds the
base encoder's original species head (BirdNET's 6,522 species) to the composed model, over
the union of labels. Its calibration statistics are computed on the composer's windows:
``base_head.data`` (default: the sweep's data) at its split, through the merged encoder.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ...schema import StrictModel, problem_lines
from ...fileio import write_text
from .heads import CalibrationMethod
from .mergekit import from_mergekit, is_mergekit, mergekit_location
from .registry import get_method
from .errors import MergeError, RecipeError

RECIPE_FILE = "recipe.yaml"
OutputDtype = Literal["float32", "float16", "bfloat16"]


class _RecipeModel(StrictModel):
    """Recipe sections also accept their fields' aliases (mergekit-style key names)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class VectorRef(_RecipeModel):
    """One task vector: its directory, its weight ``w_i`` and (TIES, DARE, Breadcrumbs) its
    own kept fraction ``density`` (None: the method's ``density`` parameter)."""

    path: str
    weight: float = 1.0
    density: float | None = Field(default=None, gt=0, le=1)


class SweepSpec(_RecipeModel):
    """λ selection on the composer's validation data: a manifest, the split to use, the
    λ grid (default: multiples 0.25..2 of the method's default λ) and the group-gate
    strengths tried (default 0, 0.1, 0.3, 1; ``[0]``: no gate)."""

    data: str
    split: str | None = "valid"
    lambdas: list[float] | None = None
    gates: list[float] | None = None


class GateSpec(_RecipeModel):
    """A group gate fitted earlier (a safetensors file written by a sweep) and its strength."""

    file: str
    strength: float = Field(gt=0)


class BaseHeadSpec(_RecipeModel):
    """The base encoder's own head to compose with the task vectors' heads (``kind``:
    ``birdnet``, the only encoder with one), and the windows its calibration statistics are
    computed on (``data``, a manifest, at ``split``; default: the sweep's)."""

    kind: Literal["birdnet"] = "birdnet"
    data: str | None = None
    split: str | None = "valid"
    retention: float | None = Field(default=None, gt=0, le=1, description=(
        "with a sweep: the least fraction of its clips whose top-1 class of the original head stays the same; "
        "λ values below it are not chosen (λ = 0 is tried too)"))


class Recipe(_RecipeModel):
    """What to merge and how (see the module docstring)."""

    method: str
    vectors: list[VectorRef] = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    lambda_: float | None = Field(default=None, alias="lambda")
    calibration: CalibrationMethod = "auto"
    shrinkage: float | None = Field(default=None, ge=0, description="lda only: ridge γ (default 0.3)")
    gate: GateSpec | None = None
    base: str | None = None
    sweep: SweepSpec | None = None
    seed: int = 0
    equalize_norms: bool = False
    base_head: BaseHeadSpec | None = None
    dtype: OutputDtype | None = Field(default=None, description="the written encoder's dtype (None: the base's)")

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        try:
            get_method(value)
        except MergeError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("vectors")
    @classmethod
    def _vector_densities(cls, value: list[VectorRef], info: ValidationInfo) -> list[VectorRef]:
        method = info.data.get("method")
        if method is not None and not get_method(method).vector_density and any(v.density is not None for v in value):
            raise ValueError(f"method {method!r} takes no per-vector density (ties, dare and breadcrumbs do)")
        return value

    @field_validator("params")
    @classmethod
    def _method_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """The method's parameters, validated (each problem reported under ``params``)."""
        method = info.data.get("method")
        return value if method is None else get_method(method).params.model_validate(value).model_dump(mode="json")

    @field_validator("base_head", mode="before")
    @classmethod
    def _head_kind(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("vectors", mode="before")
    @classmethod
    def _plain_paths(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"path": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Recipe":
        if self.sweep is not None and (self.lambda_ is not None or self.gate is not None):
            raise ValueError("give either lambda (and gate) or sweep, not both")
        if self.calibration == "lda" and self.gate is not None:
            raise ValueError("calibration lda takes no gate")
        if self.calibration not in ("lda", "auto") and self.shrinkage is not None:
            raise ValueError("shrinkage applies to calibration lda (or auto, which may choose lda) only")
        if self.base_head is not None and self.base_head.data is None and self.sweep is None:
            raise ValueError("base_head needs windows for its calibration statistics: give base_head.data "
                             "(a manifest) or a sweep")
        if self.base_head is not None and self.base_head.retention is not None and self.sweep is None:
            raise ValueError("base_head.retention needs a sweep (it limits the λ the sweep chooses)")
        return self

    def resolve_paths(self, folder: Path) -> "Recipe":
        """A copy whose relative paths are taken relative to ``folder`` (the recipe's folder)."""

        def absolute(text: str) -> str:
            return str(Path(text) if Path(text).is_absolute() else (folder / text).resolve())

        return self._map_paths(absolute, self.base is not None and (folder / self.base).exists())

    def relative_to(self, folder: str | Path) -> "Recipe":
        """A copy whose absolute paths are written relative to ``folder`` (where it is saved),
        so that :func:`load_recipe` of the saved file resolves them back."""
        folder = Path(folder).resolve()

        def relative(text: str) -> str:
            return Path(os.path.relpath(text, folder)).as_posix() if Path(text).is_absolute() else text

        return self._map_paths(relative, self.base is not None and Path(self.base).is_absolute())

    def _map_paths(self, convert: Callable[[str], str], base_is_path: bool) -> "Recipe":
        """A copy with ``convert`` applied to every file path (``base`` when ``base_is_path``)."""
        sweep = self.sweep.model_copy(update={"data": convert(self.sweep.data)}) if self.sweep else None
        gate = self.gate.model_copy(update={"file": convert(self.gate.file)}) if self.gate else None
        vectors = [v.model_copy(update={"path": convert(v.path)}) for v in self.vectors]
        head = self.base_head
        if head is not None and head.data is not None:
            head = head.model_copy(update={"data": convert(head.data)})
        return self.model_copy(update={"vectors": vectors, "sweep": sweep, "gate": gate, "base_head": head,
                                       "base": convert(self.base) if base_is_path else self.base})

    def to_yaml(self) -> str:
        import yaml

        data = self.model_dump(mode="json", by_alias=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path, note: str | None = None) -> None:
        """Write the recipe as YAML, with a header comment (and ``note`` as a comment)."""
        comments = "# chorus merge recipe (defaults resolved)\n" + (f"# {note}\n" if note else "")
        write_text(path, comments + self.to_yaml())


def parse_recipe(data: Any, where: str = "recipe", folder: Path | None = None) -> Recipe:
    """Validate a recipe given as a mapping, in chorus's or mergekit's key names.

    ``folder``: where relative vector paths lie; given, every vector folder must exist.
    :class:`RecipeError` lists every problem at once: one line ``WHERE: field: problem``
    each, after a ``WHERE: N problems`` line when there are several.
    """
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: expected a mapping of recipe fields, got {type(data).__name__}")
    location = None
    if is_mergekit(data):
        data, kept = from_mergekit(data)
        location = partial(mergekit_location, kept=kept)
    problems: list[str] = []
    recipe = None
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems = problem_lines(exc, location)
    if folder is not None:
        problems += _missing_vectors(data.get("vectors"), folder, location or (lambda loc: loc))
    if len(problems) == 1:
        raise RecipeError(f"{where}: invalid recipe: {problems[0]}")
    if problems:
        raise RecipeError("\n".join([f"{where}: {len(problems)} problems in the recipe",
                                     *(f"{where}: {problem}" for problem in problems)]))
    return recipe


def _missing_vectors(vectors: Any, folder: Path, location: Callable[[tuple], tuple]) -> list[str]:
    """A line for every vector path (relative to ``folder``) that names no folder."""
    if not isinstance(vectors, list):
        return []
    problems = []
    for index, entry in enumerate(vectors):
        path = entry.get("path") if isinstance(entry, dict) else entry
        if isinstance(path, str) and path and not (folder / path).is_dir():
            where = ".".join(map(str, location(("vectors", index, "path"))))
            problems.append(f"{where}: no task-vector folder {path!r} (relative to {folder})")
    return problems


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe; relative paths are resolved against its folder."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: not valid YAML ({exc})") from None
    folder = path.parent.resolve()
    return parse_recipe(data, str(path), folder).resolve_paths(folder)
